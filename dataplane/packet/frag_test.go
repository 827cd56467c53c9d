package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"testing"
)

// IPv4 options for the tests (RFC 791, Section 3.1; IANA "IP Option
// Numbers"): Security (130) has the copied flag, Record Route (7) and
// Timestamp (68) do not.
var (
	optSecurity    = []byte{130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	optRecordRoute = []byte{7, 7, 4, 0, 0, 0, 0}
	optLoose       = []byte{131, 7, 4, 192, 0, 2, 1} // loose source route: copied
)

// ipv4Packet builds an IPv4 packet of total length size with the given
// options (padded with End of Option List), flags/offset word and a
// payload pattern, with a correct header checksum.
func ipv4Packet(size int, opts []byte, word uint16) []byte {
	hlen := IPv4HeaderLen + (len(opts)+3)&^3
	p := make([]byte, size)
	p[0] = 0x40 | byte(hlen/4)
	p[1] = 0xb8 // DSCP EF: must survive
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	binary.BigEndian.PutUint16(p[4:], 0x1234)
	binary.BigEndian.PutUint16(p[6:], word)
	p[8] = 61
	p[9] = ProtoUDP
	copy(p[12:], []byte{10, 1, 0, 1, 10, 2, 0, 1})
	copy(p[IPv4HeaderLen:], opts)
	for i := hlen; i < size; i++ {
		p[i] = byte(i*7 + i>>8)
	}
	binary.BigEndian.PutUint16(p[10:], ^OnesSum(0, p[:hlen]))
	return p
}

// fragments returns every fragment of pkt for mtu, made out of place
// except the first, which is made in place in a copy of pkt, the way the
// dataplane does it.
func fragments(t testing.TB, pkt []byte, mtu int) [][]byte {
	t.Helper()
	n, err := IPv4FragmentCount(pkt, mtu)
	if err != nil {
		t.Fatalf("IPv4FragmentCount(%d octets, mtu %d): %v", len(pkt), mtu, err)
	}
	work := bytes.Clone(pkt)
	frags := make([][]byte, n)
	for i := n - 1; i >= 1; i-- {
		buf := make([]byte, 2*mtu)
		l, err := FragmentIPv4(buf, work, mtu, i)
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		frags[i] = buf[:l]
	}
	l, err := FragmentIPv4(work, work, mtu, 0)
	if err != nil {
		t.Fatalf("fragment 0 in place: %v", err)
	}
	frags[0] = work[:l]
	return frags
}

// reassemble is a reference reassembler (RFC 791, Section 3.2
// "Reassembly procedure", without timers): it checks each fragment on its
// own and rebuilds the datagram from the first fragment's header and the
// data in offset order.
func reassemble(t testing.TB, frags [][]byte, mtu int, origOffset int, origMF bool) []byte {
	t.Helper()
	type piece struct {
		off  int
		mf   bool
		data []byte
		hdr  []byte
	}
	var ps []piece
	for i, f := range frags {
		if len(f) > mtu {
			t.Errorf("fragment %d: %d octets > MTU %d", i, len(f), mtu)
		}
		hlen := int(f[0]&0x0f) * 4
		if f[0]>>4 != 4 || hlen < IPv4HeaderLen || hlen > len(f) || hlen%4 != 0 {
			t.Fatalf("fragment %d: bad version/IHL %#x", i, f[0])
		}
		if int(binary.BigEndian.Uint16(f[2:])) != len(f) {
			t.Errorf("fragment %d: total length %d, have %d octets", i, binary.BigEndian.Uint16(f[2:]), len(f))
		}
		if OnesSum(0, f[:hlen]) != 0xffff {
			t.Errorf("fragment %d: bad header checksum", i)
		}
		word := binary.BigEndian.Uint16(f[6:])
		if word&ipv4FlagDF != 0 {
			t.Errorf("fragment %d has DF set", i)
		}
		p := piece{off: int(word&ipv4OffsetMask) * 8, mf: word&ipv4FlagMF != 0, data: f[hlen:], hdr: f[:hlen]}
		if i < len(frags)-1 && len(p.data)%8 != 0 {
			t.Errorf("fragment %d: %d data octets (not a multiple of 8) in a fragment before the last", i, len(p.data))
		}
		if i > 0 && !bytes.Equal(f[4:6], frags[0][4:6]) {
			t.Errorf("fragment %d: identification differs", i)
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].off < ps[j].off })
	if ps[0].off != origOffset {
		t.Fatalf("first fragment at offset %d, want %d", ps[0].off, origOffset)
	}
	var data []byte
	for i, p := range ps {
		if p.off != origOffset+len(data) {
			t.Fatalf("fragment at offset %d, want %d (hole or overlap)", p.off, origOffset+len(data))
		}
		if last := i == len(ps)-1; p.mf != (!last || origMF) {
			t.Errorf("fragment at offset %d: MF=%v", p.off, p.mf)
		}
		data = append(data, p.data...)
	}
	hdr := bytes.Clone(ps[0].hdr)
	out := append(hdr, data...)
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	word := uint16(origOffset / 8)
	if origMF {
		word |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(out[6:], word|binary.BigEndian.Uint16(ps[0].hdr[6:])&0x8000)
	binary.BigEndian.PutUint16(out[10:], 0)
	binary.BigEndian.PutUint16(out[10:], ^OnesSum(0, out[:len(hdr)]))
	return out
}

func TestFragmentIPv4Reassembles(t *testing.T) {
	optSets := map[string][]byte{
		"none":               nil,
		"copied":             optSecurity,
		"mixed":              append(append(append([]byte{optNOP}, optRecordRoute...), optSecurity...), optLoose...),
		"not-copied":         optRecordRoute,
		"end-before-padding": append(bytes.Clone(optLoose), optEnd, 0, 0, 0, 0),
	}
	for name, opts := range optSets {
		for _, mtu := range []int{68, 576, 1000, 1400} {
			for _, size := range []int{mtu - 1, mtu, mtu + 1, mtu + 7, mtu + 8, 2*mtu - 40, 2 * mtu, 1500, 4000, 65535} {
				hlen := IPv4HeaderLen + (len(opts)+3)&^3
				if size < hlen || (mtu == 68 && size > 9000) {
					continue
				}
				t.Run(fmt.Sprintf("%s/mtu%d/size%d", name, mtu, size), func(t *testing.T) {
					pkt := ipv4Packet(size, opts, 0)
					frags := fragments(t, pkt, mtu)
					if size <= mtu {
						if len(frags) != 1 || !bytes.Equal(frags[0], pkt) {
							t.Fatalf("a packet that fits was changed")
						}
						return
					}
					if len(frags) < 2 {
						t.Fatalf("%d fragments", len(frags))
					}
					checkOptions(t, frags, opts)
					if got := reassemble(t, frags, mtu, 0, false); !bytes.Equal(got, pkt) {
						t.Fatalf("reassembled packet differs from the original\n got %x\nwant %x", got[:min(64, len(got))], pkt[:min(64, len(pkt))])
					}
				})
			}
		}
	}
}

// checkOptions: the first fragment has every option, the others exactly
// the copied ones (padded with zeros), in order.
func checkOptions(t *testing.T, frags [][]byte, opts []byte) {
	t.Helper()
	hlen0 := IPv4HeaderLen + (len(opts)+3)&^3
	if int(frags[0][0]&0x0f)*4 != hlen0 || !bytes.Equal(frags[0][IPv4HeaderLen:IPv4HeaderLen+len(opts)], opts) {
		t.Errorf("first fragment does not carry the original options")
	}
	var want []byte
	for i := 0; i < len(opts); {
		switch opts[i] {
		case optEnd:
			i = len(opts)
			continue
		case optNOP:
			i++
			continue
		}
		l := int(opts[i+1])
		if opts[i]&optCopied != 0 {
			want = append(want, opts[i:i+l]...)
		}
		i += l
	}
	for len(want)%4 != 0 {
		want = append(want, 0)
	}
	for i, f := range frags[1:] {
		got := f[IPv4HeaderLen : int(f[0]&0x0f)*4]
		if !bytes.Equal(got, want) {
			t.Errorf("fragment %d options %x, want %x (copied options only)", i+1, got, want)
		}
	}
}

// TestFragmentIPv4Boundary pins the split at the boundary: for MTU 1400
// and no options the first fragment carries 1376 data octets (the largest
// multiple of 8 that fits), so 1401..1396+20 octets make two fragments.
func TestFragmentIPv4Boundary(t *testing.T) {
	for _, tc := range []struct {
		size, mtu int
		lens      []int
	}{
		{1400, 1400, []int{1400}},
		{1401, 1400, []int{1396, 25}},
		{1500, 1400, []int{1396, 124}},
		{1500, 1438, []int{1436, 84}},
		{2772, 1400, []int{1396, 1396}},
		{2773, 1400, []int{1396, 1396, 21}},
		{100, 68, []int{68, 52}},
	} {
		pkt := ipv4Packet(tc.size, nil, 0)
		frags := fragments(t, pkt, tc.mtu)
		var lens []int
		for _, f := range frags {
			lens = append(lens, len(f))
		}
		if fmt.Sprint(lens) != fmt.Sprint(tc.lens) {
			t.Errorf("size %d mtu %d: fragment lengths %v, want %v", tc.size, tc.mtu, lens, tc.lens)
		}
	}
}

// TestFragmentIPv4OfFragment: fragmenting a fragment keeps its offset and
// its MF in the last piece.
func TestFragmentIPv4OfFragment(t *testing.T) {
	for _, mf := range []bool{false, true} {
		word := uint16(185) // offset 1480 octets
		if mf {
			word |= ipv4FlagMF
		}
		pkt := ipv4Packet(1500, optSecurity, word)
		frags := fragments(t, pkt, 600)
		if got := reassemble(t, frags, 600, 1480, mf); !bytes.Equal(got, pkt) {
			t.Errorf("MF=%v: reassembled fragment differs", mf)
		}
	}
}

func TestFragmentIPv4Errors(t *testing.T) {
	df := ipv4Packet(1500, nil, ipv4FlagDF)
	if _, err := IPv4FragmentCount(df, 1400); !errors.Is(err, ErrDF) {
		t.Errorf("DF packet: err = %v, want ErrDF", err)
	}
	if n, err := IPv4FragmentCount(df, 1500); err != nil || n != 1 {
		t.Errorf("DF packet that fits: %d, %v", n, err)
	}
	big := ipv4Packet(1500, []byte{optSecurity[0], 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0)
	if _, err := IPv4FragmentCount(big, 39); !errors.Is(err, ErrFragmentMTU) {
		t.Errorf("tiny MTU: err = %v, want ErrFragmentMTU", err)
	}
	bad := ipv4Packet(1500, []byte{optSecurity[0], 40, 0, 0}, 0) // option longer than the header
	if _, err := IPv4FragmentCount(bad, 1400); !errors.Is(err, ErrOptions) {
		t.Errorf("bad options: err = %v, want ErrOptions", err)
	}
	if _, err := IPv4FragmentCount(big[:1000], 1400); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: err = %v, want ErrTruncated", err)
	}
	v6 := make([]byte, 1500)
	v6[0] = 0x60
	if _, err := IPv4FragmentCount(v6, 1400); !errors.Is(err, ErrNotIPv4) {
		t.Errorf("IPv6: err = %v, want ErrNotIPv4", err)
	}
	p := ipv4Packet(1500, nil, 0)
	if _, err := FragmentIPv4(make([]byte, 2000), p, 1400, 2); !errors.Is(err, ErrFragmentIndex) {
		t.Errorf("index 2 of 2: err = %v", err)
	}
	if _, err := FragmentIPv4(make([]byte, 100), p, 1400, 0); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short dst: err = %v", err)
	}
}

func TestClearDF(t *testing.T) {
	p := ipv4Packet(1500, optSecurity, ipv4FlagDF|0x8000) // reserved bit kept
	if !DF(p) {
		t.Fatal("DF not reported")
	}
	if !ClearDF(p, 0xbeef) {
		t.Fatal("ClearDF returned false for a DF packet")
	}
	hlen := int(p[0]&0x0f) * 4
	if DF(p) || binary.BigEndian.Uint16(p[6:]) != 0x8000 || binary.BigEndian.Uint16(p[4:]) != 0xbeef {
		t.Errorf("flags %#04x id %#04x after ClearDF", binary.BigEndian.Uint16(p[6:]), binary.BigEndian.Uint16(p[4:]))
	}
	if OnesSum(0, p[:hlen]) != 0xffff {
		t.Error("header checksum wrong after ClearDF")
	}
	q := ipv4Packet(1500, nil, 0)
	orig := bytes.Clone(q)
	if ClearDF(q, 1) || !bytes.Equal(q, orig) {
		t.Error("ClearDF changed a packet without DF")
	}
	// After ClearDF the packet fragments and reassembles to itself.
	frags := fragments(t, p, 1000)
	if got := reassemble(t, frags, 1000, 0, false); !bytes.Equal(got, p) {
		t.Error("reassembled packet differs after ClearDF")
	}
}

func TestFragmentAllocs(t *testing.T) {
	pkt := ipv4Packet(1500, optSecurity, 0)
	dst := make([]byte, 2000)
	allocs := testing.AllocsPerRun(100, func() {
		n, _ := IPv4FragmentCount(pkt, 1000)
		for i := 1; i < n; i++ {
			FragmentIPv4(dst, pkt, 1000, i)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per fragmentation, want 0", allocs)
	}
}

// FuzzFragmentIPv4: any input either fails cleanly or fragments into
// pieces that reassemble to the (DF-clear) original.
func FuzzFragmentIPv4(f *testing.F) {
	f.Add(ipv4Packet(1500, optSecurity, 0), uint16(1000))
	f.Add(ipv4Packet(300, append(bytes.Clone(optRecordRoute), optLoose...), 0), uint16(68))
	f.Add(ipv4Packet(200, nil, 185|ipv4FlagMF), uint16(100))
	f.Fuzz(func(t *testing.T, pkt []byte, mtu16 uint16) {
		mtu := int(mtu16)
		n, err := IPv4FragmentCount(pkt, mtu)
		if err != nil {
			return
		}
		if n > 2000 {
			return
		}
		total := int(binary.BigEndian.Uint16(pkt[2:]))
		if n == 1 {
			out := make([]byte, total)
			if l, err := FragmentIPv4(out, pkt, mtu, 0); err != nil || !bytes.Equal(out[:l], pkt[:total]) {
				t.Fatalf("fits: %v", err)
			}
			return
		}
		hlen := int(pkt[0]&0x0f) * 4
		if OnesSum(0, pkt[:hlen]) != 0xffff {
			return // the reference comparison needs a valid checksum
		}
		word := binary.BigEndian.Uint16(pkt[6:])
		frags := fragments(t, pkt[:total], mtu)
		got := reassemble(t, frags, mtu, int(word&ipv4OffsetMask)*8, word&ipv4FlagMF != 0)
		if !bytes.Equal(got, pkt[:total]) {
			t.Fatalf("reassembled packet differs")
		}
	})
}
