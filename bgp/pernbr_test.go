package bgp

import (
	"net/netip"
	"testing"
)

func TestExportFilter(t *testing.T) {
	mp := netip.MustParsePrefix
	f := &ExportFilter{Exact: []netip.Prefix{mp("10.1.0.0/16"), mp("2001:db8::/32")}, Within: []netip.Prefix{mp("172.16.0.0/12")}}
	for _, c := range []struct {
		p    string
		want bool
	}{
		{"10.1.0.0/16", true},
		{"10.1.0.0/24", false}, // exact only
		{"10.2.0.0/16", false},
		{"172.16.0.0/12", true},
		{"172.20.1.0/24", true},
		{"172.0.0.0/8", false}, // shorter than the within prefix
		{"2001:db8::/32", true},
	} {
		if got := f.passes(mp(c.p)); got != c.want {
			t.Errorf("passes(%s) = %v, want %v", c.p, got, c.want)
		}
	}
	var all *ExportFilter
	if !all.passes(mp("192.0.2.0/24")) {
		t.Error("a nil filter must pass every prefix")
	}
	v4 := f.prefixSet("s", true)
	if v4 == nil || len(v4.Prefixes) != 2 || v4.Prefixes[0].MaskLengthMax != 16 || v4.Prefixes[1].MaskLengthMax != 32 {
		t.Fatalf("IPv4 prefix set = %v", v4)
	}
	if v6 := f.prefixSet("s", false); v6 == nil || len(v6.Prefixes) != 1 {
		t.Fatalf("IPv6 prefix set = %v", v6)
	}
	if s := (&ExportFilter{Exact: []netip.Prefix{mp("2001:db8::/32")}}).prefixSet("s", true); s != nil {
		t.Errorf("an IPv4 session with only IPv6 prefixes must get no set, got %v", s)
	}
	g := &ExportFilter{Exact: []netip.Prefix{mp("2001:db8::/32"), mp("10.1.0.0/16")}, Within: f.Within}
	if f.key() != g.key() || f.key() == all.key() {
		t.Errorf("keys: %q %q %q", f.key(), g.key(), all.key())
	}
}

func TestNeighborLocalASN(t *testing.T) {
	n := Neighbor{Name: "t1", PeerAddr: netip.MustParseAddr("169.254.10.1"), PeerASN: 64512, LocalASN: 64512}
	if _, err := n.normalize(65000); err == nil {
		t.Error("a local ASN equal to the peer's must be refused (eBGP)")
	}
	n.LocalASN = 65001
	if _, err := n.normalize(64512); err != nil {
		t.Errorf("a per-neighbor ASN must override the server's: %v", err)
	}
	if n.localASN(65000) != 65001 || (Neighbor{}).localASN(65000) != 65000 {
		t.Error("localASN")
	}
	m := n
	m.LocalASN = 65002
	if n.sessionKey() == m.sessionKey() {
		t.Error("a changed local ASN must re-create the session")
	}
}
