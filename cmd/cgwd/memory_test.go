package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestGCDefault: without GOGC in the environment cgwd sets its own GC
// target; an operator's GOGC is left alone (the runtime applied it).
func TestGCDefault(t *testing.T) {
	t.Setenv("GOGC", "") // restored after the test
	os.Unsetenv("GOGC")
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	setGCDefault()
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Errorf("GOGC unset: GC percent %d, want cgwd's %d", got, defaultGOGC)
	}
	t.Setenv("GOGC", "200")
	setGCDefault()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=200 in the environment: cgwd changed the GC percent to %d", got)
	}
}
