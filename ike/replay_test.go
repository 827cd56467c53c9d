package ike_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ike/iketest"
)

// TestReplayMovesNothing replays an authentic AWS request (a DPD probe)
// from another address and port, as an attacker on the path would (RFC
// 7296, Sections 2.1 and 2.23): the IKE SA's and the dataplane's
// endpoints stay, liveness is not refreshed (so our own DPD still fires
// when the real peer goes silent), and the cached response is re-sent at
// a limited rate only.
func TestReplayMovesNothing(t *testing.T) {
	p := established(t, nil)
	before := status(t, p.cgw)
	/* <-- HDR, SK {}   (AWS's DPD probe, captured) */
	must(t, ike.SendDPD(p.aws.Manager, "cgw"))
	probe := p.net.TakeFrom(p.aws)
	if len(probe) != 1 {
		t.Fatalf("want AWS's probe, got %d packets", len(probe))
	}
	p.net.Send(p.aws, probe...)
	p.net.Deliver() // our answer
	p.cgw.Installer.Ops(true)
	sentBefore := p.cgw.Sender.Sent()
	lastAuthentic := p.net.Clock.Now()

	// AWS goes silent; the attacker replays the probe once a second
	// from elsewhere.
	p.net.Drop = func(from *iketest.Node, _ iketest.Packet) bool { return from == p.aws }
	// From port 4500, where endpoint following would be allowed.
	attacker := netip.MustParseAddrPort("203.0.113.66:4500")
	to := probe[0].Remote
	var toAttacker, probes int
	for i := 0; i < 12; i++ {
		for range 5 {
			p.net.Inject(to, attacker, probe[0].Data)
		}
		p.net.Clock.Advance(time.Second)
		p.net.Flush()
		for _, pkt := range p.cgw.Sender.Take() {
			if pkt.Remote == attacker {
				toAttacker++
			}
			if ex := exchangesOf(t, []iketest.Packet{pkt}); ex[0] == "INFORMATIONAL req" {
				probes++
			}
		}
	}
	st := status(t, p.cgw)
	if st.Remote != before.Remote || st.Local != before.Local {
		t.Errorf("replays moved the IKE SA: %s -> %s (was %s -> %s)", st.Local, st.Remote, before.Local, before.Remote)
	}
	for _, op := range p.cgw.Installer.Ops(false) {
		if op.Kind == "endpoints" {
			t.Errorf("replays moved the dataplane: %+v", op)
		}
	}
	if st.SPIi != before.SPIi || st.SPIr != before.SPIr {
		t.Errorf("replays changed the IKE SA")
	}
	// 60 replays over 12 s: the cached response goes out a burst of 3,
	// then at most once a second.
	if toAttacker > 3+12 {
		t.Errorf("%d responses sent to the replaying address for 60 replays; want at most 15 (rate-limited)", toAttacker)
	}
	if d := p.cgw.Manager.Drops(); d.ResendLimited == 0 {
		t.Errorf("no rate-limited retransmit counted: %+v", d)
	}
	// DPD is not fooled: with no authentic message for DPDInterval, our
	// probe goes out.
	if probes == 0 {
		t.Errorf("no DPD probe within %s of the last authentic message (replays refreshed liveness); sent %d packets",
			p.net.Clock.Now().Sub(lastAuthentic), p.cgw.Sender.Sent()-sentBefore)
	}
}
