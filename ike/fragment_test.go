package ike_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ike/iketest"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// fragPair is a pair whose IKE_AUTH messages do not fit 576-octet
// datagrams: both sides use 700-octet FQDN identities (standing in for
// the certificate chains that make IKE_AUTH large) and offer every AWS
// algorithm, as cgw's defaults do.
func fragPair(t *testing.T, cgwSize, awsSize int) *pair {
	longID := func(host string) ike.Identity {
		return ike.Identity{Type: uint8(message.IDFQDN), Data: []byte(host + strings.Repeat(".branch-office", 50))}
	}
	return newPair(t, func(c, a *ike.PeerConfig) {
		for _, pc := range []*ike.PeerConfig{c, a} {
			pc.IKEProposals = props(t, true, ipsec.DefaultIKEProposals...)
			pc.ESPProposals = props(t, false, ipsec.DefaultESPProposals...)
		}
		c.LocalID, a.LocalID = longID("cgw"), longID("aws")
		c.FragmentSize, a.FragmentSize = cgwSize, awsSize
	})
}

// wire is one packet as seen on the network, decoded enough for the tests.
type wire struct {
	hdr     message.Header
	skf     bool
	num     int // fragment number (SKF only)
	size    int
	offered bool // IKE_SA_INIT carries IKEV2_FRAGMENTATION_SUPPORTED
}

func decodeWire(t *testing.T, pkts []iketest.Packet) []wire {
	t.Helper()
	var out []wire
	for _, p := range pkts {
		h, err := message.ParseHeader(p.Data)
		if err != nil {
			t.Fatalf("unparseable packet: %v", err)
		}
		w := wire{hdr: h, size: len(p.Data), skf: h.NextPayload == message.PayloadSKF}
		if w.skf {
			w.num = int(p.Data[message.HeaderLen+4])<<8 | int(p.Data[message.HeaderLen+5])
		}
		if h.Exchange == message.IKESAInit {
			m, err := message.Parse(p.Data, nil)
			if err != nil {
				t.Fatal(err)
			}
			w.offered = m.Notify(message.NotifyIKEv2FragmentationSupported) != nil
		}
		out = append(out, w)
	}
	return out
}

// stepAll moves packets until the network is quiet and returns them all.
func stepAll(t *testing.T, p *pair) []wire {
	t.Helper()
	var seen []wire
	for {
		pkts := p.net.Step()
		if len(pkts) == 0 {
			return seen
		}
		seen = append(seen, decodeWire(t, pkts)...)
	}
}

// TestFragmentationNegotiated: both sides offer fragmentation in
// IKE_SA_INIT, the IKE_AUTH messages that exceed the fragment size go out
// as SKF fragments that each fit it, and both reassemble them.
func TestFragmentationNegotiated(t *testing.T) {
	const size = 576
	p := fragPair(t, size, size)
	seen := stepAll(t, p)
	cs := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	as := wantState(t, p.aws, ike.StateEstablished, ike.StateEstablished)
	var initOffers, authFrags, authReqFrags int
	for _, w := range seen {
		if w.hdr.Exchange == message.IKESAInit && w.offered {
			initOffers++
		}
		if w.hdr.Exchange == message.IKEAuth && w.skf {
			authFrags++
			if !w.hdr.IsResponse() {
				authReqFrags++
			}
			if w.size > size-32 {
				t.Errorf("fragment %d of %s is %d octets, more than %d-32 (IPv4, UDP, non-ESP marker)", w.num, w.hdr.Exchange, w.size, size)
			}
		}
	}
	if initOffers != 2 {
		t.Errorf("%d IKE_SA_INIT messages offered fragmentation, want 2", initOffers)
	}
	if authReqFrags < 2 {
		t.Fatalf("IKE_AUTH request went out in %d fragments, want at least 2", authReqFrags)
	}
	if !cs.Fragmentation || !as.Fragmentation {
		t.Errorf("negotiated: cgw %v, aws %v", cs.Fragmentation, as.Fragmentation)
	}
	if cs.Fragments.Sent != uint64(authReqFrags) || as.Fragments.Received != uint64(authReqFrags) || as.Fragments.Reassembled != 1 {
		t.Errorf("cgw sent %+v, aws received %+v; %d request fragments on the wire", cs.Fragments, as.Fragments, authReqFrags)
	}
	if cs.Fragments.Sent+as.Fragments.Sent != uint64(authFrags) {
		t.Errorf("sent %d+%d fragments, %d on the wire", cs.Fragments.Sent, as.Fragments.Sent, authFrags)
	}
	checkChildPair(t, p.cgw, p.aws)

	// A CHILD rekey (CREATE_CHILD_SA) is fragmented too, and a rekeyed
	// IKE SA keeps fragmentation.
	must(t, p.cgw.Manager.Rekey("aws-t1", true))
	p.net.Deliver()
	cs = wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if !cs.Fragmentation {
		t.Errorf("the rekeyed IKE SA lost fragmentation")
	}
}

// TestFragmentationNotNegotiated: when the peer does not offer it, nothing
// is fragmented, however large, and a small fragment size changes nothing.
func TestFragmentationNotNegotiated(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cgw, aws int
	}{{"peer does not offer", 576, -1}, {"we do not offer", -1, 576}} {
		t.Run(tc.name, func(t *testing.T) {
			p := fragPair(t, tc.cgw, tc.aws)
			seen := stepAll(t, p)
			cs := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
			big := false
			for _, w := range seen {
				if w.skf {
					t.Fatalf("a fragment went out although fragmentation was not negotiated")
				}
				if w.hdr.Exchange == message.IKESAInit && w.hdr.IsResponse() && w.offered {
					t.Errorf("the responder offered fragmentation the initiator did not offer, or it disabled")
				}
				big = big || (w.hdr.Exchange == message.IKEAuth && w.size > 576-32)
			}
			if !big {
				t.Fatalf("no message exceeded the fragment size: the test proves nothing")
			}
			if cs.Fragmentation || cs.Fragments != (ike.FragmentStats{}) {
				t.Errorf("status: negotiated %v, %+v", cs.Fragmentation, cs.Fragments)
			}
		})
	}
}

// TestFragmentRetransmission: a lost fragment makes the whole message
// incomplete; the retransmission resends every fragment, and the
// responder's cached (fragmented) response is resent whole.
func TestFragmentRetransmission(t *testing.T) {
	p := fragPair(t, 576, 576)
	p.net.Step() // IKE_SA_INIT request
	p.net.Step() // response
	req := p.net.TakeFrom(p.cgw)
	ws := decodeWire(t, req)
	if len(ws) < 2 || !ws[0].skf || ws[0].hdr.Exchange != message.IKEAuth {
		t.Fatalf("IKE_AUTH request: %+v", ws)
	}
	n := len(req)
	// Lose the last fragment: aws holds the others and answers nothing.
	p.net.Send(p.cgw, req[:n-1]...)
	if got := p.net.TakeFrom(p.aws); len(got) != 0 {
		t.Fatalf("aws answered an incomplete request with %d packets", len(got))
	}
	p.net.Clock.Advance(5 * time.Second)
	again := p.net.TakeFrom(p.cgw)
	if len(again) != n {
		t.Fatalf("retransmission has %d packets, the request %d fragments", len(again), n)
	}
	// The already held fragments come again as duplicates.
	p.net.Send(p.cgw, again...)
	resp := p.net.TakeFrom(p.aws)
	if len(resp) < 2 {
		t.Fatalf("IKE_AUTH response in %d packets, want fragments", len(resp))
	}
	// Lose the whole response: cgw retransmits, aws resends its cached
	// response in full.
	p.net.Clock.Advance(8 * time.Second)
	p.net.Send(p.cgw, p.net.TakeFrom(p.cgw)...)
	if cached := p.net.TakeFrom(p.aws); len(cached) != len(resp) {
		t.Fatalf("cached response resent in %d packets, sent first in %d", len(cached), len(resp))
	} else {
		p.net.Send(p.aws, cached...)
	}
	p.net.Deliver()
	wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	d := p.aws.Manager.Drops().Fragments
	if d["fragment_duplicate"] < uint64(n-1) {
		t.Errorf("aws dropped %d duplicate fragments, want at least %d: %v", d["fragment_duplicate"], n-1, d)
	}
}

// TestFragmentForgeries: fragments that fail their integrity check are
// counted and dropped, and never spoil the reassembly of the real message.
func TestFragmentForgeries(t *testing.T) {
	p := fragPair(t, 576, 576)
	p.net.Step()
	p.net.Step()
	req := p.net.TakeFrom(p.cgw)
	if len(req) < 2 {
		t.Fatalf("IKE_AUTH request in %d packets", len(req))
	}
	var forged []iketest.Packet
	for _, pk := range req {
		f := pk
		f.Data = bytes.Clone(pk.Data)
		f.Data[len(f.Data)-1] ^= 0x80 // ICV
		forged = append(forged, f)
	}
	// Out of range: Fragment Number 0 (rewritten after sealing, so it
	// also fails the ICV; parsing refuses it first).
	zero := req[0]
	zero.Data = bytes.Clone(req[0].Data)
	zero.Data[message.HeaderLen+4], zero.Data[message.HeaderLen+5] = 0, 0
	forged = append(forged, zero)
	p.net.Send(p.cgw, forged...)
	if got := p.net.TakeFrom(p.aws); len(got) != 0 {
		t.Fatalf("aws answered forged fragments")
	}
	// The genuine fragments, in reverse order, still complete.
	for i := len(req) - 1; i >= 0; i-- {
		p.net.Send(p.cgw, req[i])
	}
	p.net.Deliver()
	wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	d := p.aws.Manager.Drops().Fragments
	if d["fragment_unauthentic"] != uint64(len(req)) || d["fragment_malformed"] != 1 {
		t.Errorf("drops %v, want %d fragment_unauthentic and 1 fragment_malformed", d, len(req))
	}
	if st := status(t, p.aws); st.UnauthDrops != uint64(len(req))+1 {
		t.Errorf("UnauthDrops %d, want %d", st.UnauthDrops, len(req)+1)
	}
}

func TestFragmentSizeValidation(t *testing.T) {
	n := iketest.NewNetwork()
	nd := n.Add(cgwAddr, testLogger(t))
	t.Cleanup(func() { nd.Manager.Close() })
	for _, size := range []int{100, 575, 9001} {
		pc := peerConfig(t, "x", cgwAddr, awsAddr, ike.StartRespond)
		pc.FragmentSize = size
		if err := nd.Manager.AddPeer(pc); err == nil {
			t.Errorf("FragmentSize %d accepted", size)
		}
	}
}

// TestFragmentShrinkOnLoss: on a path narrower than the fragment size
// (here 576 octets, with fragments of up to 1280 configured), the request
// that does not fit is lost twice and then retransmitted in fragments for
// the smallest IPv4 path, which cross.
func TestFragmentShrinkOnLoss(t *testing.T) {
	// cgw's IKE_AUTH (a 700-octet identity) is about 1 KB; aws answers
	// with a short identity, so its response fits the path, and a short
	// IKE proposal keeps IKE_SA_INIT (never fragmented) below 576.
	p := newPair(t, func(c, a *ike.PeerConfig) {
		c.IKEProposals = props(t, true, "aes128-sha256-ecp256")
		a.IKEProposals = c.IKEProposals
		c.LocalID = ike.Identity{Type: uint8(message.IDFQDN), Data: []byte("cgw" + strings.Repeat(".branch-office", 50))}
		c.FragmentSize, a.FragmentSize = 1280, 1280
	})
	var lost int
	p.net.Drop = func(from *iketest.Node, pk iketest.Packet) bool {
		if from == p.cgw && len(pk.Data) > 576-32 {
			lost++
			return true
		}
		return false
	}
	p.net.Deliver()
	if st := status(t, p.cgw); st.State == ike.StateEstablished {
		t.Fatalf("established before any retransmission: the request was not larger than the path")
	}
	p.net.Advance(12*time.Second, time.Second)
	cs := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if lost != 2 || cs.Fragments.Sent < 2 {
		t.Errorf("%d transmissions lost, %d fragments sent; want 2 lost, then fragments", lost, cs.Fragments.Sent)
	}
}

// TestLargeRequestHint: an IKE_AUTH that goes unanswered as one datagram
// too large for a 1280-octet path fails with a reason that says so.
func TestLargeRequestHint(t *testing.T) {
	p := newPair(t, func(c, a *ike.PeerConfig) {
		c.LocalID = ike.Identity{Type: uint8(message.IDFQDN), Data: []byte("cgw" + strings.Repeat(".branch-office", 100))}
		c.FragmentSize = -1
	})
	p.net.Drop = func(from *iketest.Node, pk iketest.Packet) bool {
		return from == p.cgw && len(pk.Data) > 1280-52
	}
	p.net.Advance(200*time.Second, 5*time.Second)
	st := status(t, p.cgw)
	if !strings.Contains(st.LastFailure, "did not answer our IKE_AUTH") ||
		!strings.Contains(st.LastFailure, "because ike_fragment_size is 0 (IKE fragmentation off), and a path that drops IP fragments loses it") {
		t.Errorf("last failure: %q", st.LastFailure)
	}
}

// TestFragmentBudget: the octets all IKE SAs hold in incomplete messages
// are bounded together; a fragment that would pass the budget is dropped
// with the SA's incomplete messages, and what an SA held is returned when
// the message completes or the SA goes.
func TestFragmentBudget(t *testing.T) {
	p := fragPair(t, 576, 576)
	ike.SetFragmentBudget(p.aws.Manager, 100)
	p.net.Step()
	p.net.Step()
	req := p.net.TakeFrom(p.cgw)
	if len(req) < 2 {
		t.Fatalf("IKE_AUTH request in %d packets, want fragments", len(req))
	}
	p.net.Send(p.cgw, req[0])
	if held := ike.FragmentOctetsHeld(p.aws.Manager); held != 0 {
		t.Errorf("holding %d octets after passing the budget, want 0", held)
	}
	if d := p.aws.Manager.Drops().Fragments; d["fragment_budget"] != 1 {
		t.Errorf("drops %v, want one fragment_budget", d)
	}
	if got := p.net.TakeFrom(p.aws); len(got) != 0 {
		t.Fatalf("aws answered a request it could not reassemble")
	}

	// With room for it, the same request completes and nothing stays held.
	ike.SetFragmentBudget(p.aws.Manager, 1<<20)
	p.net.Send(p.cgw, req...)
	p.net.Deliver()
	wantState(t, p.aws, ike.StateEstablished, ike.StateEstablished)
	if held := ike.FragmentOctetsHeld(p.aws.Manager); held != 0 {
		t.Errorf("holding %d octets after the message completed", held)
	}
	// An IKE SA that goes with a message half reassembled gives it back.
	p.net.Send(p.cgw, req[0]) // a late copy starts a new set
	if held := ike.FragmentOctetsHeld(p.aws.Manager); held <= 0 {
		t.Fatalf("holding %d octets after a late first fragment", held)
	}
	must(t, p.aws.Manager.RemovePeer("cgw"))
	if held := ike.FragmentOctetsHeld(p.aws.Manager); held != 0 {
		t.Errorf("holding %d octets after the IKE SA was removed", held)
	}
}
