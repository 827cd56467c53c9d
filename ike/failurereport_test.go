package ike

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/internal/clock"
	"github.com/cgwproject/cgw/ipsec"
)

// recordingListener keeps every event (the iketest doubles import ike, so
// this internal test has its own).
type recordingListener struct {
	mu     sync.Mutex
	events []Event
}

func (l *recordingListener) OnEvent(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *recordingListener) failures() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if e.Kind == EventNegotiationFailed {
			out = append(out, e)
		}
	}
	return out
}

type nopSender struct{}

func (nopSender) SendIKE(local, remote netip.AddrPort, pkt []byte) error { return nil }

type nopInstaller struct{}

func (nopInstaller) AllocSPI(string) (ipsec.SPI, error)             { return 0x1000, nil }
func (nopInstaller) AddSA(ipsec.SAParams) error                     { return nil }
func (nopInstaller) DelSA(string, ipsec.Direction, ipsec.SPI) error { return nil }
func (nopInstaller) UpdateEndpoints(string, netip.AddrPort, netip.AddrPort, bool) error {
	return nil
}
func (nopInstaller) QuerySA(string, ipsec.Direction, ipsec.SPI) (ipsec.SAStats, error) {
	return ipsec.SAStats{}, nil
}

// establishedPeer is a peer with one established IKE SA carrying one
// installed CHILD SA, built by hand (no exchange), for driving single task
// steps.
func establishedPeer(t *testing.T) (*peer, *ikeSA, *childSA, *recordingListener) {
	t.Helper()
	l := &recordingListener{}
	m := NewManager(Config{Sender: nopSender{}, Installer: nopInstaller{}, Listener: l, Clock: clock.NewFake(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(m.Close)
	p := newPeer(m, &peerConfig{PeerConfig: PeerConfig{Name: "t", RemoteAddr: netip.MustParseAddr("192.0.2.1")}})
	go p.run()
	t.Cleanup(func() { close(p.quit); <-p.done })
	sa := &ikeSA{p: p, initiator: true, spiI: 1, spiR: 2, state: ikeEstablished}
	sa.tm = newTaskManager(sa)
	p.sas[1], p.ike = sa, sa
	c := &childSA{sa: sa, inSPI: 0x100, outSPI: 0x200, state: childInstalled}
	sa.children = append(sa.children, c)
	return p, sa, c, l
}

// TestFailureRecordMatchesEvent drives the three failure paths that used to
// emit a NegotiationFailed event without recording the tunnel's last
// failure, and checks both now say the same.
func TestFailureRecordMatchesEvent(t *testing.T) {
	cases := []struct {
		name string
		run  func(p *peer, sa *ikeSA, c *childSA)
	}{
		{"CHILD rekey response unusable", func(p *peer, sa *ikeSA, c *childSA) {
			r := newChildRekey(sa, c, "test")
			r.kx.sent = saPayload(ipsec.ProtoESP, nil, nil, true)
			c.state = childRekeying
			// A response without SA, TSi or TSr.
			_, _ = r.process(&message.Message{Header: message.Header{Exchange: message.CreateChildSA, Flags: message.FlagResponse}})
		}},
		{"IKE rekey response unusable", func(p *peer, sa *ikeSA, c *childSA) {
			r := newIKERekey(sa, "test")
			// A response without SA, KE or Nonce.
			_, _ = r.process(&message.Message{Header: message.Header{Exchange: message.CreateChildSA, Flags: message.FlagResponse}})
		}},
		{"peer's CHILD rekey refused", func(p *peer, sa *ikeSA, c *childSA) {
			r := newChildRekeyResponder(sa)
			// REKEY_SA for our CHILD SA, but no SA, TSi or TSr.
			_, _ = r.process(&message.Message{Header: message.Header{Exchange: message.CreateChildSA},
				Payloads: []message.Payload{&message.Notify{Protocol: ipsec.ProtoESP, SPI: spiBytes(c.outSPI), Kind: message.NotifyRekeySA}}})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, sa, c, l := establishedPeer(t)
			if err := p.call(func() error { tc.run(p, sa, c); return nil }); err != nil {
				t.Fatal(err)
			}
			evs := l.failures()
			if len(evs) != 1 {
				t.Fatalf("want one NegotiationFailed event, got %d: %+v", len(evs), evs)
			}
			var last string
			_ = p.call(func() error { last = p.lastFailure; return nil })
			if last == "" || last != evs[0].Reason {
				t.Errorf("last failure %q does not match the event's reason %q", last, evs[0].Reason)
			}
		})
	}
}

// TestDestroyedSAKeysZeroed: the SK_* keys of a destroyed IKE SA are
// overwritten.
func TestDestroyedSAKeysZeroed(t *testing.T) {
	p, sa, _, _ := establishedPeer(t)
	k := &crypto.IKEKeys{}
	for _, b := range []*[]byte{&k.SKd, &k.SKai, &k.SKar, &k.SKei, &k.SKer, &k.SKpi, &k.SKpr} {
		*b = bytes.Repeat([]byte{0xa5}, 32)
	}
	_ = p.call(func() error { sa.keys = k; p.destroySA(sa, "test"); return nil })
	for i, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
		if !bytes.Equal(b, make([]byte, 32)) {
			t.Errorf("key %d not zeroed: %x", i, b)
		}
	}
}
