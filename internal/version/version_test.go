package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0eb93c1f2a3b4c5d6e7f8091a2b3c4d5e6f70819"}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "devel"},
		{"go install @version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{rev}}, "v1.2.3"},
		{"pseudo-version", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203120000-0eb93c1f2a3b"}}, "v0.0.0-20261203120000-0eb93c1f2a3b"},
		{"checkout build", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{rev}}, "devel-0eb93c1f2a3b"},
		{"checkout build, modified", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{rev, {Key: "vcs.modified", Value: "true"}}}, "devel-0eb93c1f2a3b-dirty"},
		{"no VCS", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
	} {
		if got := fromBuildInfo(tc.bi); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestStampOverrides(t *testing.T) {
	old := v
	defer func() { v = old }()
	v = "v9.9.9-3-gabcdef0"
	if got := String(); got != v {
		t.Errorf("String() = %q, want the stamped %q", got, v)
	}
	if got := Full(); !strings.HasPrefix(got, v+" (go") {
		t.Errorf("Full() = %q, want %q followed by the Go version", got, v)
	}
}
