// Package configs holds Tributary's example job files, and embeds dev.yaml
// into the binary for `tributary dev`: the file users read is the file
// that runs.
package configs
