// Package topology answers "which brokers serve cluster X" and "tell me
// when that changes", and decides who owns what among several processes.
//
// One interface, Resolver, has two backends:
//
//   - Consul (NewConsul): brokers register as service ServiceBroker in the
//     Consul agent of their datacenter (Consul.RegisterBroker) with a TTL
//     check they keep passing; discovery asks the local agent for the
//     instances whose checks pass, in any datacenter the agent knows (WAN
//     federation: Consul's datacenters are ours), and watches them with
//     blocking queries. When Consul is unreachable a watch retries with
//     backoff and reports nothing, so callers keep the last known brokers;
//     it logs the outage once and the recovery once.
//   - Static (ParseStatic, LoadStatic): a YAML file listing each cluster's
//     brokers, for the embedded default and for job files that give
//     bootstrap addresses.
//
// Leases: a Member is a process's presence in Consul (a service with its
// own TTL check) and its session, bound to that check with a short,
// explicit lock-delay; Member.Hold runs work for as long as the process
// holds a KV lock. Consul's sessions prefer liveness over safety: a lease
// decides who should work; it does not fence a process that still believes
// it holds it.
//
// Everything kept in Consul is under the "tributary" KV prefix and the
// services ServiceBroker and ServiceWorker; see the constants.
package topology
