package ike_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
)

// TestQuiesceStopsLifetimeRekeys: once cgwd shuts down (Quiesce), the CHILD
// SA's rekey time passes without a rekey, an operator rekey is refused,
// and the removal still sends the IKE SA's DELETE.
func TestQuiesceStopsLifetimeRekeys(t *testing.T) {
	p := established(t, func(c, a *ike.PeerConfig) {
		a.ChildLifetime = 2 * time.Hour // the cgw side would rekey first
		c.DPDInterval = 0               // only the rekey timer is due
	})
	old := status(t, p.cgw).Children[0]
	p.cgw.Manager.Quiesce()
	if err := p.cgw.Manager.Rekey("aws-t1", false); err == nil {
		t.Error("Rekey after Quiesce succeeded; want it refused")
	}
	// Past the rekey time (3060..3330 s), short of the hard lifetime.
	for range 350 {
		p.net.Clock.Advance(10 * time.Second)
		p.cgw.Manager.Flush()
		if got := exchangesOf(t, p.net.TakeFrom(p.cgw)); len(got) > 0 {
			t.Fatalf("cgw sent %v at %v after Quiesce; want nothing until it is closed", got, p.net.Clock.Now())
		}
	}
	if st := status(t, p.cgw).Children[0]; st.InSPI != old.InSPI {
		t.Errorf("CHILD SA rekeyed after Quiesce: %s -> %s", old.InSPI, st.InSPI)
	}
	p.cgw.Manager.Close()
	if got := exchangesOf(t, p.net.TakeFrom(p.cgw)); !slices.Contains(got, "INFORMATIONAL req") {
		t.Errorf("Close after Quiesce sent %v; want the IKE SA's DELETE (INFORMATIONAL)", got)
	}
}
