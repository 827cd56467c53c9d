package ike_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ike/iketest"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// charonQuirk makes the aws node drop what strongSwan's charon drops: its
// ike_sa_manager refuses a message whose message ID equals the one it is
// processing on the same IKE SA, request or response alike. When both ends
// send message ID n at once (a collision on a fresh IKE SA, where both
// start at 0), cgw's answer to aws's request arrives while aws still
// processes cgw's request n, and is lost: aws must retransmit its request.
// Here "while processing" is "at the same fake instant".
func charonQuirk(p *pair) *int {
	drops := 0
	type key struct {
		spiI, spiR uint64
		mid        uint32
	}
	seen := map[key]time.Time{}
	p.net.Drop = func(from *iketest.Node, pk iketest.Packet) bool {
		if from != p.cgw {
			return false
		}
		h, err := message.ParseHeader(pk.Data)
		if err != nil {
			return false
		}
		k, now := key{h.SPIi, h.SPIr, h.MessageID}, p.net.Clock.Now()
		if at, ok := seen[k]; ok && at.Equal(now) {
			drops++
			return true // aws is processing the other message with this ID
		}
		seen[k] = now
		return false
	}
	return &drops
}

// checkDataplane fails when one end sends on an SA the other end has no
// inbound SA for (the tunnel is dark in that direction).
func checkDataplane(t *testing.T, p *pair, when string) bool {
	t.Helper()
	for _, d := range []struct{ from, to *iketest.Node }{{p.cgw, p.aws}, {p.aws, p.cgw}} {
		out := d.from.Installer.ActiveOutbound()
		if out == 0 {
			t.Errorf("%s: %s has no outbound SA", when, d.from.Addr)
			return false
		}
		if _, ok := d.to.Installer.Installed(ipsec.Inbound, out); !ok {
			t.Errorf("%s: %s sends on SPI %s, for which %s has no inbound SA", when, d.from.Addr, out, d.to.Addr)
			return false
		}
	}
	return true
}

// TestRekeyCollisionsCharonQuirk runs TestLifecycleRekeyCollisions' timing
// (equal lifetimes IKE 55 s, CHILD 30 s, margin 15 s, no fuzz on both
// ends, so every CHILD and IKE rekey collides and the CHILD rekey 5 s after
// the IKE rekey is the first exchange of a fresh IKE SA on both ends)
// against an aws node with charon's message ID quirk and AWS's 10 s
// retransmission timeout. At every step each end's outbound SA must be one
// the other end receives on, no CHILD SA may reach its hard lifetime, and
// the two ends must converge.
func TestRekeyCollisionsCharonQuirk(t *testing.T) {
	for seed := range 12 {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			p := newSeededPair(t, fmt.Sprint("quirk", seed), func(c, a *ike.PeerConfig) {
				for _, pc := range []*ike.PeerConfig{c, a} {
					pc.IKELifetime, pc.ChildLifetime, pc.RekeyMargin, pc.RekeyFuzz = 55*time.Second, 30*time.Second, 15*time.Second, 0
				}
				a.RetransmitTimeout = 10 * time.Second
			})
			p.cgw.Listener.Events(true)
			p.aws.Listener.Events(true)
			drops := charonQuirk(p)
			for i := range 2400 { // 4 minutes
				p.net.Advance(100*time.Millisecond, 100*time.Millisecond)
				if !checkDataplane(t, p, fmt.Sprintf("%.1fs", float64(i+1)/10)) {
					break
				}
			}
			p.net.Drop = nil
			t.Logf("charon's quirk dropped %d messages", *drops)
			p.net.Advance(time.Second, 100*time.Millisecond)
			for _, nd := range []*iketest.Node{p.cgw, p.aws} {
				if c := count(nd, ike.EventChildDown); c > 0 {
					t.Errorf("%s: %d ChildDown events (a CHILD SA expired or was lost): %v", nd.Addr, c, nd.Listener.Kinds())
				}
				if c := count(nd, ike.EventChildRekeyed); c < 6 {
					t.Errorf("%s: only %d CHILD rekeys in 4 minutes of 30 s lifetimes", nd.Addr, c)
				}
			}
		})
	}
}

// loseCollisionAndAnswer makes both ends rekey the CHILD SA at once, with
// cgw's exchange holding the lowest nonce (cgw loses), and loses cgw's
// answer to aws's request as charon does; aws's answer reaches cgw, which
// queues the DELETE of its redundant SA.
func loseCollisionAndAnswer(t *testing.T, p *pair) {
	t.Helper()
	ike.SetNonceFirstByte(p.cgw.Manager, 0x00, 0xff)
	ike.SetNonceFirstByte(p.aws.Manager, 0xff, 0x80)
	/* cgw: REQ(a) N(REKEY_SA) -->   <-- REQ(b) N(REKEY_SA) :aws */
	must(t, p.cgw.Manager.Rekey("aws-t1", false))
	must(t, p.aws.Manager.Rekey("cgw", false))
	reqA, reqB := p.net.TakeFrom(p.cgw), p.net.TakeFrom(p.aws)
	p.net.Send(p.cgw, reqA...)
	p.net.Send(p.aws, reqB...)
	/* RESP(b) --> lost (aws was processing REQ(a), same message ID);
	   <-- RESP(a): cgw lost the collision and deletes its redundant SA */
	if got := exchangesOf(t, p.net.TakeFrom(p.cgw)); len(got) != 1 || got[0] != "CREATE_CHILD_SA resp" {
		t.Fatalf("cgw's answer to aws's rekey: %v", got)
	}
	p.net.Send(p.aws, p.net.TakeFrom(p.aws)...)
}

// A CHILD rekey collision that cgw lost leaves aws's rekey unfinished on
// aws's side when aws lost cgw's answer (charon's message ID quirk): aws
// retransmits its request, gets the cached answer, and only then deletes the
// old CHILD SA. An IKE rekey cgw starts meanwhile must wait: strongSwan 5.9
// accepts it (its old CHILD SA, which answered cgw's colliding rekey, is
// no longer "rekeying", so it sees nothing half-open), and cgw's DELETE of
// the old IKE SA then silently ends aws's CHILD rekey; the new CHILD SA
// never goes into service on either end, the old one expires, and the
// tunnel is dark until a new CHILD SA is negotiated (seen in
// TestLifecycleRekeyCollisions).
func TestIKERekeyWaitsForPeersCHILDRekey(t *testing.T) {
	p := established(t, nil)
	before := status(t, p.cgw)
	loseCollisionAndAnswer(t, p)
	/* INFORMATIONAL D(redundant a) -->   <-- INFORMATIONAL */
	p.net.Send(p.cgw, p.net.TakeFrom(p.cgw)...)
	p.net.Send(p.aws, p.net.TakeFrom(p.aws)...)

	// aws's rekey is still in flight: no IKE rekey from cgw until it is done.
	must(t, p.cgw.Manager.Rekey("aws-t1", true))
	if got := exchangesOf(t, p.net.TakeFrom(p.cgw)); len(got) != 0 {
		t.Fatalf("cgw sent %v while aws's CHILD rekey was unfinished; want nothing until aws deleted the old CHILD SA", got)
	}

	// aws retransmits REQ(b), gets the cached RESP(b), deletes the old
	// CHILD SA; the postponed IKE rekey follows.
	p.net.Advance(60*time.Second, 250*time.Millisecond)
	checkConverged(t, p)
	st := status(t, p.cgw)
	if st.SPIi == before.SPIi || st.Children[0].InSPI == before.Children[0].InSPI {
		t.Errorf("want both the CHILD SA and the IKE SA rekeyed: IKE %016x -> %016x, CHILD in %s -> %s",
			before.SPIi, st.SPIi, before.Children[0].InSPI, st.Children[0].InSPI)
	}
	for _, n := range []*iketest.Node{p.cgw, p.aws} {
		wantEvents(t, n, map[ike.EventKind]int{ike.EventChildRekeyed: 1, ike.EventIKERekeyed: 1, ike.EventChildDown: 0, ike.EventIKEDown: 0})
	}
}

// The peer's CHILD rekey that we answered never finishes in time: cgw lost
// a collision, aws lost cgw's answer and retransmits only after 60 s (an
// abandoned exchange looks the same). cgw must neither switch to the new
// SA, which aws does not have, nor wait for aws's DELETE until the old SA
// expires: after 30 s without a DELETE or traffic on the new SA it rekeys
// the old SA itself, and aws's late retransmission changes nothing.
func TestUnfinishedPeerCHILDRekey(t *testing.T) {
	p := established(t, func(c, a *ike.PeerConfig) { a.RetransmitTimeout = 60 * time.Second })
	before := status(t, p.cgw)
	loseCollisionAndAnswer(t, p)
	for i := range 1200 { // 2 minutes
		p.net.Advance(100*time.Millisecond, 100*time.Millisecond)
		if !checkDataplane(t, p, fmt.Sprintf("%.1fs", float64(i+1)/10)) {
			break
		}
	}
	checkConverged(t, p)
	if st := status(t, p.cgw); st.Children[0].InSPI == before.Children[0].InSPI {
		t.Errorf("CHILD SA not rekeyed")
	}
	for _, n := range []*iketest.Node{p.cgw, p.aws} {
		wantEvents(t, n, map[ike.EventKind]int{ike.EventChildDown: 0, ike.EventIKEDown: 0})
	}
}
