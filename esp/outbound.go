package esp

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/cgwproject/cgw/ipsec"
)

// Outbound seals packets for one outbound ESP SA. Create it with
// NewOutbound; it is safe for concurrent use.
type Outbound struct {
	spi     ipsec.SPI
	t       *transform
	seq     atomic.Uint64 // last reserved sequence number; 0 = none yet
	maxSeq  uint64
	softSeq uint64
}

// NewOutbound builds the sealing state for p. p.Dir must be ipsec.Outbound
// or zero. The keys are copied where kept; p may be reused by the caller.
func NewOutbound(p ipsec.SAParams) (*Outbound, error) {
	if p.Dir != 0 && p.Dir != ipsec.Outbound {
		return nil, fmt.Errorf("esp: SA %s: NewOutbound called with direction %s; use NewInbound", p.SPI, p.Dir)
	}
	if p.SPI == 0 {
		return nil, fmt.Errorf("esp: SPI 0 is reserved (RFC 4303, Section 2.1); allocate a non-zero SPI")
	}
	t, err := newTransform(p, true)
	if err != nil {
		return nil, err
	}
	o := &Outbound{spi: p.SPI, t: t, maxSeq: maxSeq32, softSeq: SoftSeq32}
	if p.Alg.ESN {
		o.maxSeq, o.softSeq = maxSeq64, SoftSeq64
	}
	return o, nil
}

// String names the SA without revealing key material.
func (o *Outbound) String() string { return "esp.Outbound(" + o.spi.String() + ")" }

// SPI returns the SA's SPI, which the peer chose.
func (o *Outbound) SPI() ipsec.SPI { return o.spi }

// HeadRoom is the number of bytes Seal writes before the inner packet:
// the ESP header (SPI and sequence number, 8 octets) and the IV.
func (o *Outbound) HeadRoom() int { return headerLen + o.t.ivLen }

// TailRoom is the maximum number of bytes Seal writes after the inner
// packet: padding (up to alignment-1), Pad Length, Next Header and the ICV.
func (o *Outbound) TailRoom() int { return o.t.align - 1 + 2 + o.t.icvLen }

// Overhead returns the exact number of bytes an inner packet of n bytes
// grows by when sealed: HeadRoom plus padding, trailer and ICV.
func (o *Outbound) Overhead(n int) int {
	return o.HeadRoom() + o.padLen(n) + 2 + o.t.icvLen
}

// MaxInner returns the largest inner packet that seals into at most limit
// bytes of ESP (SPI..ICV), or 0 if none fits. For a path MTU m, the inner
// MTU is MaxInner(m - 20) over IPv4 and MaxInner(m - 28) with UDP
// encapsulation (RFC 3948).
func (o *Outbound) MaxInner(limit int) int {
	a := o.t.align
	ct := (limit - o.HeadRoom() - o.t.icvLen) / a * a
	if ct-2 < 1 {
		return 0
	}
	return ct - 2
}

// padLen is the RFC 4303, Section 2.4 padding for an n-byte payload: the
// smallest count making n + pad + 2 a multiple of the cipher's alignment.
func (o *Outbound) padLen(n int) int {
	a := o.t.align
	return (a - (n+2)%a) % a
}

// NextSeq reserves the next sequence number (RFC 4303, Section 3.3.3): the
// first call returns 1. soft is true once seq reaches the rekey threshold
// (SoftSeq32, or SoftSeq64 with ESN), and stays true; the caller raises
// its soft-expire event once. When the space is used up (2^32-1 without
// ESN, 2^64-1 with ESN) it returns ErrSeqExhausted, and keeps doing so.
func (o *Outbound) NextSeq() (seq uint64, soft bool, err error) {
	for {
		cur := o.seq.Load()
		if cur >= o.maxSeq {
			return 0, true, ErrSeqExhausted
		}
		if o.seq.CompareAndSwap(cur, cur+1) {
			return cur + 1, cur+1 >= o.softSeq, nil
		}
	}
}

// Seal encapsulates the inner IPv4 or IPv6 packet buf[off:off+n] in place,
// using sequence number seq from NextSeq. Each seq must be sealed at most
// once: with AES-GCM and ChaCha20-Poly1305 the IV is the sequence number
// (RFC 4106, Section 3.1), and sealing two different packets under one IV
// destroys confidentiality and integrity of the SA. A seq that is 0 or
// beyond the SA's space fails with ErrSeqExhausted. The ESP packet (SPI..ICV) ends up
// in buf[start:end] with start = off-HeadRoom(); end <= off+n+TailRoom().
// The Next Header field is 4 or 41 from the inner packet's version
// (RFC 4303, Section 2.6; tunnel mode). Seal is safe for concurrent use on
// distinct buffers and does not allocate.
func (o *Outbound) Seal(buf []byte, off, n int, seq uint64) (start, end int, err error) {
	t := o.t
	start = off - o.HeadRoom()
	if start < 0 || n <= 0 || off+n > len(buf) || off+n < off {
		return 0, 0, ErrBufferTooSmall
	}
	var nextHdr byte
	switch buf[off] >> 4 {
	case 4:
		nextHdr = NextHeaderIPv4
	case 6:
		nextHdr = NextHeaderIPv6
	default:
		return 0, 0, ErrMalformed
	}
	if seq == 0 || seq > o.maxSeq {
		return 0, 0, ErrSeqExhausted
	}
	pad := o.padLen(n)
	ctEnd := off + n + pad + 2 // end of the encrypted part
	end = ctEnd + t.icvLen
	if end > len(buf) {
		return 0, 0, ErrBufferTooSmall
	}
	pkt := buf[start:end]
	ivEnd := headerLen + t.ivLen

	// RFC 4303, Section 2: SPI, low-order 32 bits of the sequence number.
	binary.BigEndian.PutUint32(pkt[0:4], uint32(o.spi))
	binary.BigEndian.PutUint32(pkt[4:8], uint32(seq))
	// RFC 4303, Section 2.4: default monotonic padding 1, 2, 3, ...
	tr := buf[off+n : ctEnd]
	for i := 0; i < pad; i++ {
		tr[i] = byte(i + 1)
	}
	tr[pad] = byte(pad)
	tr[pad+1] = nextHdr

	s := t.pool.Get().(*scratch)
	if t.aead != nil {
		// RFC 4106, Section 3.1: the IV only has to be unique per key;
		// the 64-bit sequence number is (RFC 7634, Section 2, likewise).
		binary.BigEndian.PutUint64(pkt[headerLen:ivEnd], seq)
		aad := t.aeadParams(s, pkt, seq)
		pt := pkt[ivEnd : len(pkt)-t.icvLen]
		t.aead.Seal(pt[:0], s.nonce[:], pt, aad)
	} else {
		iv := pkt[headerLen:ivEnd]
		t.cbcIV(s, iv, seq)
		ct := pkt[ivEnd : len(pkt)-t.icvLen]
		s.enc.SetIV(iv)
		s.enc.CryptBlocks(ct, ct)
		// RFC 4303, Section 3.3.4: encrypt, then compute the ICV over
		// SPI..Next Header (plus seq_hi with ESN).
		copy(pkt[len(pkt)-t.icvLen:], t.icv(s, pkt[:len(pkt)-t.icvLen], seq))
	}
	t.pool.Put(s)
	return start, end, nil
}

// Wipe zeroes the SA's key material kept by this package (best effort;
// see transform.wipe). Call it once no packet can reach the SA any more.
func (o *Outbound) Wipe() { o.t.wipe() }
