package packet

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// checksum is the Internet checksum (RFC 1071) of b added to initial.
func checksum(initial uint32, b []byte) uint16 {
	for initial > 0xffff {
		initial = (initial & 0xffff) + (initial >> 16)
	}
	return ^OnesSum(uint16(initial), b)
}

// pseudo returns the partial sum of the TCP pseudo-header of pkt.
func pseudo(pkt []byte, p *Parsed) uint32 {
	var s uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			s += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
	}
	src, dst := p.Src.AsSlice(), p.Dst.AsSlice()
	add(src)
	add(dst)
	l := p.Length - p.L4Off
	if p.Version == 6 {
		s += uint32(l>>16) + uint32(l&0xffff) + uint32(p.Proto)
	} else {
		s += uint32(p.Proto) + uint32(l)
	}
	return s
}

// tcpChecksumOK verifies the TCP checksum of a decoded packet.
func tcpChecksumOK(t testing.TB, pkt []byte) bool {
	t.Helper()
	var p Parsed
	if err := p.Decode(pkt); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return checksum(pseudo(pkt, &p), pkt[p.L4Off:p.Length]) == 0
}

// buildTCP builds an IPv4 or IPv6 TCP packet with the given flags, options
// (padded to 4 octets with NOPs... callers pass aligned options) and payload,
// with a correct checksum.
func buildTCP(v6 bool, flags uint8, opts []byte, payload []byte) []byte {
	tcpLen := TCPHeaderLen + len(opts) + len(payload)
	var pkt []byte
	if v6 {
		pkt = make([]byte, IPv6HeaderLen+tcpLen)
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(tcpLen))
		pkt[6] = ProtoTCP
		pkt[7] = 64
		a := netip.MustParseAddr("2001:db8::1").As16()
		b := netip.MustParseAddr("2001:db8::2").As16()
		copy(pkt[8:], a[:])
		copy(pkt[24:], b[:])
	} else {
		pkt = make([]byte, IPv4HeaderLen+tcpLen)
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[8] = 64
		pkt[9] = ProtoTCP
		copy(pkt[12:], []byte{10, 0, 0, 1})
		copy(pkt[16:], []byte{10, 0, 0, 2})
		binary.BigEndian.PutUint16(pkt[10:], checksum(0, pkt[:IPv4HeaderLen]))
	}
	var p Parsed
	if err := p.Decode(pkt); err != nil {
		panic(err)
	}
	tcp := pkt[p.L4Off:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 443)
	binary.BigEndian.PutUint32(tcp[4:], 0x01020304)
	tcp[12] = byte((TCPHeaderLen+len(opts))/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	copy(tcp[TCPHeaderLen:], opts)
	copy(tcp[TCPHeaderLen+len(opts):], payload)
	binary.BigEndian.PutUint16(tcp[16:], checksum(pseudo(pkt, &p), tcp))
	return pkt
}

func mssOf(t *testing.T, pkt []byte) uint16 {
	t.Helper()
	var p Parsed
	if err := p.Decode(pkt); err != nil {
		t.Fatal(err)
	}
	tcp := pkt[p.L4Off:]
	opts := tcp[TCPHeaderLen : int(tcp[12]>>4)*4]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			return 0
		case 1:
			i++
			continue
		}
		if opts[i] == 2 {
			return binary.BigEndian.Uint16(opts[i+2:])
		}
		i += int(opts[i+1])
	}
	return 0
}

func TestDecode(t *testing.T) {
	pkt := buildTCP(false, tcpFlagSYN, nil, []byte("hi"))
	var p Parsed
	if err := p.Decode(pkt); err != nil {
		t.Fatal(err)
	}
	if p.Version != 4 || p.Proto != ProtoTCP || p.Src != netip.MustParseAddr("10.0.0.1") ||
		p.Dst != netip.MustParseAddr("10.0.0.2") || p.SrcPort != 40000 || p.DstPort != 443 ||
		!p.HasPorts || p.Length != len(pkt) || p.L4Off != 20 || p.TCPFlags != tcpFlagSYN {
		t.Errorf("v4 decode = %+v", p)
	}
	pkt6 := buildTCP(true, tcpFlagSYN, nil, nil)
	if err := p.Decode(pkt6); err != nil {
		t.Fatal(err)
	}
	if p.Version != 6 || p.Proto != ProtoTCP || p.Src != netip.MustParseAddr("2001:db8::1") || p.DstPort != 443 || p.L4Off != 40 {
		t.Errorf("v6 decode = %+v", p)
	}

	// IPv6 with a Hop-by-Hop and a Fragment header (first fragment).
	ext := make([]byte, 0, 128)
	ext = append(ext, pkt6[:40]...)
	ext[6] = protoHopOpts
	ext = append(ext, protoFragment, 0, 1, 4, 0, 0, 0, 0) // HBH: next=frag, len 0, PadN
	ext = append(ext, ProtoTCP, 0, 0, 1, 0, 0, 0, 7)      // frag: offset 0, M=1
	ext = append(ext, pkt6[40:]...)
	binary.BigEndian.PutUint16(ext[4:], uint16(len(ext)-40))
	if err := p.Decode(ext); err != nil {
		t.Fatal(err)
	}
	if p.Proto != ProtoTCP || p.L4Off != 56 || !p.Fragment || p.NonFirstFragment || !p.HasPorts {
		t.Errorf("v6 ext decode = %+v", p)
	}
	ext[50] = 0x01 // fragment offset 32 octets: not first
	if err := p.Decode(ext); err != nil {
		t.Fatal(err)
	}
	if !p.NonFirstFragment || p.HasPorts {
		t.Errorf("v6 non-first fragment decode = %+v", p)
	}

	// Trailing bytes (TFC padding) are fine; short buffers are not.
	if err := p.Decode(append(pkt[:len(pkt):len(pkt)], 0, 0, 0)); err != nil || p.Length != len(pkt) {
		t.Errorf("trailing padding: err %v length %d", err, p.Length)
	}
	for i := range len(pkt) {
		if err := p.Decode(pkt[:i]); err == nil {
			t.Errorf("truncated to %d: no error", i)
		}
	}
	for i := range len(pkt6) {
		if err := p.Decode(pkt6[:i]); err == nil {
			t.Errorf("v6 truncated to %d: no error", i)
		}
	}
	if err := p.Decode([]byte{0x55, 0, 0, 0}); err != ErrVersion {
		t.Errorf("version 5: %v", err)
	}
	bad := append([]byte(nil), pkt...)
	bad[0] = 0x44 // IHL 16 octets
	if err := p.Decode(bad); err != ErrHeader {
		t.Errorf("ihl 4: %v", err)
	}
}

func TestClampMSS(t *testing.T) {
	mssOpt := func(v uint16) []byte { return []byte{2, 4, byte(v >> 8), byte(v)} }
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	sackOK := []byte{4, 2}
	wscale := []byte{3, 3, 7}
	ts := []byte{8, 10, 1, 2, 3, 4, 5, 6, 7, 8}
	tests := []struct {
		name    string
		v6      bool
		flags   uint8
		opts    []byte
		payload []byte
		clamp   uint16
		want    uint16 // MSS after
		changed bool
	}{
		{"v4 syn", false, tcpFlagSYN, mssOpt(1460), nil, 1379, 1379, true},
		{"v4 synack", false, tcpFlagSYN | 0x10, mssOpt(1460), nil, 1379, 1379, true},
		{"v4 smaller kept", false, tcpFlagSYN, mssOpt(1200), nil, 1379, 1200, false},
		{"v4 equal kept", false, tcpFlagSYN, mssOpt(1379), nil, 1379, 1379, false},
		{"v4 not syn", false, 0x10, mssOpt(1460), nil, 1379, 1460, false},
		{"v4 disabled", false, tcpFlagSYN, mssOpt(1460), nil, 0, 1460, false},
		{"v4 linux order", false, tcpFlagSYN, cat(mssOpt(65495), sackOK, ts, []byte{1}, wscale), nil, 1379, 1379, true},
		// NOP then MSS: the value sits at an odd offset and straddles two checksum words.
		{"v4 odd offset", false, tcpFlagSYN, cat([]byte{1}, mssOpt(8960), []byte{1, 1, 1}), nil, 1379, 1379, true},
		{"v4 after wscale (odd)", false, tcpFlagSYN, cat(wscale, mssOpt(9000), []byte{0}), []byte("data"), 1379, 1379, true},
		{"v4 late", false, tcpFlagSYN, cat(sackOK, ts, mssOpt(1460)), nil, 1379, 1379, true},
		{"v4 after EOL ignored", false, tcpFlagSYN, cat([]byte{0, 0, 0, 0}, mssOpt(1460)), nil, 1379, 0 /* helper stops at EOL too */, false},
		{"v4 no mss", false, tcpFlagSYN, cat(sackOK, []byte{1, 1}), nil, 1379, 0, false},
		{"v6 syn", true, tcpFlagSYN, mssOpt(1440), nil, 1379, 1359, true},
		{"v6 odd offset", true, tcpFlagSYN | 0x10, cat([]byte{1}, mssOpt(1440), []byte{1, 1, 1}), nil, 1379, 1359, true},
		{"v6 smaller kept", true, tcpFlagSYN, mssOpt(1300), nil, 1379, 1300, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := buildTCP(tc.v6, tc.flags, tc.opts, tc.payload)
			if !tcpChecksumOK(t, pkt) {
				t.Fatal("test packet has a bad checksum")
			}
			if got := ClampMSS(pkt, tc.clamp); got != tc.changed {
				t.Errorf("ClampMSS = %v, want %v", got, tc.changed)
			}
			if got := mssOf(t, pkt); got != tc.want {
				t.Errorf("MSS = %d, want %d", got, tc.want)
			}
			if !tcpChecksumOK(t, pkt) {
				t.Error("checksum invalid after clamp")
			}
		})
	}
}

func TestClampMSSMalformed(t *testing.T) {
	pkt := buildTCP(false, tcpFlagSYN, []byte{2, 4, 5, 0xb4}, nil)
	// Option length running past the header.
	bad := append([]byte(nil), pkt...)
	bad[IPv4HeaderLen+TCPHeaderLen+1] = 9
	if ClampMSS(bad, 1000) {
		t.Error("clamped an option overrunning the header")
	}
	// Data offset beyond the packet.
	bad = append([]byte(nil), pkt...)
	bad[IPv4HeaderLen+12] = 0xf0
	if ClampMSS(bad, 1000) {
		t.Error("clamped with data offset beyond the packet")
	}
	// Fragmented SYN.
	bad = append([]byte(nil), pkt...)
	bad[6] = 0x20
	if ClampMSS(bad, 1000) {
		t.Error("clamped a fragment")
	}
	for i := range len(pkt) {
		ClampMSS(append([]byte(nil), pkt[:i]...), 1000) // must not panic
	}
}

func TestCsumUpdate(t *testing.T) {
	data := []byte{0x45, 0x00, 0x12, 0x34, 0xff, 0xff, 0x00, 0x01}
	hc := checksum(0, data)
	old := binary.BigEndian.Uint16(data[2:])
	binary.BigEndian.PutUint16(data[2:], 0xedcb)
	if got, want := csumUpdate(hc, old, 0xedcb), checksum(0, data); got != want {
		t.Errorf("csumUpdate = %#04x, want %#04x", got, want)
	}
}

func TestClampAllocs(t *testing.T) {
	pkt := buildTCP(false, tcpFlagSYN, []byte{2, 4, 5, 0xb4}, nil)
	n := testing.AllocsPerRun(100, func() {
		binaryPut := pkt[IPv4HeaderLen+TCPHeaderLen+2:]
		binaryPut[0], binaryPut[1] = 5, 0xb4
		ClampMSS(pkt, 1000)
	})
	if n != 0 {
		t.Errorf("ClampMSS allocates %v times per packet", n)
	}
}

// FuzzClamp checks that ClampMSS never panics, only ever changes the two
// octets of an MSS value (to a smaller value), and keeps a valid TCP
// checksum valid.
func FuzzClamp(f *testing.F) {
	f.Add(buildTCP(false, tcpFlagSYN, []byte{2, 4, 5, 0xb4}, nil), uint16(1379))
	f.Add(buildTCP(true, tcpFlagSYN, []byte{1, 2, 4, 0x23, 0x28, 1, 1, 1}, nil), uint16(1379))
	f.Add(buildTCP(false, tcpFlagSYN|0x10, []byte{3, 3, 7, 2, 4, 0xff, 0xff, 0}, []byte("x")), uint16(536))
	f.Fuzz(func(t *testing.T, pkt []byte, mss uint16) {
		orig := append([]byte(nil), pkt...)
		var p Parsed
		validBefore := p.Decode(pkt) == nil && p.Proto == ProtoTCP && p.Length-p.L4Off >= TCPHeaderLen &&
			checksum(pseudo(pkt, &p), pkt[p.L4Off:p.Length]) == 0
		changed := ClampMSS(pkt, mss)
		diff := 0
		for i := range pkt {
			if pkt[i] != orig[i] {
				diff++
			}
		}
		if !changed && diff != 0 {
			t.Fatalf("ClampMSS reported no change but modified %d octets", diff)
		}
		if changed && diff > 4 { // the MSS value and the checksum
			t.Fatalf("ClampMSS modified %d octets", diff)
		}
		if changed && validBefore {
			if err := p.Decode(pkt); err != nil {
				t.Fatal(err)
			}
			if checksum(pseudo(pkt, &p), pkt[p.L4Off:p.Length]) != 0 {
				t.Fatal("checksum invalid after clamp")
			}
		}
	})
}
