package ike

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// plantEstablished gives the target's tunnel an established IKE SA and a
// last failure to keep.
func plantEstablished(t *testing.T, m *Manager) *peer {
	t.Helper()
	p, err := m.peer("aws")
	if err != nil {
		t.Fatal(err)
	}
	_ = p.call(func() error {
		sa := &ikeSA{p: p, initiator: true, spiI: 7, spiR: 8, state: ikeEstablished}
		sa.tm = newTaskManager(sa)
		p.sas[7], p.ike = sa, sa
		p.lastFailure = "the operator's real problem"
		return nil
	})
	m.mu.Lock()
	m.mu.bySPI[7] = p
	m.mu.Unlock()
	return p
}

func TestSpoofedInitInvalidKE(t *testing.T) {
	m, clk := floodTarget(t, "198.51.100.10")
	p := plantEstablished(t, m)
	local, src := netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("198.51.100.10:500")
	for i := range 100 {
		m.HandlePacket(local, src, spoofedInit(t, uint64(i+1), make([]byte, 256))) // y = 0
		m.Flush()
		clk.Advance(200 * time.Millisecond) // 5/s: below the COOKIE rate
	}
	d := m.Drops()
	if d.InvalidKE != 100 || d.CookieSent != 0 {
		t.Errorf("drops %+v, want 100 InvalidKE and no COOKIE at 5/s", d)
	}
	var sas int
	var last string
	_ = p.call(func() error { sas, last = len(p.sas), p.lastFailure; return nil })
	if sas != 1 {
		t.Errorf("%d IKE SAs, want only the established one: an invalid KE creates no state", sas)
	}
	if last != "the operator's real problem" {
		t.Errorf("last failure overwritten: %q", last)
	}
}

func TestSpoofedInitRateStartsCookies(t *testing.T) {
	m, _ := floodTarget(t, "198.51.100.10")
	plantEstablished(t, m)
	dh, err := crypto.NewDH(ipsec.DHMODP2048, nil)
	if err != nil {
		t.Fatal(err)
	}
	local, src := netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("198.51.100.10:500")
	for i := range 50 {
		m.HandlePacket(local, src, spoofedInit(t, uint64(i+1), dh.Public()))
		m.Flush()
	}
	// Only the first cookieRate requests of the second were processed;
	// the half-open count (threshold 32) alone would have let 32 in.
	if d := m.Drops(); d.CookieSent != 50-cookieRate {
		t.Errorf("drops %+v, want %d COOKIEs", d, 50-cookieRate)
	}
}

// TestUnauthFailureKeepsLastError: a peer-started IKE SA that fails
// before authenticating (here NO_PROPOSAL_CHOSEN) is counted, not made
// the tunnel's last failure, while the tunnel has an IKE SA.
func TestUnauthFailureKeepsLastError(t *testing.T) {
	m, _ := floodTarget(t, "198.51.100.10")
	p := plantEstablished(t, m)
	prop, _ := ipsec.ParseProposal("aes256-sha512-ecp384", true)
	dh, err := crypto.NewDH(ipsec.DHECP384, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := &message.Message{Header: message.Header{SPIi: 99, MajorVersion: 2, Exchange: message.IKESAInit, Flags: message.FlagInitiator}}
	msg.Payloads = []message.Payload{saPayload(ipsec.ProtoIKE, []ipsec.Proposal{prop}, nil, true),
		&message.KE{Group: ipsec.DHECP384, Data: dh.Public()}, &message.Nonce{Data: make([]byte, 32)}}
	pkt, err := msg.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.HandlePacket(netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("198.51.100.10:500"), pkt)
	m.Flush()
	var last string
	_ = p.call(func() error { last = p.lastFailure; return nil })
	if last != "the operator's real problem" {
		t.Errorf("last failure overwritten by an unauthenticated failure: %q", last)
	}
	if d := m.Drops(); d.InitFailed != 1 {
		t.Errorf("drops %+v: the failure is not counted", d)
	}
}

// TestCookieSecretRotation: a cookie made with the previous secret is
// still accepted (its version names it); two rotations later it is not.
func TestCookieSecretRotation(t *testing.T) {
	m, clk := floodTarget(t, "198.51.100.10")
	remote := netip.MustParseAddrPort("198.51.100.10:500")
	msg := &message.Message{Header: message.Header{SPIi: 42}, Payloads: []message.Payload{&message.Nonce{Data: make([]byte, 32)}}}
	c := m.cookie(msg, remote)
	if !m.validCookie(c, msg, remote) {
		t.Fatal("fresh cookie refused")
	}
	other := netip.MustParseAddrPort("198.51.100.11:500")
	if m.validCookie(c, msg, other) {
		t.Error("cookie accepted from another address")
	}
	clk.Advance(cookieSecretLife)
	c2 := m.cookie(msg, remote)
	if c2[0] == c[0] {
		t.Errorf("secret rotated but the version stayed %d", c[0])
	}
	if !m.validCookie(c, msg, remote) {
		t.Error("cookie of the previous secret refused right after rotation")
	}
	clk.Advance(cookieSecretLife)
	_ = m.cookie(msg, remote)
	if m.validCookie(c, msg, remote) {
		t.Error("cookie two secrets old accepted")
	}
	if m.validCookie(append([]byte(nil), c[:5]...), msg, remote) {
		t.Error("truncated cookie accepted")
	}
}

// TestInitRetransmitAnyPort: a retransmitted IKE_SA_INIT (same SPIi) from
// another source port gets the cached response and no second responder SA.
func TestInitRetransmitAnyPort(t *testing.T) {
	m, _ := floodTarget(t, "198.51.100.10")
	p, _ := m.peer("aws")
	dh, err := crypto.NewDH(ipsec.DHMODP2048, nil)
	if err != nil {
		t.Fatal(err)
	}
	pkt := spoofedInit(t, 77, dh.Public())
	local := netip.MustParseAddrPort("192.0.2.1:500")
	m.HandlePacket(local, netip.MustParseAddrPort("198.51.100.10:500"), pkt)
	m.HandlePacket(local, netip.MustParseAddrPort("198.51.100.10:40123"), pkt)
	m.Flush()
	var sas int
	_ = p.call(func() error { sas = len(p.sas); return nil })
	if sas != 1 {
		t.Errorf("%d responder SAs for one SPIi, want 1", sas)
	}
	// Once that IKE SA is past IKE_AUTH, a replay of its IKE_SA_INIT
	// starts nothing either.
	_ = p.call(func() error {
		for _, sa := range p.sas {
			sa.state = ikeEstablished
		}
		return nil
	})
	m.HandlePacket(local, netip.MustParseAddrPort("198.51.100.10:500"), pkt)
	m.Flush()
	_ = p.call(func() error { sas = len(p.sas); return nil })
	if sas != 1 {
		t.Errorf("%d IKE SAs after replaying the IKE_SA_INIT of an established one, want 1", sas)
	}
}

// TestInitFloodLeavesEstablishedQueue: while the peer is busy, a burst of
// IKE_SA_INIT requests overflows only its own queue; a message for an
// established IKE SA still gets in and is handled.
func TestInitFloodLeavesEstablishedQueue(t *testing.T) {
	m, _ := floodTarget(t, "198.51.100.10")
	p := plantEstablished(t, m)
	hold := make(chan struct{})
	p.post(func() { <-hold })
	local, src := netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("198.51.100.10:500")
	for i := range initInboxSize + 8 {
		m.HandlePacket(local, src, spoofedInit(t, uint64(i+1), make([]byte, 256)))
	}
	// An INFORMATIONAL for the established SA (SPIs 7/8), not authentic.
	info := &message.Message{Header: message.Header{SPIi: 7, SPIr: 8, MajorVersion: 2, Exchange: message.Informational, MessageID: 5}}
	raw, err := info.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.HandlePacket(local, src, raw)
	close(hold)
	m.Flush()
	if d := m.Drops(); d.Overflow != 8 || d.InvalidKE+d.CookieSent != initInboxSize {
		t.Errorf("drops %+v, want 8 overflowed and %d handled IKE_SA_INIT requests", d, initInboxSize)
	}
	if st := p.status.Load(); st.UnauthDrops != 1 {
		t.Errorf("the established SA's message was not handled (UnauthDrops %d)", st.UnauthDrops)
	}
}
