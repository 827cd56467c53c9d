// Package esp is the pure ESP transform of cgw: RFC 4303 tunnel-mode
// encapsulation and decapsulation of IP packets on caller-owned buffers. It
// opens no sockets, starts no goroutines and never logs.
//
// An Outbound seals inner IPv4/IPv6 packets in place: the caller leaves
// HeadRoom() bytes before and TailRoom() bytes after the inner packet, takes a
// sequence number from NextSeq and calls Seal, which writes SPI, sequence
// number, IV, ciphertext, padding, trailer and ICV around the packet. An
// Inbound opens received ESP packets (SPI..ICV, without any UDP header) in
// place, verifying integrity before it decrypts, checks the anti-replay
// window read-only, and leaves the window update to Accept once the caller
// has decided to deliver the packet.
//
// Supported transforms (what AWS Site-to-Site VPN offers, plus ChaCha20-Poly1305):
//   - AES-GCM with a 16-octet ICV, 128/192/256-bit keys (RFC 4106);
//   - ChaCha20-Poly1305 (RFC 7634);
//   - AES-CBC (RFC 3602) 128/192/256 with HMAC-SHA1-96 (RFC 2404) or
//     HMAC-SHA2-256-128/384-192/512-256 (RFC 4868).
//
// Both 32-bit and Extended (64-bit) Sequence Numbers (RFC 4303, Section
// 2.2.1) are supported.
//
// IVs: AEAD ciphers use the 64-bit sequence number as IV (unique per key,
// RFC 4106 Section 3.1). AES-CBC needs unpredictable IVs: each is the AES
// encryption of the sequence number under a random key drawn once per
// outbound SA, so no per-packet random read is needed (see cbcIV).
//
// Concurrency: Outbound.NextSeq and Seal, and Inbound.Open, are safe for
// concurrent use on distinct buffers. Inbound.Accept is internally locked.
// Steady-state Seal and Open do not allocate.
//
// Errors returned per packet are the sentinel values below, so callers can
// count drops by reason with ==; they carry no per-packet detail.
package esp

import (
	"encoding/binary"
	"errors"

	"github.com/cgwproject/cgw/ipsec"
)

// Per-packet errors. They never contain key material or packet contents.
var (
	// ErrAuth: the ICV did not verify (wrong keys, wrong SA, or a
	// corrupted or forged packet).
	ErrAuth = errors.New("esp: integrity check failed: packet forged, corrupted, or sealed with other keys")
	// ErrReplay: the sequence number was already received or lies left of
	// the anti-replay window (RFC 4303, Section 3.4.3).
	ErrReplay = errors.New("esp: replayed or too old sequence number")
	// ErrMalformed: the packet is too short for this SA's header, IV and
	// ICV, its ciphertext is not block aligned, its SPI is not this SA's,
	// or (Seal) the inner packet is not IPv4 or IPv6.
	ErrMalformed = errors.New("esp: malformed packet: bad length, alignment, SPI or inner IP version")
	// ErrPadding: the decrypted trailer has a pad length longer than the
	// payload or padding bytes that are not 1, 2, 3, ... (RFC 4303, Section 2.4).
	ErrPadding = errors.New("esp: invalid padding in decrypted trailer")
	// ErrSeqExhausted: the sequence number space of the SA is used up
	// (RFC 4303, Section 3.3.3); the SA must be rekeyed.
	ErrSeqExhausted = errors.New("esp: sequence number space exhausted; rekey the CHILD SA")
	// ErrDummy: the packet is an authentic TFC dummy packet (next header
	// 59, RFC 4303, Section 2.6); drop it silently.
	ErrDummy = errors.New("esp: dummy packet (next header 59); drop silently")
	// ErrBufferTooSmall: Seal was not given HeadRoom() bytes before and
	// TailRoom() bytes after the inner packet, or the packet range lies
	// outside buf.
	ErrBufferTooSmall = errors.New("esp: buffer lacks room: reserve HeadRoom() bytes before and TailRoom() bytes after the inner packet")
)

// Wire constants (RFC 4303).
const (
	headerLen = 8 // SPI (4) + Sequence Number (4), Section 2

	// Next Header values (IANA protocol numbers) used in tunnel mode.
	NextHeaderIPv4  = 4  // IP-in-IP
	NextHeaderIPv6  = 41 // IPv6
	NextHeaderDummy = 59 // "no next header": TFC dummy packet, Section 2.6
)

// Sequence number limits and soft (rekey) thresholds.
const (
	// maxSeq32 is the last sequence number an SA without ESN may send:
	// the counter must not cycle (RFC 4303, Section 3.3.3), so 2^32-1
	// packets fit and the next reservation fails.
	maxSeq32 = 1<<32 - 1
	maxSeq64 = 1<<64 - 1
	// SoftSeq32 is where NextSeq starts reporting soft=true without ESN:
	// 2^26 packets (about a minute at 1 Mpps) before exhaustion, enough
	// for the daemon to run a CHILD_SA rekey.
	SoftSeq32 = maxSeq32 - 1<<26
	// SoftSeq64 is the same threshold with ESN; unreachable in practice.
	SoftSeq64 = maxSeq64 - 1<<32
)

// ParseSPI returns the SPI of an ESP packet (SPI..ICV). It reports false for
// packets shorter than the ESP header and for SPI 0, which is reserved
// (RFC 4303, Section 2.1) and, on UDP port 4500, is the non-ESP marker that
// introduces IKE messages (RFC 3948, Section 2.2).
func ParseSPI(pkt []byte) (ipsec.SPI, bool) {
	if len(pkt) < headerLen {
		return 0, false
	}
	spi := binary.BigEndian.Uint32(pkt)
	if spi == 0 {
		return 0, false
	}
	return ipsec.SPI(spi), true
}
