package esp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// Wireshark's names for our transforms in the esp_sa UAT
// (epan/dissectors/packet-ipsec.c, esp_encryption_type_vals and
// esp_authentication_type_vals).
var wiresharkEncr = map[ipsec.EncrID]string{
	ipsec.EncrAESCBC:   "AES-CBC [RFC3602]",
	ipsec.EncrAESGCM16: "AES-GCM with 16 octet ICV [RFC4106]",
}

var wiresharkInteg = map[ipsec.IntegID]string{
	ipsec.IntegNone:             "NULL",
	ipsec.IntegHMACSHA1_96:      "HMAC-SHA-1-96 [RFC2404]",
	ipsec.IntegHMACSHA2_256_128: "HMAC-SHA-256-128 [RFC4868]",
	ipsec.IntegHMACSHA2_384_192: "HMAC-SHA-384-192 [RFC4868]",
	ipsec.IntegHMACSHA2_512_256: "HMAC-SHA-512-256 [RFC4868]",
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// ipv4Header returns a 20-byte IPv4 header with a valid checksum.
func ipv4Header(src, dst [4]byte, proto byte, payloadLen int) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+payloadLen))
	h[8] = 64
	h[9] = proto
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return h
}

// icmpEcho returns an IPv4 ICMP echo request with identifier id and
// sequence number seq.
func icmpEcho(id, seq uint16) []byte {
	icmp := make([]byte, 8+32)
	icmp[0] = 8
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	for i := 8; i < len(icmp); i++ {
		icmp[i] = byte(i)
	}
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return append(ipv4Header([4]byte{10, 1, 0, 5}, [4]byte{10, 0, 0, 9}, 1, len(icmp)), icmp...)
}

// udp6 returns an IPv6 UDP datagram to port dport (UDP checksum over the
// pseudo-header).
func udp6(dport uint16) []byte {
	src, _ := hex.DecodeString("20010db8000000010000000000000005")
	dst, _ := hex.DecodeString("20010db8000000020000000000000009")
	payload := []byte("cgw esp tshark interop check")
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	pseudo := append(append(append([]byte(nil), src...), dst...), 0, 0, byte(len(udp)>>8), byte(len(udp)), 0, 0, 0, 17)
	binary.BigEndian.PutUint16(udp[6:], checksum(append(pseudo, udp...)))
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(udp)))
	h[6] = 17
	h[7] = 64
	copy(h[8:], src)
	copy(h[24:], dst)
	return append(h, udp...)
}

// writePcap writes packets as a classic libpcap file (magic a1b2c3d4,
// version 2.4) with link type LINKTYPE_RAW (101): each record is a bare
// IPv4 packet.
func writePcap(path string, pkts [][]byte) error {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535) // snaplen
	binary.LittleEndian.PutUint32(hdr[20:], 101)   // LINKTYPE_RAW
	b.Write(hdr)
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, p := range pkts {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[0:], uint32(ts.Unix())+uint32(i))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(p)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(p)))
		b.Write(rec)
		b.Write(p)
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// TestTshark seals packets for every algorithm Wireshark knows, wraps them
// in IPv4/UDP 4500 (RFC 3948), and asserts that tshark, given the SA keys,
// verifies the ICV and decodes the inner ICMP and IPv6/UDP packets. This
// checks our wire format against an independent implementation.
func TestTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	var pkts [][]byte
	var args []string
	type expect struct{ alg string }
	var want []expect
	spi := ipsec.SPI(0x10000)
	for _, ta := range testAlgs {
		encr, ok := wiresharkEncr[ta.alg.Encr]
		if !ok {
			continue // Wireshark 4.0 lacks ChaCha20-Poly1305 for ESP
		}
		spi++
		p := ta.params(spi, false)
		o, err := NewOutbound(p)
		if err != nil {
			t.Fatal(err)
		}
		integKey := "0x"
		if len(p.IntegKey) > 0 {
			integKey += hex.EncodeToString(p.IntegKey)
		}
		args = append(args, "-o", fmt.Sprintf(`uat:esp_sa:"IPv4","*","*","0x%08x","%s","0x%s","%s","%s"`,
			uint32(spi), encr, hex.EncodeToString(p.EncKey), wiresharkInteg[ta.alg.Integ], integKey))
		for i, inner := range [][]byte{icmpEcho(uint16(spi), 1), udp6(uint16(spi))} {
			esp := seal(t, o, inner, uint64(i+1))
			udp := make([]byte, 8, 8+len(esp))
			binary.BigEndian.PutUint16(udp[0:], 4500)
			binary.BigEndian.PutUint16(udp[2:], 4500)
			binary.BigEndian.PutUint16(udp[4:], uint16(8+len(esp)))
			udp = append(udp, esp...)
			outer := ipv4Header([4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 2}, 17, len(udp))
			pkts = append(pkts, append(outer, udp...))
			want = append(want, expect{ta.name})
		}
	}
	path := filepath.Join(t.TempDir(), "esp.pcap")
	if err := writePcap(path, pkts); err != nil {
		t.Fatal(err)
	}
	cmdArgs := append([]string{"-r", path, "-n",
		"-o", "esp.enable_encryption_decode:TRUE",
		"-o", "esp.enable_authentication_check:TRUE",
		"-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "esp.spi", "-e", "esp.icv_good", "-e", "esp.protocol", "-e", "icmp.ident", "-e", "icmp.seq",
		"-e", "ipv6.dst", "-e", "udp.dstport"}, args...)
	cmd := exec.Command(tshark, cmdArgs...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user preferences
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var rows []string
	for _, l := range lines {
		if strings.Count(l, "|") == 6 {
			rows = append(rows, l)
		}
	}
	if len(rows) != len(pkts) {
		t.Fatalf("tshark printed %d packets, want %d:\n%s", len(rows), len(pkts), out)
	}
	for i, r := range rows {
		f := strings.Split(r, "|")
		spi := 0x10001 + i/2
		if f[0] != fmt.Sprintf("0x%08x", spi) {
			t.Errorf("%s packet %d: esp.spi = %q, want %#08x", want[i].alg, i, f[0], spi)
		}
		if f[1] != "1" && f[1] != "True" {
			t.Errorf("%s packet %d: tshark did not verify the ICV (esp.icv_good = %q)", want[i].alg, i, f[1])
		}
		if i%2 == 0 {
			if (f[2] != "0x04" && f[2] != "4") || f[3] != fmt.Sprint(spi&0xffff) || f[4] != "1" {
				t.Errorf("%s packet %d: inner ICMP not decoded: %q", want[i].alg, i, r)
			}
		} else {
			if (f[2] != "0x29" && f[2] != "41") || f[5] != "2001:db8:0:2::9" || !strings.HasSuffix(f[6], ","+fmt.Sprint(spi&0xffff)) {
				t.Errorf("%s packet %d: inner IPv6/UDP not decoded: %q", want[i].alg, i, r)
			}
		}
	}
	if t.Failed() {
		t.Logf("tshark output:\n%s", out)
	}
}
