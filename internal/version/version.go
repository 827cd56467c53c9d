// Package version holds the build's version string. It comes from the Go
// toolchain's build info, so `go install github.com/cgwproject/cgw/cmd/cgwd@v1.2.3`
// reports v1.2.3 and a build from a checkout reports its VCS revision; the
// Makefile's -ldflags "-X github.com/cgwproject/cgw/internal/version.v=..."
// (git describe) overrides both.
package version

import (
	"runtime"
	"runtime/debug"
)

var v = ""

// String returns the version: the stamped value, else the one recorded in
// the binary's build info, else "devel".
func String() string {
	if v != "" {
		return v
	}
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi)
}

// Full is String plus the Go toolchain and platform, as --version prints it:
// "v1.2.3 (go1.26.8 linux/amd64)".
func Full() string {
	return String() + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}

// fromBuildInfo picks the module version of a `go install pkg@version`
// build, else "devel-<12 hex of vcs.revision>" (+"-dirty" when the tree had
// local changes), else "devel".
func fromBuildInfo(bi *debug.BuildInfo) string {
	if bi == nil {
		return "devel"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) < 12 {
		return "devel"
	}
	out := "devel-" + rev[:12]
	if dirty {
		out += "-dirty"
	}
	return out
}
