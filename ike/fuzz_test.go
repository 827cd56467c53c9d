package ike

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/internal/clock"
	"github.com/cgwproject/cgw/ipsec"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzResponder from the seeds")

// captureSender keeps what the responder sends.
type captureSender struct {
	mu  sync.Mutex
	out [][]byte
}

func (s *captureSender) SendIKE(local, remote netip.AddrPort, pkt []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = append(s.out, append([]byte(nil), pkt...))
	return nil
}

func (s *captureSender) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.out
	s.out = nil
	return o
}

// recordInstaller keeps the SAs the responder installs.
type recordInstaller struct {
	nopInstaller
	mu    sync.Mutex
	added []ipsec.SAParams
	next  uint32
}

func (r *recordInstaller) AllocSPI(string) (ipsec.SPI, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	return ipsec.SPI(0x1000 + r.next), nil
}

func (r *recordInstaller) AddSA(p ipsec.SAParams) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.added = append(r.added, p)
	return nil
}

const (
	fuzzPSK    = "fuzz-psk-0123456789abcdef"
	fuzzLocal  = "192.0.2.1"
	fuzzRemote = "198.51.100.10"
)

var (
	fuzzTSLocal  = []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("10.0.0.0/16"))}
	fuzzTSRemote = []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("172.16.0.0/12"))}
)

// espFromBytes turns fuzz bytes into ESP proposals, 4 octets each: ENCR,
// key length / 8, INTEG, DH.
func espFromBytes(b []byte) []ipsec.Proposal {
	var out []ipsec.Proposal
	for len(b) >= 4 && len(out) < 8 {
		p := ipsec.Proposal{Encrs: []ipsec.EncrKey{{ID: ipsec.EncrID(b[0]), KeyBits: int(b[1]) * 8}}, ESN: []bool{false}}
		if b[2] != 0 {
			p.Integs = []ipsec.IntegID{ipsec.IntegID(b[2])}
		}
		if b[3] != 0 {
			p.DHGroups = []ipsec.DHGroup{ipsec.DHGroup(b[3])}
		}
		out = append(out, p)
		b = b[4:]
	}
	return out
}

// tsFromBytes turns fuzz bytes into IPv4 selectors, 12 octets each: start,
// end, protocol, ports (one octet each, scaled), padding.
func tsFromBytes(b []byte) []ipsec.TrafficSelector {
	var out []ipsec.TrafficSelector
	for len(b) >= 12 && len(out) < 8 {
		out = append(out, ipsec.TrafficSelector{
			Start: netip.AddrFrom4([4]byte(b[0:4])), End: netip.AddrFrom4([4]byte(b[4:8])),
			IPProto: b[8], StartPort: uint16(b[9]) << 8, EndPort: uint16(b[10])<<8 | 0xff})
		b = b[12:]
	}
	return out
}

// fuzzSeeds are the committed seed inputs: an IKE_SA_INIT request as AWS
// sends it (with NAT-D), then the ESP offer and the two selector lists of
// its IKE_AUTH.
func fuzzSeeds(tb testing.TB) [][4][]byte {
	tb.Helper()
	ike, _ := ipsec.ParseProposal("aes128-sha256-modp2048", true)
	ike2, _ := ipsec.ParseProposal("aes256gcm16-prfsha384-ecp384", true)
	mk := func(props []ipsec.Proposal, g ipsec.DHGroup, natd bool) []byte {
		m := &message.Message{Header: message.Header{SPIi: 0x1122334455667788, MajorVersion: 2, Exchange: message.IKESAInit, Flags: message.FlagInitiator}}
		m.Payloads = []message.Payload{saPayload(ipsec.ProtoIKE, props, nil, true),
			&message.KE{Group: g, Data: make([]byte, crypto.KELen(g))}, &message.Nonce{Data: make([]byte, 32)}}
		if natd {
			src := crypto.NATDetectionHash(0x1122334455667788, 0, netip.MustParseAddrPort(fuzzRemote+":500"))
			dst := crypto.NATDetectionHash(0x1122334455667788, 0, netip.MustParseAddrPort("203.0.113.99:500")) // a NAT in front of us
			m.Payloads = append(m.Payloads, &message.Notify{Kind: message.NotifyNATDetectionSourceIP, Data: src},
				&message.Notify{Kind: message.NotifyNATDetectionDestIP, Data: dst})
		}
		pkt, err := m.Marshal(nil)
		if err != nil {
			tb.Fatal(err)
		}
		return pkt
	}
	esp := []byte{byte(ipsec.EncrAESCBC), 16, byte(ipsec.IntegHMACSHA2_256_128), 0, byte(ipsec.EncrAESGCM16), 32, 0, 0}
	all := []byte{0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 255, 0}
	narrow := []byte{172, 16, 1, 0, 172, 16, 1, 255, 6, 0, 0, 0, 10, 0, 0, 0, 10, 0, 255, 255, 17, 1, 2, 0}
	return [][4][]byte{
		{mk([]ipsec.Proposal{ike}, ipsec.DHMODP2048, true), esp, all, all},
		{mk([]ipsec.Proposal{ike2, ike}, ipsec.DHECP384, false), esp[4:], narrow, narrow},
		{mk([]ipsec.Proposal{ike}, ipsec.DHMODP2048, false), []byte{byte(ipsec.EncrAESCBC), 32, byte(ipsec.IntegHMACSHA1_96), 14}, narrow[:12], all},
	}
}

// FuzzResponder drives Manager.HandlePacket as a responder: the fuzzed
// IKE_SA_INIT request (proposal selection, KE checks, NAT-D, COOKIE) goes
// in as is, except that a usable KE value is replaced by the harness's own
// so the exchange can continue; if the responder accepts it, the harness
// authenticates with the right PSK and offers the fuzzed ESP proposals and
// traffic selectors in IKE_AUTH (ESP proposal selection, TS narrowing).
// Invariants: no panic, and any CHILD SA installed uses a configured ESP
// proposal and selectors inside the configured ones.
func FuzzResponder(f *testing.F) {
	seeds := fuzzSeeds(f)
	if *updateFuzzSeeds {
		dir := filepath.Join("testdata", "fuzz", "FuzzResponder")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.Fatal(err)
		}
		for i, s := range seeds {
			body := "go test fuzz v1\n"
			for _, b := range s {
				body += fmt.Sprintf("[]byte(%q)\n", b)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(body), 0o644); err != nil {
				f.Fatal(err)
			}
		}
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, init, esp, tsi, tsr []byte) { respondOnce(t, init, esp, tsi, tsr) })
}

// TestFuzzResponderSeedsReachChild makes sure the harness gets as far as
// TS narrowing: the first seed installs a CHILD SA with narrowed selectors.
func TestFuzzResponderSeedsReachChild(t *testing.T) {
	s := fuzzSeeds(t)[0]
	added := respondOnce(t, s[0], s[1], s[2], s[3])
	if len(added) != 2 {
		t.Fatalf("the seed installed %d SAs, want a CHILD SA pair", len(added))
	}
	if tsString(added[0].TSLocal) != tsString(fuzzTSLocal) {
		t.Errorf("selectors %s, want ours %s after narrowing 0.0.0.0/0", tsString(added[0].TSLocal), tsString(fuzzTSLocal))
	}
}

// respondOnce runs one fuzz input and returns the SAs installed.
func respondOnce(t *testing.T, init, esp, tsi, tsr []byte) []ipsec.SAParams {
	espCfg, _ := ipsec.ParseProposal("aes128-sha256-modp2048", false)
	espCfg2, _ := ipsec.ParseProposal("aes256gcm16-ecp384", false)
	ikeCfg, _ := ipsec.ParseProposal("aes128-sha256-modp2048", true)
	ikeCfg2, _ := ipsec.ParseProposal("aes256gcm16-prfsha384-ecp384", true)
	{
		snd, inst := &captureSender{}, &recordInstaller{}
		m := NewManager(Config{Sender: snd, Installer: inst, Clock: clock.NewFake(), Rand: newFuzzRand(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		defer m.Close()
		if err := m.AddPeer(PeerConfig{Name: "aws", LocalAddr: netip.MustParseAddr(fuzzLocal), RemoteAddr: netip.MustParseAddr(fuzzRemote),
			PSK: []byte(fuzzPSK), IKEProposals: []ipsec.Proposal{ikeCfg, ikeCfg2}, ESPProposals: []ipsec.Proposal{espCfg, espCfg2},
			TSLocal: fuzzTSLocal, TSRemote: fuzzTSRemote, StartAction: StartRespond, DPDInterval: 10 * time.Second, DPDRetries: 3}); err != nil {
			t.Fatal(err)
		}
		local, remote := netip.MustParseAddrPort(fuzzLocal+":500"), netip.MustParseAddrPort(fuzzRemote+":500")
		// Our KE, if the fuzzed one names a group we can compute.
		var dh crypto.DH
		if req, err := message.Parse(init, nil); err == nil {
			if ke, ok := req.Get(message.PayloadKE).(*message.KE); ok && crypto.KELen(ke.Group) > 0 {
				if dh, err = crypto.NewDH(ke.Group, newFuzzRand()); err == nil {
					ke.Data = dh.Public()
					if pkt, err := req.Marshal(nil); err == nil {
						init = pkt
					}
				}
			}
		}
		m.HandlePacket(local, remote, init)
		m.Flush()
		if dh != nil {
			if auth := fuzzAuth(init, snd.take(), dh, esp, tsi, tsr); auth != nil {
				m.HandlePacket(local, remote, auth)
				m.Flush()
			}
		}
		inst.mu.Lock()
		defer inst.mu.Unlock()
		for _, sa := range inst.added {
			if !proposalMatches(espCfg, sa.Alg) && !proposalMatches(espCfg2, sa.Alg) {
				t.Errorf("installed a CHILD SA with %s, not a configured ESP proposal", sa.Alg.String())
			}
			if !tsSubset(sa.TSLocal, fuzzTSLocal) || !tsSubset(sa.TSRemote, fuzzTSRemote) {
				t.Errorf("installed selectors %s === %s outside ours", tsString(sa.TSLocal), tsString(sa.TSRemote))
			}
		}
		return inst.added
	}
}

// fuzzAuth builds the initiator's IKE_AUTH for the responder's answer to
// init, or returns nil when the responder did not accept init.
func fuzzAuth(init []byte, sent [][]byte, dh crypto.DH, esp, tsi, tsr []byte) []byte {
	req, err := message.Parse(init, nil)
	if err != nil || len(sent) == 0 {
		return nil
	}
	resp, err := message.Parse(sent[len(sent)-1], nil)
	if err != nil || resp.Header.SPIr == 0 {
		return nil
	}
	offer, _ := req.Get(message.PayloadSA).(*message.SA)
	got, _ := resp.Get(message.PayloadSA).(*message.SA)
	ke, _ := resp.Get(message.PayloadKE).(*message.KE)
	ni, _ := req.Get(message.PayloadNonce).(*message.Nonce)
	nr, _ := resp.Get(message.PayloadNonce).(*message.Nonce)
	if offer == nil || got == nil || ke == nil || ni == nil || nr == nil {
		return nil
	}
	alg, _, err := acceptResponse(offer, got, ipsec.ProtoIKE, true)
	if err != nil {
		return nil
	}
	shared, err := dh.Shared(ke.Data)
	if err != nil {
		return nil
	}
	keys, err := crypto.DeriveIKEKeys(alg, ni.Data, nr.Data, shared, req.Header.SPIi, resp.Header.SPIr)
	if err != nil {
		return nil
	}
	c, err := crypto.NewIKECipher(alg, keys.SKei, keys.SKai)
	if err != nil {
		return nil
	}
	id := &message.ID{IDType: message.IDIPv4Addr, Data: netip.MustParseAddr(fuzzRemote).AsSlice()}
	authData, err := crypto.PSKAuth(alg.PRF, []byte(fuzzPSK), init, nr.Data, keys.SKpi, id.Body())
	if err != nil {
		return nil
	}
	var spi [4]byte
	binary.BigEndian.PutUint32(spi[:], 0xabcd0001)
	m := &message.Message{Header: message.Header{SPIi: req.Header.SPIi, SPIr: resp.Header.SPIr, MajorVersion: 2,
		Exchange: message.IKEAuth, Flags: message.FlagInitiator, MessageID: 1}}
	m.Payloads = []message.Payload{id, &message.Auth{Method: message.AuthPSK, Data: authData},
		saPayload(ipsec.ProtoESP, espFromBytes(esp), spi[:], false),
		&message.TS{Selectors: tsFromBytes(tsi)}, &message.TS{Responder: true, Selectors: tsFromBytes(tsr)}}
	pkt, err := m.Marshal(c)
	if err != nil {
		return nil
	}
	return pkt
}

// fuzzRand is a deterministic random source, so a crash reproduces.
type fuzzRand struct{ n uint64 }

func newFuzzRand() *fuzzRand { return &fuzzRand{n: 0x9e3779b97f4a7c15} }

func (r *fuzzRand) Read(b []byte) (int, error) {
	for i := range b {
		r.n ^= r.n << 13
		r.n ^= r.n >> 7
		r.n ^= r.n << 17
		b[i] = byte(r.n)
	}
	return len(b), nil
}
