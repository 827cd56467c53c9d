// Package replay implements the ESP anti-replay window of RFC 4303, Section
// 3.4.3, with the bitmap layout of RFC 6479 ("IPsec Anti-Replay Algorithm
// without Bit Shifting").
//
// A Window tracks the highest sequence number seen (the "right edge") and a
// ring of 64-bit blocks, one bit per sequence number. Advancing the window
// clears whole blocks instead of shifting the bitmap, so Update is O(1)
// amortized and never moves memory. Sequence numbers are full 64-bit values:
// callers using 32-bit sequence numbers pass them zero-extended, callers
// using Extended Sequence Numbers pass the reconstructed 64-bit value.
//
// The zero value is a ready window of DefaultSize packets; it allocates its
// bitmap on the first Update. A Window is not safe for concurrent use;
// callers serialize access (esp.Inbound holds a lock around it). A Window
// never allocates after Init.
package replay

const (
	// DefaultSize is the window size of the zero value and of Init(0),
	// matching the AWS Site-to-Site VPN default ReplayWindowSize.
	DefaultSize = 1024
	// MinSize and MaxSize bound the configurable window; Init clamps to them.
	MinSize = 64
	MaxSize = 4096

	blockBits  = 64
	blockShift = 6
)

// Window is an RFC 6479 anti-replay window. See the package documentation
// for its contract.
type Window struct {
	top    uint64   // highest sequence number accepted by Update; 0 = none yet
	size   uint64   // window size in packets, a multiple of 64
	mask   uint64   // len(bitmap)-1; len(bitmap) is a power of two
	bitmap []uint64 // ring of blocks; bit (seq & 63) of block (seq>>6)&mask
}

// Init resets the window and sets its size in packets. size <= 0 selects
// DefaultSize; other values are clamped to [MinSize, MaxSize] and rounded up
// to a multiple of 64. The bitmap holds one extra block beyond the window
// (RFC 6479, Section 2) so that advancing the right edge never clears bits
// that are still inside the window.
func (w *Window) Init(size int) {
	switch {
	case size <= 0:
		size = DefaultSize
	case size < MinSize:
		size = MinSize
	case size > MaxSize:
		size = MaxSize
	}
	size = (size + blockBits - 1) &^ (blockBits - 1)
	blocks := size/blockBits + 1
	n := 1
	for n < blocks {
		n <<= 1
	}
	w.top = 0
	w.size = uint64(size)
	w.mask = uint64(n - 1)
	w.bitmap = make([]uint64, n)
}

func (w *Window) lazyInit() {
	if w.bitmap == nil {
		w.Init(DefaultSize)
	}
}

// Size returns the window size in packets (after rounding).
func (w *Window) Size() int {
	if w.size == 0 {
		return DefaultSize
	}
	return int(w.size)
}

// Top returns the highest sequence number accepted so far, or 0 if none.
func (w *Window) Top() uint64 { return w.top }

// Check reports whether seq would be accepted by Update: it is not zero,
// not older than the window, and not already seen. Check does not modify
// the window; use it to drop replays before spending time on crypto
// (RFC 4303, Section 3.4.3).
func (w *Window) Check(seq uint64) bool {
	if seq == 0 {
		// Sequence number 0 is never sent (RFC 4303, Section 3.3.3: the
		// first packet carries 1).
		return false
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= uint64(w.Size()) {
		return false // left of the window: too old
	}
	if w.bitmap == nil {
		// Zero value: nothing has been recorded yet, and top == 0 means
		// every non-zero seq took the branch above.
		return true
	}
	return w.bitmap[(seq>>blockShift)&w.mask]&(1<<(seq&(blockBits-1))) == 0
}

// Update records seq as received after its integrity check passed
// (RFC 4303, Section 3.4.3: the window is updated only for authenticated
// packets). It returns false, leaving the window unchanged, if seq is a
// replay or too old.
func (w *Window) Update(seq uint64) bool {
	if seq == 0 {
		return false
	}
	w.lazyInit()
	if seq > w.top {
		// Advance the right edge: clear every block between the old top
		// block and the new one (RFC 6479, Section 2). After a jump of
		// more than the whole ring, every block is cleared once.
		cur, next := w.top>>blockShift, seq>>blockShift
		diff := next - cur
		if diff > w.mask+1 {
			diff = w.mask + 1
		}
		for i := uint64(1); i <= diff; i++ {
			w.bitmap[(cur+i)&w.mask] = 0
		}
		w.top = seq
	} else if w.top-seq >= w.size {
		return false
	}
	b := &w.bitmap[(seq>>blockShift)&w.mask]
	bit := uint64(1) << (seq & (blockBits - 1))
	if *b&bit != 0 {
		return false
	}
	*b |= bit
	return true
}
