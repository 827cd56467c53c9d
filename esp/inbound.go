package esp

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cgwproject/cgw/esp/replay"
	"github.com/cgwproject/cgw/ipsec"
)

// Inbound opens packets of one inbound ESP SA. Create it with NewInbound.
// Open is safe for concurrent use; Accept is internally locked.
type Inbound struct {
	spi        ipsec.SPI
	t          *transform
	antiReplay bool // p.ReplayWindow > 0

	// mu guards the window: Open's pre-check takes the read lock, so
	// concurrent Opens do not serialize; Accept takes the write lock.
	mu struct {
		sync.RWMutex
		// win is the anti-replay window. With anti-replay disabled it is
		// still kept (at the default size) to track the highest sequence
		// number, which ESN inference needs.
		win replay.Window
	}
}

// NewInbound builds the opening state for p. p.Dir must be ipsec.Inbound or
// zero. p.ReplayWindow is the anti-replay window in packets (clamped to
// 64..4096 and rounded up to a multiple of 64); 0 disables anti-replay
// checking (RFC 4303, Section 3.4.3 allows the receiver to disable it).
func NewInbound(p ipsec.SAParams) (*Inbound, error) {
	if p.Dir != 0 && p.Dir != ipsec.Inbound {
		return nil, fmt.Errorf("esp: SA %s: NewInbound called with direction %s; use NewOutbound", p.SPI, p.Dir)
	}
	if p.SPI == 0 {
		return nil, fmt.Errorf("esp: SPI 0 is reserved (RFC 4303, Section 2.1); allocate a non-zero SPI")
	}
	if p.ReplayWindow < 0 {
		return nil, fmt.Errorf("esp: SA %s: negative replay window %d; use 0 (off) or 64..4096", p.SPI, p.ReplayWindow)
	}
	t, err := newTransform(p, false)
	if err != nil {
		return nil, err
	}
	in := &Inbound{spi: p.SPI, t: t, antiReplay: p.ReplayWindow > 0}
	in.mu.win.Init(p.ReplayWindow)
	return in, nil
}

// String names the SA without revealing key material.
func (in *Inbound) String() string { return "esp.Inbound(" + in.spi.String() + ")" }

// SPI returns the SA's SPI, which we allocated.
func (in *Inbound) SPI() ipsec.SPI { return in.spi }

// ReplayWindow returns the effective anti-replay window size in packets,
// or 0 when anti-replay is disabled.
func (in *Inbound) ReplayWindow() int {
	if !in.antiReplay {
		return 0
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.mu.win.Size()
}

// Open verifies and decrypts the ESP packet pkt (SPI..ICV) in place. inner
// aliases pkt and is the inner packet with padding and trailer removed;
// nextHdr is the trailer's Next Header (4 or 41 in tunnel mode; other
// values are returned for the caller to drop) and seq the full sequence
// number (with ESN, its high half inferred per RFC 4303, Appendix A2; the
// resynchronization of Appendix A3 is not attempted, a packet more than
// 2^32 ahead fails with ErrAuth). inner may end with TFC padding
// (RFC 4303, Section 2.7): the caller trims it to the inner IP header's
// length.
//
// Open checks the anti-replay window without updating it; once the caller
// keeps the packet, it must call Accept(seq). Errors: ErrMalformed,
// ErrReplay (seq is set), ErrAuth, ErrPadding, and ErrDummy for authentic
// TFC dummy packets (seq is set, so the caller may still Accept it). On
// ErrMalformed and ErrReplay pkt is unchanged; after ErrAuth its encrypted
// part may have been zeroed (crypto/cipher AEADs clear their output on
// failure); on ErrPadding and ErrDummy it holds plaintext. Open is safe for concurrent use and does not allocate.
func (in *Inbound) Open(pkt []byte) (inner []byte, nextHdr byte, seq uint64, err error) {
	t := in.t
	ivEnd := headerLen + t.ivLen
	ctLen := len(pkt) - ivEnd - t.icvLen
	// The encrypted part holds at least Pad Length and Next Header, and a
	// block cipher's ciphertext is whole blocks (RFC 4303, Section 2.4).
	if ctLen < 2 || (t.aead == nil && ctLen%t.align != 0) {
		return nil, 0, 0, ErrMalformed
	}
	if binary.BigEndian.Uint32(pkt[0:4]) != uint32(in.spi) {
		return nil, 0, 0, ErrMalformed
	}

	seq, ok := in.precheck(binary.BigEndian.Uint32(pkt[4:8]))
	if !ok {
		return nil, 0, seq, ErrReplay
	}

	s := t.pool.Get().(*scratch)
	ct := pkt[ivEnd : ivEnd+ctLen]
	if t.aead != nil {
		aad := t.aeadParams(s, pkt, seq)
		_, err = t.aead.Open(ct[:0], s.nonce[:], pkt[ivEnd:], aad)
	} else if !t.verifyICV(s, pkt, seq) {
		// RFC 4303, Section 3.4.4: the ICV is verified before decryption.
		err = ErrAuth
	} else {
		s.dec.SetIV(pkt[headerLen:ivEnd])
		s.dec.CryptBlocks(ct, ct)
	}
	t.pool.Put(s)
	if err != nil {
		return nil, 0, 0, ErrAuth
	}

	// Trailer (RFC 4303, Section 2.4-2.6): ... Padding | Pad Length | Next Header.
	padLen := int(ct[ctLen-2])
	nextHdr = ct[ctLen-1]
	if padLen+2 > ctLen {
		return nil, nextHdr, seq, ErrPadding
	}
	payloadLen := ctLen - 2 - padLen
	for i, b := range ct[payloadLen : ctLen-2] {
		if b != byte(i+1) {
			return nil, nextHdr, seq, ErrPadding
		}
	}
	if nextHdr == NextHeaderDummy {
		return nil, nextHdr, seq, ErrDummy
	}
	return ct[:payloadLen], nextHdr, seq, nil
}

// precheck reconstructs the full sequence number from its low 32 bits and
// checks it against the anti-replay window without updating it. ok is false
// if the packet must be dropped as a replay.
func (in *Inbound) precheck(lo uint32) (seq uint64, ok bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	w := &in.mu.win
	seq = uint64(lo)
	if in.t.esn {
		seq = inferESN(w.Top(), uint64(w.Size()), lo)
	}
	if seq == 0 {
		// Even without anti-replay, sequence number 0 is never sent
		// (RFC 4303, Section 3.3.3); report it as a replay.
		return 0, false
	}
	return seq, !in.antiReplay || w.Check(seq)
}

// inferESN returns the 64-bit sequence number whose low half is lo, given
// the highest sequence number top seen and the window size w
// (RFC 4303, Appendix A2.2).
func inferESN(top, w uint64, lo uint32) uint64 {
	th, tl := top>>32, uint64(uint32(top))
	seql := uint64(lo)
	var hi uint64
	if tl >= w-1 {
		// Case A: the window lies within one sequence number subspace.
		hi = th
		if seql < tl-w+1 {
			hi = th + 1
		}
	} else {
		// Case B: the window spans two subspaces.
		hi = th
		if seql >= (tl-w+1)&0xffffffff && th > 0 {
			hi = th - 1
		}
	}
	return hi<<32 | seql
}

// Accept records seq, as returned by a successful Open, in the anti-replay
// window (RFC 4303, Section 3.4.3: only after the ICV verified). It returns
// false if seq is a replay, which can happen when two copies of a packet
// were opened concurrently; the caller must then drop the packet. With
// anti-replay disabled it only tracks the highest sequence number and
// returns true.
func (in *Inbound) Accept(seq uint64) bool {
	in.mu.Lock()
	ok := in.mu.win.Update(seq)
	in.mu.Unlock()
	return ok || (!in.antiReplay && seq != 0)
}

// Wipe zeroes the SA's key material kept by this package (best effort;
// see transform.wipe). Call it once no packet can reach the SA any more.
func (in *Inbound) Wipe() { in.t.wipe() }
