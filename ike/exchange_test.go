package ike_test

import (
	"bytes"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ike/iketest"
	"github.com/cgwproject/cgw/ipsec"
)

// The exchange tests run two Managers in one process: "cgw" at 203.0.113.10
// (the customer gateway, usually the initiator) and "aws" at 198.51.100.10
// (standing in for the AWS endpoint). Packets move only when the test calls
// Step or Deliver, and time moves only with the fake clock.

const (
	cgwAddr = "203.0.113.10"
	awsAddr = "198.51.100.10"
	testPSK = "EXAMPLEpsk1_abcdefghij.klmnopqrs"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func props(t *testing.T, ike bool, ss ...string) []ipsec.Proposal {
	t.Helper()
	var out []ipsec.Proposal
	for _, s := range ss {
		p, err := ipsec.ParseProposal(s, ike)
		if err != nil {
			t.Fatalf("ParseProposal(%q): %v", s, err)
		}
		out = append(out, p)
	}
	return out
}

// peerConfig returns the config of the tunnel from local to remote.
func peerConfig(t *testing.T, name, local, remote string, start ike.StartAction) ike.PeerConfig {
	return ike.PeerConfig{
		Name:         name,
		LocalAddr:    netip.MustParseAddr(local),
		RemoteAddr:   netip.MustParseAddr(remote),
		PSK:          []byte(testPSK),
		IKEProposals: props(t, true, "aes128-sha1-modp1024"),
		ESPProposals: props(t, false, "aes128-sha1-modp1024"),
		RekeyFuzz:    100,
		DPDInterval:  10 * time.Second,
		DPDRetries:   3,
		StartAction:  start,
	}
}

type pair struct {
	net      *iketest.Network
	cgw, aws *iketest.Node
}

// newPair builds the two nodes; edit changes the two configs before they
// are added (responder first, then the initiator, which starts at once).
func newPair(t *testing.T, edit func(cgw, aws *ike.PeerConfig)) *pair {
	t.Helper()
	n := iketest.NewNetwork()
	p := &pair{net: n, cgw: n.Add(cgwAddr, testLogger(t)), aws: n.Add(awsAddr, testLogger(t))}
	cc := peerConfig(t, "aws-t1", cgwAddr, awsAddr, ike.StartInitiate)
	ac := peerConfig(t, "cgw", awsAddr, cgwAddr, ike.StartRespond)
	if edit != nil {
		edit(&cc, &ac)
	}
	if err := p.aws.Manager.AddPeer(ac); err != nil {
		t.Fatalf("aws AddPeer: %v", err)
	}
	if err := p.cgw.Manager.AddPeer(cc); err != nil {
		t.Fatalf("cgw AddPeer: %v", err)
	}
	t.Cleanup(func() {
		p.cgw.Manager.Close()
		p.aws.Manager.Close()
	})
	return p
}

func status(t *testing.T, n *iketest.Node) ike.PeerStatus {
	t.Helper()
	n.Manager.Flush()
	st := n.Manager.Status()
	if len(st) != 1 {
		t.Fatalf("Status: %d peers, want 1", len(st))
	}
	return st[0]
}

func wantState(t *testing.T, n *iketest.Node, ikeState, childState ike.State) ike.PeerStatus {
	t.Helper()
	st := status(t, n)
	if st.State != ikeState || st.ChildState != childState {
		t.Fatalf("%s: state %s/%s, want %s/%s (last failure: %q)", n.Addr, st.State, st.ChildState, ikeState, childState, st.LastFailure)
	}
	return st
}

// checkChildPair verifies that the two nodes installed matching SAs: our
// outbound is their inbound with the same keys, and vice versa.
func checkChildPair(t *testing.T, a, b *iketest.Node) (aIn, bIn ipsec.SPI) {
	t.Helper()
	sa, sb := status(t, a), status(t, b)
	if len(sa.Children) != 1 || len(sb.Children) != 1 {
		t.Fatalf("children: %d and %d, want 1 each", len(sa.Children), len(sb.Children))
	}
	ca, cb := sa.Children[0], sb.Children[0]
	if ca.InSPI != cb.OutSPI || ca.OutSPI != cb.InSPI {
		t.Fatalf("SPIs do not pair: a in/out %s/%s, b in/out %s/%s", ca.InSPI, ca.OutSPI, cb.InSPI, cb.OutSPI)
	}
	for _, d := range []struct {
		from, to *iketest.Node
		spi      ipsec.SPI
	}{{a, b, ca.OutSPI}, {b, a, cb.OutSPI}} {
		out, ok1 := d.from.Installer.Installed(ipsec.Outbound, d.spi)
		in, ok2 := d.to.Installer.Installed(ipsec.Inbound, d.spi)
		if !ok1 || !ok2 {
			t.Fatalf("SA %s not installed on both sides (out %v, in %v)", d.spi, ok1, ok2)
		}
		if !bytes.Equal(out.EncKey, in.EncKey) || !bytes.Equal(out.IntegKey, in.IntegKey) || out.Alg != in.Alg {
			t.Fatalf("SA %s: keys or algorithms differ between the two ends", d.spi)
		}
		if len(out.EncKey) == 0 {
			t.Fatalf("SA %s: empty key", d.spi)
		}
	}
	return ca.InSPI, cb.InSPI
}

func TestEstablishProposalSets(t *testing.T) {
	cases := []struct {
		name     string
		ike, esp []string
		wantIKE  ipsec.Algorithms
	}{
		{"aes128-sha1-modp1024", []string{"aes128-sha1-modp1024"}, []string{"aes128-sha1-modp1024"},
			ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, PRF: ipsec.PRFHMACSHA1, Integ: ipsec.IntegHMACSHA1_96, DH: ipsec.DHMODP1024}},
		{"aes128gcm16-prfsha256-ecp256", []string{"aes128gcm16-prfsha256-ecp256"}, []string{"aes128gcm16-ecp256"},
			ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128, PRF: ipsec.PRFHMACSHA2_256, DH: ipsec.DHECP256}},
		{"aes256-sha512-modp4096", []string{"aes256-sha512-modp4096"}, []string{"aes256-sha512-modp4096"},
			ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 256, PRF: ipsec.PRFHMACSHA2_512, Integ: ipsec.IntegHMACSHA2_512_256, DH: ipsec.DHMODP4096}},
		{"aes256gcm16-prfsha384-ecp384", []string{"aes256gcm16-prfsha384-ecp384"}, []string{"aes256gcm16-ecp384"},
			ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256, PRF: ipsec.PRFHMACSHA2_384, DH: ipsec.DHECP384}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, func(c, a *ike.PeerConfig) {
				c.IKEProposals, c.ESPProposals = props(t, true, tc.ike...), props(t, false, tc.esp...)
				a.IKEProposals, a.ESPProposals = props(t, true, tc.ike...), props(t, false, tc.esp...)
			})
			/* IKE_SA_INIT: HDR, SAi1, KEi, Ni, N(NATD_S), N(NATD_D) --> */
			if got := p.net.Step(); len(got) != 1 || got[0].Remote.Port() != 500 {
				t.Fatalf("want one IKE_SA_INIT request to port 500, got %v", got)
			}
			wantState(t, p.cgw, ike.StateNegotiating, ike.StateDown)
			/* <-- HDR, SAr1, KEr, Nr, N(NATD_S), N(NATD_D) */
			p.net.Step()
			/* IKE_AUTH: HDR, SK {IDi, AUTH, N(INITIAL_CONTACT), SAi2, TSi, TSr} --> */
			p.net.Step()
			wantState(t, p.aws, ike.StateEstablished, ike.StateEstablished)
			/* <-- HDR, SK {IDr, AUTH, SAr2, TSi, TSr} */
			p.net.Step()
			st := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
			if st.IKEAlg != tc.wantIKE {
				t.Errorf("IKE algorithms %+v, want %+v", st.IKEAlg, tc.wantIKE)
			}
			if st.NATDetected || st.Encap {
				t.Errorf("NAT detected without a NAT")
			}
			checkChildPair(t, p.cgw, p.aws)
			if k := p.cgw.Listener.Kinds(); len(k) != 2 || k[0] != ike.EventIKEUp || k[1] != ike.EventChildUp {
				t.Errorf("cgw events %v, want IKEUp, ChildUp", k)
			}
			// Install order: inbound before outbound on both sides.
			for _, n := range []*iketest.Node{p.cgw, p.aws} {
				ops := n.Installer.Ops(false)
				if len(ops) != 2 || ops[0].Kind != "add" || ops[0].Dir != ipsec.Inbound || ops[1].Dir != ipsec.Outbound {
					t.Errorf("%s install ops %v, want add in, add out", n.Addr, ops)
				}
				in := ops[0].Params
				if in.Tunnel == "" || in.ReplayWindow != 1024 || in.Encap {
					t.Errorf("%s inbound params: tunnel %q window %d encap %v", n.Addr, in.Tunnel, in.ReplayWindow, in.Encap)
				}
			}
		})
	}
}

// AWS picks the lowest values it allows, whatever our order: a responder
// configured lowest-first must still be accepted by an initiator that
// prefers strong algorithms. (The stand-in for AWS allows only MODP1024:
// cgw's responder code would take our MODP2048 KE rather than ask for
// another group, AWS asks for its lowest.)
func TestResponderChoiceWithinOurProposals(t *testing.T) {
	p := newPair(t, func(c, a *ike.PeerConfig) {
		c.IKEProposals = props(t, true, "aes256-aes128-sha256-sha1-modp2048-modp1024")
		c.ESPProposals = props(t, false, "aes256-aes128-sha256-sha1-modp2048-modp1024")
		a.IKEProposals = props(t, true, "aes128-aes256-sha1-sha256-modp1024")
		a.ESPProposals = props(t, false, "aes128-aes256-sha1-sha256-modp1024-modp2048")
	})
	p.net.Deliver()
	st := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	// Our KE was MODP2048; the responder chose MODP1024 and asked for it
	// with INVALID_KE_PAYLOAD, which we followed without a failure.
	if p.cgw.Listener.Has(ike.EventNegotiationFailed) {
		t.Errorf("INVALID_KE_PAYLOAD retry reported as a failure")
	}
	if st.IKEAlg.KeyBits != 128 || st.IKEAlg.DH != ipsec.DHMODP1024 {
		t.Errorf("IKE algorithms %+v: want the responder's lowest-first choice aes128/modp1024", st.IKEAlg)
	}
	if c := st.Children[0].Alg; c.KeyBits != 128 || c.Integ != ipsec.IntegHMACSHA1_96 {
		t.Errorf("ESP algorithms %+v: want aes128/sha1", c)
	}
	checkChildPair(t, p.cgw, p.aws)
}
