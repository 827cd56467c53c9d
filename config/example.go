package config

import _ "embed"

//go:embed example.yaml
var example []byte

// Example returns a commented configuration showing every key with its
// default value; `cgwctl config default` prints it. It parses and validates
// without errors or warnings.
func Example() []byte {
	return append([]byte(nil), example...)
}
