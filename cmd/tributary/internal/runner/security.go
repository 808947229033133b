package runner

import (
	kafkabridge "github.com/tributary/tributary/bridge/kafka"
	"github.com/tributary/tributary/mirror/config"
)

// kafkaSecurity maps a job file's security block to the Kafka bridge's
// settings; nil for what the block leaves out (plaintext, no SASL). File
// paths are used as written: relative ones are relative to the worker's
// working directory.
func kafkaSecurity(s config.Security) (*kafkabridge.TLS, *kafkabridge.SASL) {
	var t *kafkabridge.TLS
	if s.TLS != nil {
		t = &kafkabridge.TLS{
			CAFile: s.TLS.CAFile, CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile,
			ServerName: s.TLS.ServerName, InsecureSkipVerify: s.TLS.InsecureSkipVerify,
		}
	}
	var sasl *kafkabridge.SASL
	if s.SASL != nil {
		sasl = &kafkabridge.SASL{Mechanism: s.SASL.Mechanism, Username: s.SASL.Username, Password: s.SASL.Password}
	}
	return t, sasl
}
