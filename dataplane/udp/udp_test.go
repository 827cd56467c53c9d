//go:build linux

package udp

import (
	"bytes"
	"net/netip"
	"os"
	"testing"
	"time"
)

func listenPair(t *testing.T) (a, b *Conn) {
	t.Helper()
	var err error
	a, err = Listen("udp4", netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = Listen("udp4", netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// readAll reads until want datagrams (after GRO splitting) arrived.
func readAll(t *testing.T, c *Conn, want int) (pkts [][]byte, local netip.Addr, remote netip.AddrPort) {
	t.Helper()
	msgs := make([]Message, 8)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 65536)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(pkts) < want && time.Now().Before(deadline) {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs[:n] {
			local, remote = m.Local, m.Remote
			seg := m.GSOSize
			if seg == 0 {
				seg = m.N
			}
			for off := 0; off < m.N; off += seg {
				end := min(off+seg, m.N)
				pkts = append(pkts, append([]byte(nil), m.Buf[off:end]...))
			}
		}
	}
	return pkts, local, remote
}

func TestSendReceiveBatch(t *testing.T) {
	a, b := listenPair(t)
	w := a.NewWriter()
	var pkts [][]byte
	for i := range 100 {
		n := 1200
		if i == 49 || i == 99 {
			n = 300 // short packets end GSO runs
		}
		p := bytes.Repeat([]byte{byte(i)}, n)
		pkts = append(pkts, p)
	}
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.Port())
	if n := len(w.b.hdrs); n >= len(pkts) {
		t.Fatalf("a new Writer has room for %d messages; it should grow on demand", n)
	}
	if err := w.Send(pkts, netip.MustParseAddr("127.0.0.1"), dst); err != nil {
		t.Fatal(err)
	}
	got, local, remote := readAll(t, b, len(pkts))
	if len(got) != len(pkts) {
		t.Fatalf("received %d datagrams, want %d", len(got), len(pkts))
	}
	for i := range pkts {
		if !bytes.Equal(got[i], pkts[i]) {
			t.Fatalf("datagram %d differs (len %d, want %d)", i, len(got[i]), len(pkts[i]))
		}
	}
	if local != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("PKTINFO local = %v", local)
	}
	if remote.Port() != a.Port() {
		t.Errorf("remote = %v, want port %d", remote, a.Port())
	}
	t.Logf("gso=%v gro=%v", a.GSO(), b.GRO())
}

func TestSourceAddress(t *testing.T) {
	// b is bound to 0.0.0.0; replies must leave from the address we ask.
	a, b := listenPair(t)
	w := b.NewWriter()
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), a.Port())
	for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
		if err := w.Send([][]byte{[]byte("x")}, netip.MustParseAddr(src), dst); err != nil {
			t.Fatal(err)
		}
		_, _, remote := readAll(t, a, 1)
		if remote.Addr() != netip.MustParseAddr(src) || remote.Port() != b.Port() {
			t.Errorf("source = %v, want %s:%d", remote, src, b.Port())
		}
	}
	// An address that is not ours falls back to the kernel's choice.
	if err := w.Send([][]byte{[]byte("y")}, netip.MustParseAddr("192.0.2.77"), dst); err != nil {
		t.Fatalf("send with foreign source: %v", err)
	}
	if _, _, remote := readAll(t, a, 1); !remote.Addr().IsLoopback() {
		t.Errorf("fallback source = %v", remote)
	}
	if err := w.Send([][]byte{[]byte("z")}, netip.Addr{}, netip.MustParseAddrPort("[::1]:1")); err != ErrFamily {
		t.Errorf("v6 destination on v4 socket: %v", err)
	}
}

func TestAllocs(t *testing.T) {
	a, b := listenPair(t)
	w := a.NewWriter()
	pkts := make([][]byte, 16)
	for i := range pkts {
		pkts[i] = make([]byte, 1000)
	}
	msgs := make([]Message, IdealBatch)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 65536)
	}
	src := netip.MustParseAddr("127.0.0.1")
	dst := netip.AddrPortFrom(src, b.Port())
	n := testing.AllocsPerRun(50, func() {
		if err := w.Send(pkts, src, dst); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < len(pkts) {
			k, err := b.ReadBatch(msgs)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs[:k] {
				if m.GSOSize > 0 {
					got += (m.N + m.GSOSize - 1) / m.GSOSize
				} else {
					got++
				}
			}
		}
	})
	if n != 0 {
		t.Errorf("Send+ReadBatch allocate %v times per batch", n)
	}
}

func TestSetMark(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_MARK needs CAP_NET_ADMIN")
	}
	c, err := Listen("udp4", netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m, err := c.Mark(); err != nil || m != 0 {
		t.Fatalf("initial mark %#x, %v", m, err)
	}
	if err := c.SetMark(0xc7); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Mark(); err != nil || m != 0xc7 {
		t.Fatalf("mark %#x, %v; want 0xc7", m, err)
	}
}
