package config

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and every failure is a list of
// *FieldErrors that never contain the PSK of the input.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add(Example())
	f.Add([]byte(t1("dpd: {interval: 5s}", "traffic_selectors: {local: ['::/0']}")))
	f.Add([]byte("version: 1\nconnections: [{name: a, tunnels: [{psk: *x}]}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, err := Parse(data, "fuzz.yaml")
		if err == nil {
			return
		}
		for _, fe := range fieldErrors(t, err) {
			if fe.Fix == "" && !strings.Contains(fe.Msg, "invalid YAML") {
				t.Errorf("error without a fix: %v", fe)
			}
		}
		if strings.Contains(err.Error(), "EXAMPLEpsk1_abcdefghij") {
			t.Errorf("PSK in error: %v", err)
		}
	})
}
