package configs

import _ "embed"

// Dev is dev.yaml, the jobs of `tributary dev`.
//
//go:embed dev.yaml
var Dev []byte

// DevName is the name Dev is parsed under, for error messages.
const DevName = "configs/dev.yaml"
