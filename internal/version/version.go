// Package version holds the build's version string, stamped at link time
// with -ldflags "-X github.com/cgwproject/cgw/internal/version.v=...".
package version

import "runtime/debug"

var v = ""

// String returns the version: the stamped value, else the module version or
// VCS revision recorded by the Go toolchain, else "devel".
func String() string {
	if v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}
