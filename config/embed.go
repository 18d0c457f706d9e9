package config

import _ "embed"

// DefaultYAML is the configuration used when none is given: the demo
// origin on 127.0.0.1:9000 and the embedded store.
//
//go:embed default.yaml
var DefaultYAML []byte
