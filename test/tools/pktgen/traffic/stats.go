package traffic

import (
	"math"
	"math/bits"
)

// flowStats is the receive accounting of one flow.
type flowStats struct {
	seen     []uint64 // bitmap of received sequence numbers
	next     uint64   // highest sequence number received + 1
	received uint64   // distinct sequence numbers received
	dup      uint64
	reorder  uint64 // arrived after a higher sequence number (RFC 4737 "reordered")
}

// add records sequence number seq and reports whether it was new.
func (f *flowStats) add(seq uint64) bool {
	w := seq / 64
	if w >= uint64(len(f.seen)) {
		n := max(2*len(f.seen), int(w)+1, 1024)
		s := make([]uint64, n)
		copy(s, f.seen)
		f.seen = s
	}
	bit := uint64(1) << (seq % 64)
	if f.seen[w]&bit != 0 {
		f.dup++
		return false
	}
	f.seen[w] |= bit
	f.received++
	if seq < f.next {
		f.reorder++
	} else {
		f.next = seq + 1
	}
	return true
}

// Histogram counts non-negative values (nanoseconds) in log-linear
// buckets: exact below 64, then 64 buckets per power of two, so any
// quantile is within 1.6 % of the true value.
type Histogram struct {
	counts [64 * 42]uint64
	n      uint64
	max    uint64
}

const subBuckets = 64

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - 7 // v>>e is in [64, 128)
	return (e+1)*subBuckets + int(v>>e) - subBuckets
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return (m+1)<<e - 1
}

// Add records v.
func (h *Histogram) Add(v uint64) {
	i := bucketOf(v)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, v)
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the value below which a fraction q (0..1) of the
// recorded values lie, rounded up to its bucket's upper bound (and never
// above the maximum recorded). It is 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var c uint64
	for i, k := range h.counts {
		c += k
		if c >= rank {
			return min(bucketHigh(i), h.max)
		}
	}
	return h.max
}

// Max is the largest value recorded.
func (h *Histogram) Max() uint64 { return h.max }
