//go:build e2e && soak

package e2e

import (
	"testing"
	"time"
)

// TestSoakLifecycleRekeys is the long rekey soak of issue 5 (make soak):
// both sides on short lifetimes (CHILD 30 s, IKE 90 s, margin 10 s, 100 %
// fuzz) for 5 minutes under continuous pings (5/s through each tunnel and
// LAN->VPC), a paced UDP stream and a checksummed TCP stream. Zero lost
// pings and datagrams, a checksum match and, per tunnel, at least 10 CHILD
// and 3 IKE rekeys counted by cgwd and seen by strongSwan.
func TestSoakLifecycleRekeys(t *testing.T) {
	lcSoak(t, 5*time.Minute, 90*time.Second, 30*time.Second, 10*time.Second, 10, 3)
}

// TestSoakHardeningLossyPath is TestHardeningLossyPath for 20 minutes
// (8 IKE and 20 CHILD rekeys per tunnel under 5 % UDP loss each way);
// CGW_E2E_LOSSY_DURATION overrides the length.
func TestSoakHardeningLossyPath(t *testing.T) {
	lossyPath(t, lossyDuration(t, 20*time.Minute))
}
