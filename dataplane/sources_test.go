package dataplane

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestSourceSet(t *testing.T) {
	var ps []netip.Prefix
	for _, s := range []string{"10.0.0.0/16", "10.1.0.0/16", "10.0.5.0/24", "192.168.1.7/32", "169.254.15.192/30",
		"255.255.255.255/32", "fd00:1::/126", "2001:db8::/32", "2001:db9::/32", "::ffff:172.16.0.0/108"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	s, err := newSourceSet(ps)
	if err != nil {
		t.Fatal(err)
	}
	// Touching and nested prefixes are merged.
	if len(s.v4) != 5 || len(s.v6) != 2 {
		t.Errorf("ranges: v4 %v v6 %v", s.v4, s.v6)
	}
	for addr, want := range map[string]bool{
		"10.0.0.0": true, "10.1.255.255": true, "10.2.0.0": false, "9.255.255.255": false,
		"192.168.1.7": true, "192.168.1.6": false, "192.168.1.8": false,
		"169.254.15.193": true, "169.254.15.196": false, "255.255.255.255": true, "0.0.0.0": false,
		"172.16.3.4": true, "::ffff:10.0.9.9": true, "::ffff:11.0.0.1": false,
		"fd00:1::2": true, "fd00:1::4": false, "2001:db8:ffff::1": true, "2001:db9:1::": true, "2001:dba::": false,
		"::": false, "ffff::": false,
	} {
		if got := s.contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("contains(%s) = %v, want %v", addr, got, want)
		}
	}
	all, _ := newSourceSet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !all.contains(netip.MustParseAddr(a)) {
			t.Errorf("default routes do not contain %s", a)
		}
	}
	empty, _ := newSourceSet(nil)
	if empty.contains(netip.MustParseAddr("10.0.0.1")) || empty.contains(netip.MustParseAddr("::1")) {
		t.Error("empty set contains an address")
	}
	if _, err := newSourceSet([]netip.Prefix{{}}); err == nil {
		t.Error("invalid prefix accepted")
	}
}

// TestSourceCheck: after decryption, a packet from a source the tunnel may
// not carry is dropped as "source"; turning the check off lets it through.
func TestSourceCheck(t *testing.T) {
	ta, tb := newMemTUN(64), newMemTUN(64)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{})
	if err := pr.b.SetTunnelSources("nosuch", true, nil); err == nil {
		t.Error("SetTunnelSources on a missing tunnel succeeded")
	}
	if err := pr.b.SetTunnelSources("t", true, []netip.Prefix{netip.PrefixFrom(addrA, 32)}); err != nil {
		t.Fatal(err)
	}
	spoofed := netip.MustParseAddr("203.0.113.9")
	ta.in <- ipv4UDP(spoofed, addrB, 1, 100)
	ta.in <- ipv4UDP(addrA, addrB, 2, 100)
	expect := func(seq uint32) {
		t.Helper()
		select {
		case p := <-tb.out:
			if seqOf(p) != seq {
				t.Errorf("got packet %d, want %d", seqOf(p), seq)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d not delivered", seq)
		}
	}
	expect(2)
	waitFor(t, "source drop", func() bool {
		st, _ := pr.b.TunnelStats("t")
		return st.Drops["source"] == 1
	})
	if err := pr.b.SetTunnelSources("t", false, nil); err != nil {
		t.Fatal(err)
	}
	ta.in <- ipv4UDP(spoofed, addrB, 3, 100)
	expect(3)
}

// BenchmarkSourceCheck is the per-packet cost of the check: a binary search
// over the disjoint ranges of n prefixes (every other /24 and /48, so none
// merge), looking up an address in the middle one.
func BenchmarkSourceCheck(b *testing.B) {
	for _, n := range []int{4, 100, 1000} {
		var ps []netip.Prefix
		for i := range n {
			j := 2 * i
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(j >> 8), byte(j), 0}), 24))
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(j >> 8), byte(j)}), 48))
		}
		s, err := newSourceSet(ps)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.v4) != n || len(s.v6) != n {
			b.Fatalf("%d/%d ranges, want %d", len(s.v4), len(s.v6), n)
		}
		m := 2 * (n / 2)
		v4 := netip.AddrFrom4([4]byte{10, byte(m >> 8), byte(m), 7})
		v6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(m >> 8), byte(m), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
		for _, c := range []struct {
			name string
			a    netip.Addr
		}{{"v4", v4}, {"v6", v6}} {
			b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if !s.contains(c.a) {
						b.Fatal("miss")
					}
				}
			})
		}
	}
}
