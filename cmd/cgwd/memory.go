package main

import (
	"os"
	"runtime/debug"
)

// defaultGOGC is cgwd's GC target when the environment sets none: the heap
// may grow 50 % over the live heap between collections, not Go's 100 %.
// The dataplane allocates nothing per packet, so collections are paced by
// the control plane (IKE, BGP, status) and stay rare either way, while the
// heap the runtime keeps, and with it the RSS, follows the target
// (docs/scale.md has the figures at 200 tunnels). GOGC and GOMEMLIMIT in
// the environment are Go's own settings and win.
const defaultGOGC = 50

func setGCDefault() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGOGC)
	}
}
