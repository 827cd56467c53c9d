package ike_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ike/iketest"
)

// Exchange collisions, table-driven in the style of strongSwan's
// test_child_rekey.c / test_ike_rekey.c. Each case starts one exchange on
// each side at the same moment (both requests are on the wire before
// either arrives), then delivers that first flight in one of several ways:
//
//	crossed            the two requests cross:
//	                     cgw: REQ(a) -->        <-- REQ(b) :aws
//	                     each answers the other's request while its own is
//	                     in flight, so both ends see the collision
//	cgw request lost   REQ(a) is lost; REQ(b) is answered at once, and cgw
//	                   retransmits REQ(a) 4 s later (retransmission path)
//	aws response lost  the requests cross, but aws's answer to REQ(a) is
//	                   lost; cgw retransmits and aws resends its cached
//	                   answer
//	cgw first          reordered: REQ(a) reaches aws, and aws's answer
//	                   reaches cgw before REQ(b) does, so cgw completes
//	                   without noticing the collision
//	aws first          the mirror image
//
// After that the network runs normally for four minutes of fake time
// (retries after TEMPORARY_FAILURE, DELETEs, lingering inbound SAs,
// timeouts for redundant SAs that are never deleted). Every case must end
// with the same IKE SA on both sides, no other IKE SA, exactly one CHILD SA
// pair on both sides (keys matching across the ends) and each side's active
// outbound SA being the peer's inbound SA.

type delivery int

const (
	crossed delivery = iota
	cgwRequestLost
	awsResponseLost
	cgwFirst
	awsFirst
)

var deliveries = []struct {
	d    delivery
	name string
}{
	{crossed, "crossed"},
	{cgwRequestLost, "cgw request lost"},
	{awsResponseLost, "aws response lost"},
	{cgwFirst, "cgw first"},
	{awsFirst, "aws first"},
}

// action starts one exchange on node n for its tunnel named name.
type action struct {
	name  string
	start func(t *testing.T, n *iketest.Node, name string)
}

var (
	childRekey  = action{"CHILD rekey", func(t *testing.T, n *iketest.Node, name string) { must(t, n.Manager.Rekey(name, false)) }}
	ikeRekey    = action{"IKE rekey", func(t *testing.T, n *iketest.Node, name string) { must(t, n.Manager.Rekey(name, true)) }}
	childDelete = action{"CHILD delete", func(t *testing.T, n *iketest.Node, name string) { must(t, ike.DeleteChild(n.Manager, name)) }}
	ikeDelete   = action{"IKE delete", func(t *testing.T, n *iketest.Node, name string) { must(t, ike.DeleteIKE(n.Manager, name)) }}
	dpdProbe    = action{"DPD", func(t *testing.T, n *iketest.Node, name string) { must(t, ike.SendDPD(n.Manager, name)) }}
)

// collisionRun is what a case can inspect afterwards.
type collisionRun struct {
	p          *pair
	d          delivery
	before     ike.PeerStatus // cgw, before the collision
	cgwAllocs  []uint32       // SPIs cgw allocated during the collision, in order
	awsFlight2 []string       // what aws sent right after the crossed first flight
	cgwFlight2 []string
}

func count(n *iketest.Node, k ike.EventKind) int {
	c := 0
	for _, e := range n.Listener.Events(false) {
		if e.Kind == k {
			c++
		}
	}
	return c
}

func runCollision(t *testing.T, d delivery, lowest string, cgwAct, awsAct action) *collisionRun {
	t.Helper()
	p := established(t, nil)
	switch lowest {
	case "cgw": // cgw's exchange holds the lowest nonce
		ike.SetNonceFirstByte(p.cgw.Manager, 0x00, 0xff)
		ike.SetNonceFirstByte(p.aws.Manager, 0xff, 0x80)
	case "aws":
		ike.SetNonceFirstByte(p.cgw.Manager, 0xff, 0x80)
		ike.SetNonceFirstByte(p.aws.Manager, 0x00, 0xff)
	}
	r := &collisionRun{p: p, d: d, before: status(t, p.cgw)}
	allocs := len(p.cgw.Installer.Allocated())
	p.cgw.Installer.Ops(true)
	p.aws.Installer.Ops(true)

	cgwAct.start(t, p.cgw, "aws-t1")
	awsAct.start(t, p.aws, "cgw")
	reqA := p.net.TakeFrom(p.cgw) // REQ(a), cgw's request
	reqB := p.net.TakeFrom(p.aws) // REQ(b), aws's request
	if len(reqA) != 1 || len(reqB) != 1 {
		t.Fatalf("want one request from each side, got cgw %v, aws %v", exchangesOf(t, reqA), exchangesOf(t, reqB))
	}
	switch d {
	case crossed:
		/* cgw: REQ(a) -->   <-- REQ(b) :aws, both in flight at once */
		p.net.Send(p.cgw, reqA...)
		p.net.Send(p.aws, reqB...)
		/* each end answers at once, whatever its own request's state */
		fromCGW, fromAWS := p.net.TakeFrom(p.cgw), p.net.TakeFrom(p.aws)
		r.cgwFlight2, r.awsFlight2 = exchangesOf(t, fromCGW), exchangesOf(t, fromAWS)
		p.net.Send(p.cgw, fromCGW...)
		p.net.Send(p.aws, fromAWS...)
	case cgwRequestLost:
		/* REQ(a) lost; <-- REQ(b) answered; REQ(a) retransmitted later */
		p.net.Send(p.aws, reqB...)
	case awsResponseLost:
		/* crossed, but aws's RESP(a) is lost */
		p.net.Send(p.cgw, reqA...)
		p.net.Send(p.aws, reqB...)
		respA := p.net.TakeFrom(p.aws)
		if ex := exchangesOf(t, respA); len(ex) == 0 || !slices.ContainsFunc(ex, func(s string) bool { return len(s) > 4 && s[len(s)-4:] == "resp" }) {
			t.Fatalf("aws sent no response to drop: %v", ex)
		}
	case cgwFirst:
		/* REQ(a) -->, <-- RESP(a), then <-- REQ(b) */
		p.net.Send(p.cgw, reqA...)
		p.net.Send(p.aws, p.net.TakeFrom(p.aws)...)
		p.net.Send(p.aws, reqB...)
	case awsFirst:
		/* <-- REQ(b), RESP(b) -->, then REQ(a) --> */
		p.net.Send(p.aws, reqB...)
		p.net.Send(p.cgw, p.net.TakeFrom(p.cgw)...)
		p.net.Send(p.cgw, reqA...)
	}
	p.net.Deliver()
	p.net.Advance(240*time.Second, 250*time.Millisecond)
	for _, s := range p.cgw.Installer.Allocated()[allocs:] {
		r.cgwAllocs = append(r.cgwAllocs, uint32(s))
	}
	checkConverged(t, p)
	for _, n := range []*iketest.Node{p.cgw, p.aws} {
		if n.Listener.Has(ike.EventPeerDead) || n.Listener.Has(ike.EventNegotiationFailed) {
			t.Errorf("%s: events %v include a failure", n.Addr, n.Listener.Kinds())
		}
	}
	return r
}

// checkConverged asserts the end state every collision must reach.
func checkConverged(t *testing.T, p *pair) {
	t.Helper()
	c := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	a := wantState(t, p.aws, ike.StateEstablished, ike.StateEstablished)
	if c.SPIi != a.SPIi || c.SPIr != a.SPIr {
		t.Fatalf("the ends disagree on the IKE SA: cgw %016x/%016x, aws %016x/%016x", c.SPIi, c.SPIr, a.SPIi, a.SPIr)
	}
	if c.Initiator == a.Initiator {
		t.Fatalf("both ends think they are the IKE SA's original initiator: %v", c.Initiator)
	}
	if n, m := ike.IKESAs(p.cgw.Manager, "aws-t1"), ike.IKESAs(p.aws.Manager, "cgw"); n != 1 || m != 1 {
		t.Fatalf("IKE SAs left: cgw %d, aws %d, want 1 each", n, m)
	}
	checkChildPair(t, p.cgw, p.aws)
	for _, n := range []*iketest.Node{p.cgw, p.aws} {
		if in, out := n.Installer.Count(); in != 1 || out != 1 {
			t.Fatalf("%s: %d inbound / %d outbound SAs installed, want exactly one pair\ncgw:\n%saws:\n%s", n.Addr, in, out,
				ike.DumpSAs(p.cgw.Manager, "aws-t1"), ike.DumpSAs(p.aws.Manager, "cgw"))
		}
		if c := status(t, n).Children[0]; n.Installer.ActiveOutbound() != c.OutSPI {
			t.Fatalf("%s: active outbound %s is not the CHILD SA's %s", n.Addr, n.Installer.ActiveOutbound(), c.OutSPI)
		}
	}
}

func wantEvents(t *testing.T, n *iketest.Node, want map[ike.EventKind]int) {
	t.Helper()
	for k, w := range want {
		if got := count(n, k); got != w {
			t.Errorf("%s: %d events of kind %d, want %d (all: %v)", n.Addr, got, k, w, n.Listener.Kinds())
		}
	}
}

func TestRekeyCollisions(t *testing.T) {
	cases := []struct {
		name     string
		cgw, aws action
		lowest   string // whose exchange holds the lowest nonce ("" = don't care)
		check    func(t *testing.T, r *collisionRun)
	}{
		{
			/* Both rekey the CHILD SA; both exchanges complete. The one with
			   the lowest nonce (cgw's here) made the redundant SA, which cgw
			   deletes; aws, initiator of the surviving one, deletes the old SA:
			     REQ(a) N(REKEY_SA),SA,Ni,KEi -->   <-- REQ(b)
			     RESP(b) -->                        <-- RESP(a)
			     INFO D(redundant a) -->            <-- INFO D(old) */
			name: "CHILD rekey vs CHILD rekey, cgw lowest", cgw: childRekey, aws: childRekey, lowest: "cgw",
			check: checkChildVsChild,
		},
		{
			name: "CHILD rekey vs CHILD rekey, aws lowest", cgw: childRekey, aws: childRekey, lowest: "aws",
			check: checkChildVsChild,
		},
		{
			/* Both rekey the IKE SA; the new IKE SA of the exchange with the
			   lowest nonce is deleted by its initiator, the other inherits
			   the CHILD SA, and its initiator deletes the old IKE SA
			   (RFC 7296 2.8.2). */
			name: "IKE rekey vs IKE rekey, cgw lowest", cgw: ikeRekey, aws: ikeRekey, lowest: "cgw",
			check: checkIKEVsIKE,
		},
		{
			name: "IKE rekey vs IKE rekey, aws lowest", cgw: ikeRekey, aws: ikeRekey, lowest: "aws",
			check: checkIKEVsIKE,
		},
		{
			/* A CHILD rekey meets an IKE rekey: each end answers the other's
			   request with TEMPORARY_FAILURE (RFC 7296 2.25.2) and retries
			   after a random delay; both rekeys happen, one after the other. */
			name: "CHILD rekey vs IKE rekey", cgw: childRekey, aws: ikeRekey,
			check: checkBothRekeys,
		},
		{
			name: "IKE rekey vs CHILD rekey", cgw: ikeRekey, aws: childRekey,
			check: checkBothRekeys,
		},
		{
			/* Rekey vs delete (RFC 7296 2.25.1): the rekey of a CHILD SA being
			   deleted gets TEMPORARY_FAILURE (or CHILD_SA_NOT_FOUND once it is
			   gone); the DELETE is answered as usual. The deleting side
			   then negotiates a new CHILD SA. */
			name: "CHILD rekey vs CHILD delete", cgw: childRekey, aws: childDelete,
			check: checkChildDeleted,
		},
		{
			name: "CHILD delete vs CHILD rekey", cgw: childDelete, aws: childRekey,
			check: checkChildDeleted,
		},
		{
			/* Rekey vs delete of the IKE SA (2.25.2): the DELETE is answered
			   and the rekey forgotten; the tunnel is re-established. */
			name: "IKE rekey vs IKE delete", cgw: ikeRekey, aws: ikeDelete,
			check: checkIKEDeleted,
		},
		{
			name: "IKE delete vs IKE rekey", cgw: ikeDelete, aws: ikeRekey,
			check: checkIKEDeleted,
		},
		{
			/* A DPD probe arriving while the other side's rekey is in flight
			   is answered at once, and a rekey does not wait for DPD. */
			name: "CHILD rekey vs DPD", cgw: childRekey, aws: dpdProbe,
			check: checkRekeyVsDPD(ike.EventChildRekeyed, "aws"),
		},
		{
			name: "DPD vs CHILD rekey", cgw: dpdProbe, aws: childRekey,
			check: checkRekeyVsDPD(ike.EventChildRekeyed, "cgw"),
		},
		{
			name: "IKE rekey vs DPD", cgw: ikeRekey, aws: dpdProbe,
			check: checkRekeyVsDPD(ike.EventIKERekeyed, "aws"),
		},
		{
			name: "DPD vs IKE rekey", cgw: dpdProbe, aws: ikeRekey,
			check: checkRekeyVsDPD(ike.EventIKERekeyed, "cgw"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range deliveries {
				t.Run(d.name, func(t *testing.T) {
					r := runCollision(t, d.d, tc.lowest, tc.cgw, tc.aws)
					tc.check(t, r)
					if t.Failed() {
						return
					}
					if d.d != crossed || tc.lowest == "" {
						return
					}
					checkWinner(t, r, tc.cgw, tc.lowest)
				})
			}
		})
	}
}

// checkWinner verifies, for crossed requests, that the exchange without the
// lowest nonce produced the surviving SA.
func checkWinner(t *testing.T, r *collisionRun, a action, lowest string) {
	t.Helper()
	cgwWon := lowest == "aws"
	st := status(t, r.p.cgw)
	switch a.name {
	case ikeRekey.name:
		// The winner's initiator is the new IKE SA's original initiator.
		if st.Initiator != cgwWon {
			t.Errorf("surviving IKE SA: cgw initiator=%v, want %v (lowest nonce in %s's exchange)", st.Initiator, cgwWon, lowest)
		}
	case childRekey.name:
		// cgw allocated its own rekey's inbound SPI first, then the one
		// answering aws's rekey.
		if len(r.cgwAllocs) < 2 {
			t.Fatalf("cgw allocated %v during the collision", r.cgwAllocs)
		}
		want := r.cgwAllocs[1]
		if cgwWon {
			want = r.cgwAllocs[0]
		}
		if got := uint32(st.Children[0].InSPI); got != want {
			t.Errorf("surviving CHILD SA has cgw inbound SPI %08x, want %08x (lowest nonce in %s's exchange)", got, want, lowest)
		}
	}
}

func checkChildVsChild(t *testing.T, r *collisionRun) {
	t.Helper()
	for _, n := range []*iketest.Node{r.p.cgw, r.p.aws} {
		wantEvents(t, n, map[ike.EventKind]int{ike.EventChildRekeyed: 1, ike.EventChildDown: 0, ike.EventChildUp: 0, ike.EventIKEDown: 0})
	}
	st := status(t, r.p.cgw)
	if st.Children[0].InSPI == r.before.Children[0].InSPI || st.SPIi != r.before.SPIi {
		t.Errorf("CHILD SA not rekeyed, or IKE SA changed")
	}
	if r.d == crossed {
		/* both requests answered right away */
		if !slices.Contains(r.cgwFlight2, "CREATE_CHILD_SA resp") || !slices.Contains(r.awsFlight2, "CREATE_CHILD_SA resp") {
			t.Errorf("second flight cgw %v aws %v: want both answers", r.cgwFlight2, r.awsFlight2)
		}
	}
}

func checkIKEVsIKE(t *testing.T, r *collisionRun) {
	t.Helper()
	for _, n := range []*iketest.Node{r.p.cgw, r.p.aws} {
		wantEvents(t, n, map[ike.EventKind]int{ike.EventIKERekeyed: 1, ike.EventIKEDown: 0, ike.EventChildDown: 0, ike.EventChildRekeyed: 0})
		if ops := n.Installer.Ops(false); len(ops) != 0 {
			t.Errorf("%s: an IKE rekey collision touched the dataplane: %v", n.Addr, opsString(ops))
		}
	}
	st := status(t, r.p.cgw)
	if st.SPIi == r.before.SPIi || st.Children[0].InSPI != r.before.Children[0].InSPI {
		t.Errorf("IKE SA not rekeyed, or CHILD SA changed")
	}
}

func checkBothRekeys(t *testing.T, r *collisionRun) {
	t.Helper()
	for _, n := range []*iketest.Node{r.p.cgw, r.p.aws} {
		wantEvents(t, n, map[ike.EventKind]int{ike.EventIKERekeyed: 1, ike.EventChildRekeyed: 1, ike.EventIKEDown: 0, ike.EventChildDown: 0})
	}
	if r.d == crossed {
		/* <-- N(TEMPORARY_FAILURE) both ways: each answered at once */
		if !slices.Contains(r.cgwFlight2, "CREATE_CHILD_SA resp") || !slices.Contains(r.awsFlight2, "CREATE_CHILD_SA resp") {
			t.Errorf("second flight cgw %v aws %v: want both answers", r.cgwFlight2, r.awsFlight2)
		}
	}
}

func checkChildDeleted(t *testing.T, r *collisionRun) {
	t.Helper()
	old := r.before.Children[0]
	for _, n := range []*iketest.Node{r.p.cgw, r.p.aws} {
		wantEvents(t, n, map[ike.EventKind]int{ike.EventChildRekeyed: 0, ike.EventIKEDown: 0})
	}
	st := status(t, r.p.cgw)
	if c := st.Children[0]; c.InSPI == old.InSPI || c.OutSPI == old.OutSPI {
		t.Errorf("the deleted CHILD SA survived")
	}
	if st.SPIi != r.before.SPIi {
		t.Errorf("IKE SA changed by a CHILD SA delete")
	}
}

func checkIKEDeleted(t *testing.T, r *collisionRun) {
	t.Helper()
	for _, n := range []*iketest.Node{r.p.cgw, r.p.aws} {
		wantEvents(t, n, map[ike.EventKind]int{ike.EventIKERekeyed: 0, ike.EventChildRekeyed: 0})
	}
	if st := status(t, r.p.cgw); st.SPIi == r.before.SPIi {
		t.Errorf("the deleted IKE SA survived")
	}
}

func checkRekeyVsDPD(k ike.EventKind, prober string) func(*testing.T, *collisionRun) {
	return func(t *testing.T, r *collisionRun) {
		t.Helper()
		for _, n := range []*iketest.Node{r.p.cgw, r.p.aws} {
			wantEvents(t, n, map[ike.EventKind]int{k: 1, ike.EventIKEDown: 0, ike.EventChildDown: 0})
		}
		if r.d == crossed {
			/* the DPD probe is answered in the very next flight even
			   though the answering side's rekey is in flight */
			answer := r.cgwFlight2
			if prober == "cgw" {
				answer = r.awsFlight2
			}
			if !slices.Contains(answer, "INFORMATIONAL resp") {
				t.Errorf("DPD from %s not answered at once: %v", prober, answer)
			}
		}
	}
}

// Equal lifetimes without fuzz make every CHILD and IKE rekey collide, and
// a lossy network (every 6th packet lost, deterministic) drives the
// retransmission paths through them. After an hour of fake time and a quiet
// settling period, the tunnel must have converged as in every other case.
func TestRekeyCollisionsUnderLoss(t *testing.T) {
	for _, seed := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			p := newSeededPair(t, fmt.Sprint("chaos", seed), func(c, a *ike.PeerConfig) {
				for _, pc := range []*ike.PeerConfig{c, a} {
					pc.IKELifetime, pc.ChildLifetime, pc.RekeyMargin, pc.RekeyFuzz = 90*time.Second, 30*time.Second, 10*time.Second, 0
				}
			})
			p.cgw.Listener.Events(true)
			p.aws.Listener.Events(true)
			n := seed
			p.net.Drop = func(*iketest.Node, iketest.Packet) bool { n++; return n%6 == 0 }
			p.net.Advance(time.Hour, 100*time.Millisecond)
			p.net.Drop = nil
			p.net.Advance(5*time.Minute, 100*time.Millisecond)
			// Rekeys go on every 20 s; check between two, once the
			// replaced inbound SAs stopped lingering.
			for range 30 {
				ci, co := p.cgw.Installer.Count()
				ai, ao := p.aws.Installer.Count()
				if ci+co+ai+ao == 4 {
					break
				}
				p.net.Advance(time.Second, 100*time.Millisecond)
			}
			checkConverged(t, p)
			for _, nd := range []*iketest.Node{p.cgw, p.aws} {
				if c := count(nd, ike.EventChildRekeyed); c < 60 {
					t.Errorf("%s: only %d CHILD rekeys in an hour of 30 s lifetimes", nd.Addr, c)
				}
				if c := count(nd, ike.EventIKERekeyed); c < 20 {
					t.Errorf("%s: only %d IKE rekeys in an hour of 90 s lifetimes", nd.Addr, c)
				}
				if c := count(nd, ike.EventChildDown); c > 0 {
					t.Errorf("%s: %d ChildDown events: %v", nd.Addr, c, nd.Listener.Kinds())
				}
			}
		})
	}
}
