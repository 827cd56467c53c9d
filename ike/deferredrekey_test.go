package ike_test

import (
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ike/iketest"
)

// TestOperatorRekeyWhilePeerRekeyUnfinished: an operator CHILD rekey on
// aws while aws waits for cgw's DELETE of the SA cgw just rekeyed (aws
// answered) is not dropped: it succeeds and runs once cgw's exchange ends,
// so the SA is rekeyed twice, once by each end, and both converge.
func TestOperatorRekeyWhilePeerRekeyUnfinished(t *testing.T) {
	p := established(t, nil)
	old := status(t, p.aws).Children[0]
	must(t, p.cgw.Manager.Rekey("aws-t1", false))
	/* HDR, SK {N(REKEY_SA), SA, Ni, KEi, TSi, TSr} --> : aws answers, waits */
	p.net.Step()
	answered := status(t, p.aws).Children[0]
	if answered.InSPI == old.InSPI {
		t.Fatal("aws did not answer cgw's rekey")
	}
	// The operator asks aws for a rekey now: accepted, nothing sent yet.
	must(t, p.aws.Manager.Rekey("cgw", false))
	p.aws.Manager.Flush()
	/* <-- answer; HDR, SK {D(ESP, old)} --> ; then aws's deferred rekey */
	p.net.Advance(10*time.Second, 100*time.Millisecond)
	checkConverged(t, p)
	st := status(t, p.aws).Children[0]
	if st.InSPI == answered.InSPI || st.InSPI == old.InSPI {
		t.Errorf("aws's CHILD SA is %s (cgw's rekey made %s): the operator's rekey did not happen", st.InSPI, answered.InSPI)
	}
	for _, n := range []*iketest.Node{p.cgw, p.aws} {
		// cgw's rekey, then the operator's on aws.
		wantEvents(t, n, map[ike.EventKind]int{ike.EventChildRekeyed: 2, ike.EventChildDown: 0, ike.EventIKEDown: 0})
	}
}
