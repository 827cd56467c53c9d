package main

import "testing"

// cgwd -h is help (exit 0); stray arguments and unknown flags are usage
// errors (exit 2) caught before any configuration is read.
func TestUsageExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"-h"}, 0},
		{[]string{"--help"}, 0},
		{[]string{"extra"}, 2},
		{[]string{"--config", "/nonexistent/cgw.yaml", "extra"}, 2},
		{[]string{"--bogus"}, 2},
		{[]string{"--config", "/nonexistent/cgw.yaml", "--check"}, 1},
	} {
		if got := run(tc.args); got != tc.code {
			t.Errorf("cgwd %q: exit %d, want %d", tc.args, got, tc.code)
		}
	}
}
