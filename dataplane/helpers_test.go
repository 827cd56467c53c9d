package dataplane

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
	"github.com/cgwproject/cgw/ipsec"
	"golang.zx2c4.com/wireguard/tun"
)

var (
	addrA = netip.MustParseAddr("10.1.0.1") // host behind engine A
	addrB = netip.MustParseAddr("10.2.0.1") // host behind engine B
)

// ipv4UDP builds an IPv4/UDP packet from src to dst whose payload starts
// with seq and is padded to size octets in total.
func ipv4UDP(src, dst netip.Addr, seq uint32, size int) []byte {
	size = max(size, 20+8+4)
	p := make([]byte, size)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	p[8] = 64
	p[9] = 17
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], ^packet.OnesSum(0, p[:20]))
	binary.BigEndian.PutUint16(p[20:], 5000)
	binary.BigEndian.PutUint16(p[22:], 6000)
	binary.BigEndian.PutUint16(p[24:], uint16(size-20))
	binary.BigEndian.PutUint32(p[28:], seq)
	for i := 32; i < size; i++ {
		p[i] = byte(i)
	}
	return p
}

func seqOf(p []byte) uint32 { return binary.BigEndian.Uint32(p[28:]) }

// saKeys returns fixed test SA parameters for one direction.
func saParams(tunnel string, dir ipsec.Direction, spi ipsec.SPI, alg ipsec.Algorithms, local, remote netip.AddrPort, keySeed byte) ipsec.SAParams {
	p := ipsec.SAParams{
		Tunnel: tunnel, SPI: spi, Dir: dir, Alg: alg,
		Local: local, Remote: remote, Encap: true, ReplayWindow: 1024,
	}
	switch alg.Encr {
	case ipsec.EncrAESGCM16:
		p.EncKey = fill(alg.KeyBits/8+4, keySeed)
	case ipsec.EncrAESCBC:
		p.EncKey = fill(alg.KeyBits/8, keySeed)
		p.IntegKey = fill(32, keySeed+100)
	}
	return p
}

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

var (
	algGCM = ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}
	algCBC = ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA2_256_128}
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// pair is two engines on 127.0.0.1 with one tunnel "t" each and SAs
// installed both ways.
type pair struct {
	a, b         *Engine
	aEP, bEP     netip.AddrPort // NAT-T endpoints
	spiAB, spiBA ipsec.SPI
}

func newPair(t testing.TB, alg ipsec.Algorithms, devA, devB tun.Device, tc TunnelConfig) *pair {
	t.Helper()
	pr := &pair{spiAB: 0x1001, spiBA: 0x2002}
	pr.a = New(Config{Logger: testLogger(t), Workers: 2})
	pr.b = New(Config{Logger: testLogger(t), Workers: 2})
	t.Cleanup(func() { pr.a.Close(); pr.b.Close() })
	for _, e := range []*Engine{pr.a, pr.b} {
		if err := e.Listen(0, 0); err != nil {
			t.Fatal(err)
		}
	}
	lo := netip.MustParseAddr("127.0.0.1")
	_, pa := pr.a.Ports()
	_, pb := pr.b.Ports()
	pr.aEP = netip.AddrPortFrom(lo, pa)
	pr.bEP = netip.AddrPortFrom(lo, pb)
	tc.Name = "t"
	tc.Device = devA
	if err := pr.a.AddTunnel(tc); err != nil {
		t.Fatal(err)
	}
	tc.Device = devB
	if err := pr.b.AddTunnel(tc); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(pr.b.AddSA(saParams("t", ipsec.Inbound, pr.spiAB, alg, pr.bEP, pr.aEP, 1)))
	must(pr.a.AddSA(saParams("t", ipsec.Outbound, pr.spiAB, alg, pr.aEP, pr.bEP, 1)))
	must(pr.a.AddSA(saParams("t", ipsec.Inbound, pr.spiBA, alg, pr.aEP, pr.bEP, 2)))
	must(pr.b.AddSA(saParams("t", ipsec.Outbound, pr.spiBA, alg, pr.bEP, pr.aEP, 2)))
	return pr
}

// memTUN is an allocation-free fake TUN device for benchmarks and
// allocation tests: the test feeds packets to in and gets written packets
// from out (copies into buffers recycled through free).
type memTUN struct {
	in, out, free chan []byte
	closed        chan struct{}
	once          sync.Once
	events        chan tun.Event
}

func newMemTUN(depth int) *memTUN {
	m := &memTUN{
		in:     make(chan []byte, depth),
		out:    make(chan []byte, depth),
		free:   make(chan []byte, depth),
		closed: make(chan struct{}),
		events: make(chan tun.Event),
	}
	for range depth {
		m.free <- make([]byte, 2048)
	}
	return m
}

func (m *memTUN) File() *os.File { return nil }

func (m *memTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	select {
	case <-m.closed:
		return 0, os.ErrClosed
	case p := <-m.in:
		sizes[0] = copy(bufs[0][offset:], p)
		n = 1
	}
	for n < len(bufs) {
		select {
		case p := <-m.in:
			sizes[n] = copy(bufs[n][offset:], p)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (m *memTUN) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		var c []byte
		select {
		case c = <-m.free:
		default:
			c = make([]byte, 2048)
		}
		c = c[:copy(c[:cap(c)], b[offset:])]
		select {
		case m.out <- c:
		case <-m.closed:
			return i, os.ErrClosed
		}
	}
	return len(bufs), nil
}

func (m *memTUN) MTU() (int, error)        { return 1420, nil }
func (m *memTUN) Name() (string, error)    { return "mem", nil }
func (m *memTUN) Events() <-chan tun.Event { return m.events }
func (m *memTUN) BatchSize() int           { return batchSize }
func (m *memTUN) Close() error {
	m.once.Do(func() { close(m.closed) })
	return nil
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
