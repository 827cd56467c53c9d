package ike_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ike/iketest"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// exchangesOf parses the headers of packets, for asserting what went on
// the wire.
func exchangesOf(t *testing.T, pkts []iketest.Packet) []string {
	t.Helper()
	var out []string
	for _, p := range pkts {
		h, err := message.ParseHeader(p.Data)
		if err != nil {
			t.Fatalf("unparseable packet on the wire: %v", err)
		}
		dir := "req"
		if h.IsResponse() {
			dir = "resp"
		}
		out = append(out, h.Exchange.String()+" "+dir)
	}
	return out
}

func TestInvalidKERetry(t *testing.T) {
	p := newPair(t, func(c, a *ike.PeerConfig) {
		c.IKEProposals = props(t, true, "aes128-sha256-ecp256-modp2048")
		a.IKEProposals = props(t, true, "aes128-sha256-modp2048")
	})
	/* IKE_SA_INIT: HDR, SAi1, KEi(ECP256), Ni --> */
	p.net.Step()
	/* <-- HDR(A,0), N(INVALID_KE_PAYLOAD, MODP2048) */
	resp := p.net.Step()
	if len(resp) != 1 {
		t.Fatalf("want one response, got %d", len(resp))
	}
	h, _ := message.ParseHeader(resp[0].Data)
	if h.SPIr != 0 {
		t.Errorf("INVALID_KE_PAYLOAD response carries responder SPI %x; a stateless refusal uses 0", h.SPIr)
	}
	if st := status(t, p.aws); st.State != ike.StateDown {
		t.Errorf("responder kept state after INVALID_KE_PAYLOAD: %s", st.State)
	}
	/* HDR, SAi1, KEi(MODP2048), Ni --> (same SPIi, message ID 0) */
	retry := p.net.Step()
	if got := exchangesOf(t, retry); len(got) != 1 || got[0] != "IKE_SA_INIT req" {
		t.Fatalf("retry: %v", got)
	}
	p.net.Deliver()
	st := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if st.IKEAlg.DH != ipsec.DHMODP2048 {
		t.Errorf("DH %d, want MODP2048", st.IKEAlg.DH)
	}
	if p.cgw.Listener.Has(ike.EventNegotiationFailed) || p.aws.Listener.Has(ike.EventNegotiationFailed) {
		t.Errorf("an INVALID_KE_PAYLOAD round trip is not a failure")
	}
}

func TestCookieRetry(t *testing.T) {
	n := iketest.NewNetwork()
	other := n.Add("192.0.2.77", testLogger(t))
	cgw := n.Add(cgwAddr, testLogger(t))
	aws := n.AddWith(awsAddr, testLogger(t), func(c *ike.Config) { c.CookieThreshold = 1 })
	t.Cleanup(func() { other.Manager.Close(); cgw.Manager.Close(); aws.Manager.Close() })
	must(t, aws.Manager.AddPeer(peerConfig(t, "cgw", awsAddr, cgwAddr, ike.StartRespond)))
	must(t, aws.Manager.AddPeer(peerConfig(t, "other", awsAddr, "192.0.2.77", ike.StartRespond)))
	// A first initiator leaves one half-open IKE SA on the responder: its
	// IKE_SA_INIT arrives, the response is lost.
	must(t, other.Manager.AddPeer(peerConfig(t, "aws", "192.0.2.77", awsAddr, ike.StartInitiate)))
	n.Step()
	n.Take()
	must(t, cgw.Manager.AddPeer(peerConfig(t, "aws", cgwAddr, awsAddr, ike.StartInitiate)))
	/* IKE_SA_INIT: HDR(A,0), SAi1, KEi, Ni --> */
	n.Step()
	/* <-- HDR(A,0), N(COOKIE) */
	resp := n.Step()
	if len(resp) != 1 {
		t.Fatalf("want one COOKIE response, got %d packets", len(resp))
	}
	/* HDR(A,0), N(COOKIE), SAi1, KEi, Ni --> */
	n.Deliver()
	for _, nd := range []*iketest.Node{cgw} {
		wantState(t, nd, ike.StateEstablished, ike.StateEstablished)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNoProposalChosenAndBackoff(t *testing.T) {
	p := newPair(t, func(c, a *ike.PeerConfig) {
		c.IKEProposals = props(t, true, "aes128-sha1-modp1024")
		a.IKEProposals = props(t, true, "aes256gcm16-prfsha384-ecp384")
	})
	/* IKE_SA_INIT: HDR, SAi1, KEi, Ni -->
	   <-- HDR, N(NO_PROPOSAL_CHOSEN) */
	p.net.Deliver()
	st := wantState(t, p.cgw, ike.StateDown, ike.StateDown)
	ev, ok := p.cgw.Listener.Last(ike.EventNegotiationFailed)
	if !ok || ev.Notify != ike.Notify(message.NotifyNoProposalChosen) {
		t.Fatalf("want a NegotiationFailed event with NO_PROPOSAL_CHOSEN, got %+v", ev)
	}
	for _, want := range []string{"NO_PROPOSAL_CHOSEN", "[aes128-sha1-modp1024]", "AWS accepts"} {
		if !strings.Contains(ev.Reason, want) || !strings.Contains(st.LastFailure, want) {
			t.Errorf("failure reason %q lacks %q", ev.Reason, want)
		}
	}
	if f, ok := p.aws.Listener.Last(ike.EventNegotiationFailed); !ok || !strings.Contains(f.Reason, "aes256gcm16") {
		t.Errorf("responder failure event %+v should name its own proposals", f)
	}
	// Retry with backoff: 5 s +-20 %, then 10 s +-20 %, forever.
	due := st.NextRetry.Sub(p.net.Clock.Now())
	if due < 4*time.Second || due > 6*time.Second {
		t.Fatalf("first retry in %s, want 4-6 s", due)
	}
	sent := p.cgw.Sender.Sent()
	p.net.Advance(due, time.Second)
	if p.cgw.Sender.Sent() <= sent {
		t.Fatalf("no new attempt after the backoff")
	}
	st = status(t, p.cgw)
	if due2 := st.NextRetry.Sub(p.net.Clock.Now()); due2 < 8*time.Second || due2 > 12*time.Second {
		t.Fatalf("second retry in %s, want 8-12 s", due2)
	}
	// Fixing the configuration lets the next attempt through.
	must(t, p.aws.Manager.RemovePeer("cgw"))
	must(t, p.aws.Manager.AddPeer(peerConfig(t, "cgw", awsAddr, cgwAddr, ike.StartRespond)))
	p.net.Advance(15*time.Second, time.Second)
	wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
}

func TestWrongPSK(t *testing.T) {
	p := newPair(t, func(c, a *ike.PeerConfig) { a.PSK = []byte("not-the-same-psk") })
	/* IKE_SA_INIT ... then
	   HDR, SK {IDi, AUTH, SAi2, TSi, TSr} -->
	   <-- HDR, SK {N(AUTHENTICATION_FAILED)} */
	p.net.Deliver()
	st := wantState(t, p.cgw, ike.StateDown, ike.StateDown)
	ev, _ := p.cgw.Listener.Last(ike.EventNegotiationFailed)
	if ev.Notify != ike.Notify(message.NotifyAuthenticationFailed) ||
		!strings.Contains(ev.Reason, "rejected our PSK/identity: check the tunnel's psk and that local_id is the public IP registered on the customer gateway") {
		t.Errorf("failure event %+v", ev)
	}
	if strings.Contains(st.LastFailure, testPSK) || strings.Contains(ev.Reason, "not-the-same") {
		t.Errorf("a PSK leaked into a failure message")
	}
	wantState(t, p.aws, ike.StateDown, ike.StateDown)
	if in, out := p.cgw.Installer.Count(); in+out != 0 {
		t.Errorf("SAs installed after an authentication failure")
	}
	if in, out := p.aws.Installer.Count(); in+out != 0 {
		t.Errorf("responder installed SAs after an authentication failure")
	}
	if st.NextRetry.IsZero() {
		t.Errorf("no retry scheduled")
	}
	// The retries keep failing cleanly.
	p.net.Advance(20*time.Second, time.Second)
	wantState(t, p.cgw, ike.StateDown, ike.StateDown)
}

// The initiator rejects the responder: the peer's identity does not match
// remote_id. The initiator tells the responder with AUTHENTICATION_FAILED
// in an INFORMATIONAL, and both drop the SA.
func TestInitiatorRejectsResponder(t *testing.T) {
	p := newPair(t, func(c, a *ike.PeerConfig) {
		c.RemoteID = ike.Identity{Type: uint8(message.IDFQDN), Data: []byte("vpn.example.com")}
	})
	/* HDR, SK {IDi, IDr, AUTH, N(INITIAL_CONTACT), SAi2, TSi, TSr} -->
	   <-- HDR, SK {IDr(198.51.100.10), AUTH, SAr2, TSi, TSr}
	   HDR, SK {N(AUTHENTICATION_FAILED)} --> */
	p.net.Deliver()
	wantState(t, p.cgw, ike.StateDown, ike.StateDown)
	ev, _ := p.cgw.Listener.Last(ike.EventNegotiationFailed)
	if !strings.Contains(ev.Reason, "remote_id") {
		t.Errorf("failure %q should point at remote_id", ev.Reason)
	}
	wantState(t, p.aws, ike.StateDown, ike.StateDown)
	if !p.aws.Listener.Has(ike.EventIKEDown) || !p.aws.Listener.Has(ike.EventChildDown) {
		t.Errorf("responder events %v: want its SAs torn down", p.aws.Listener.Kinds())
	}
	if in, out := p.aws.Installer.Count(); in+out != 0 {
		t.Errorf("responder still has %d+%d SAs", in, out)
	}
}

func TestTrafficSelectorNarrowing(t *testing.T) {
	vpc := netip.MustParsePrefix("10.0.0.0/16")
	p := newPair(t, func(c, a *ike.PeerConfig) {
		// cgw proposes 0/0 <-> 0/0 like AWS does; the responder narrows.
		a.TSLocal = []ipsec.TrafficSelector{ipsec.TSFromPrefix(vpc)}
	})
	p.net.Deliver()
	st := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	c := st.Children[0]
	if len(c.TSRemote) != 1 || c.TSRemote[0] != ipsec.TSFromPrefix(vpc) {
		t.Errorf("initiator's remote selectors %v, want %v", c.TSRemote, vpc)
	}
	if c.TSLocal[0] != ipsec.TSFromPrefix(netip.MustParsePrefix("0.0.0.0/0")) {
		t.Errorf("initiator's local selectors %v", c.TSLocal)
	}
	out, _ := p.cgw.Installer.Installed(ipsec.Outbound, c.OutSPI)
	if len(out.TSRemote) != 1 || out.TSRemote[0] != ipsec.TSFromPrefix(vpc) {
		t.Errorf("installed SA carries selectors %v", out.TSRemote)
	}
}

func TestTSUnacceptableKeepsIKESA(t *testing.T) {
	p := newPair(t, func(c, a *ike.PeerConfig) {
		c.TSLocal = []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("10.1.0.0/16"))}
		a.TSRemote = []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("192.168.0.0/16"))}
	})
	/* HDR, SK {IDi, AUTH, SAi2, TSi(10.1/16), TSr(0/0)} -->
	   <-- HDR, SK {IDr, AUTH, N(TS_UNACCEPTABLE)} */
	p.net.Deliver()
	wantState(t, p.cgw, ike.StateEstablished, ike.StateDown)
	wantState(t, p.aws, ike.StateEstablished, ike.StateDown)
	ev, _ := p.cgw.Listener.Last(ike.EventNegotiationFailed)
	if ev.Notify != ike.Notify(message.NotifyTSUnacceptable) || !strings.Contains(ev.Reason, "Phase 2 was unable to establish while keeping Phase 1") {
		t.Errorf("event %+v", ev)
	}
	if in, out := p.cgw.Installer.Count(); in+out != 0 {
		t.Errorf("SAs installed despite TS_UNACCEPTABLE")
	}
	// The initiator keeps trying a CHILD SA on the same IKE SA.
	sent := p.cgw.Sender.Sent()
	p.net.Advance(7*time.Second, time.Second)
	if p.cgw.Sender.Sent() == sent {
		t.Errorf("no CREATE_CHILD_SA retry")
	}
	wantState(t, p.cgw, ike.StateEstablished, ike.StateDown)
}

func TestRetransmitAndResponseCache(t *testing.T) {
	p := newPair(t, nil)
	p.net.Step() // IKE_SA_INIT request
	p.net.Step() // IKE_SA_INIT response
	/* HDR, SK {IDi, AUTH, SAi2, TSi, TSr} --> */
	p.net.Step()
	/* <-- HDR, SK {IDr, AUTH, SAr2, TSi, TSr}   (lost) */
	if lost := p.net.Take(); len(lost) != 1 {
		t.Fatalf("want one IKE_AUTH response, got %d packets", len(lost))
	}
	wantState(t, p.cgw, ike.StateNegotiating, ike.StateNegotiating)
	/* 4 s later: HDR, SK {IDi, AUTH, ...} --> (same message ID)
	   <-- the cached response, not a second CHILD SA */
	p.net.Clock.Advance(3900 * time.Millisecond)
	if got := p.net.Take(); len(got) != 0 {
		t.Fatalf("retransmitted before 4 s: %v", exchangesOf(t, got))
	}
	p.net.Clock.Advance(100 * time.Millisecond)
	p.net.Deliver()
	wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if in, out := p.aws.Installer.Count(); in != 1 || out != 1 {
		t.Errorf("responder has %d in / %d out SAs after a retransmitted IKE_AUTH, want 1/1", in, out)
	}
	checkChildPair(t, p.cgw, p.aws)
}

func TestRetransmitGivesUp(t *testing.T) {
	p := newPair(t, func(c, a *ike.PeerConfig) { c.RetransmitTries = 2 })
	p.net.Drop = func(*iketest.Node, iketest.Packet) bool { return true }
	// 4 s, then 7.2 s, then give up after 12.96 s more: 24.16 s.
	p.net.Clock.Advance(24 * time.Second)
	p.net.Flush()
	if st := status(t, p.cgw); st.State != ike.StateNegotiating {
		t.Fatalf("gave up too early: %s", st.State)
	}
	p.net.Clock.Advance(200 * time.Millisecond)
	p.net.Flush()
	st := status(t, p.cgw)
	if st.State != ike.StateDown || !strings.Contains(st.LastFailure, "did not answer our IKE_SA_INIT after 3 transmissions") {
		t.Fatalf("state %s, failure %q", st.State, st.LastFailure)
	}
	if sent := p.cgw.Sender.Sent(); sent != 3 {
		t.Errorf("%d transmissions, want 3", sent)
	}
}

func TestGarbageIgnored(t *testing.T) {
	p := newPair(t, nil)
	p.net.Deliver()
	before := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	sent := p.cgw.Sender.Sent()
	cgwEP := netip.MustParseAddrPort(cgwAddr + ":500")
	awsEP := netip.MustParseAddrPort(awsAddr + ":500")
	// An INFORMATIONAL DELETE for our IKE SA with a forged (zero) ICV.
	fake := &message.Message{Header: message.Header{SPIi: before.SPIi, SPIr: before.SPIr, MajorVersion: 2,
		Exchange: message.Informational, Flags: 0, MessageID: 0}}
	fake.Payloads = []message.Payload{&message.Delete{Protocol: ipsec.ProtoIKE}}
	forged, err := fake.Marshal(zeroCipher{})
	must(t, err)
	for _, pkt := range [][]byte{
		forged,
		forged[:len(forged)-3],
		[]byte("garbage"),
		make([]byte, 28),
	} {
		p.net.Inject(cgwEP, awsEP, pkt)
	}
	after := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if after.SPIi != before.SPIi || len(after.Children) != 1 {
		t.Fatalf("state changed by unauthenticated packets")
	}
	if after.UnauthDrops == 0 {
		t.Errorf("forged packet not counted")
	}
	if p.cgw.Sender.Sent() != sent {
		t.Errorf("answered an unauthenticated packet")
	}
	if p.cgw.Listener.Has(ike.EventIKEDown) {
		t.Errorf("IKE SA went down")
	}
}

// zeroCipher produces SK payloads with all-zero IV and ICV: what an
// attacker without the keys can send.
type zeroCipher struct{}

func (zeroCipher) BlockSize() int { return 16 }
func (zeroCipher) Overhead() int  { return 16 + 12 }
func (zeroCipher) Seal(aad, pt []byte) ([]byte, error) {
	return append(append(make([]byte, 16), pt...), make([]byte, 12)...), nil
}
func (zeroCipher) Open(aad, body []byte) ([]byte, error) { return nil, nil }
