// Package topology tests brokers and mirror workers against real Consul
// agents (./bin/consul, built by `make tools`): registration and health,
// discovery across WAN-joined datacenters, jobs held in Consul's KV store,
// job ownership among workers, and a Consul outage under running jobs.
package topology
