package traffic

import (
	"math"
	"time"
)

// Pacer is a token bucket that releases packets in batches: tokens accrue
// at Rate per second, and Take hands out a batch once at least Burst
// tokens are ready, so the sender makes one system call per batch and
// sleeps between batches instead of per packet. If the sender falls
// behind (descheduled, or the socket blocked) by more than Depth tokens,
// the excess is forfeited rather than sent later as a line-rate burst;
// Skipped counts it, so the offered rate actually achieved is
// Issued/elapsed, never more than Rate.
type Pacer struct {
	Rate  float64 // packets per second, > 0
	Burst int     // smallest batch released, >= 1
	Depth int     // largest backlog kept, >= Burst

	start   time.Time
	issued  uint64
	skipped uint64
}

// NewPacer returns a pacer for rate packets per second that releases
// batches of about rate*interval packets (at least 1, at most maxBatch),
// keeping at most 2 ms or four batches of backlog, whichever is larger.
func NewPacer(rate float64, interval time.Duration, maxBatch int, start time.Time) *Pacer {
	burst := int(math.Round(rate * interval.Seconds()))
	burst = min(max(burst, 1), maxBatch)
	depth := max(4*burst, int(rate*0.002), maxBatch)
	return &Pacer{Rate: rate, Burst: burst, Depth: depth, start: start}
}

// Take returns how many packets (at most limit) may be sent at now. When it
// returns 0, wait is how long until the next batch is due.
func (p *Pacer) Take(now time.Time, limit int) (n int, wait time.Duration) {
	el := now.Sub(p.start)
	if el < 0 {
		el = 0
	}
	// The small epsilon absorbs float rounding (0.0003 s * 100000 pps
	// must be 30 packets, not 29.999…).
	due := uint64(float64(el)*p.Rate/1e9 + 1e-6)
	backlog := int64(due) - int64(p.issued+p.skipped)
	if backlog > int64(p.Depth) {
		p.skipped += uint64(backlog - int64(p.Depth))
		backlog = int64(p.Depth)
	}
	if backlog < int64(p.Burst) {
		next := time.Duration(math.Ceil(float64(p.issued+p.skipped+uint64(p.Burst)) / p.Rate * 1e9))
		return 0, max(next-el, time.Nanosecond)
	}
	n = int(min(backlog, int64(limit)))
	p.issued += uint64(n)
	return n, 0
}

// Issued is the number of packets handed out so far.
func (p *Pacer) Issued() uint64 { return p.issued }

// Skipped is the number of packets forfeited because the sender was late.
func (p *Pacer) Skipped() uint64 { return p.skipped }

// Unissue returns n packets that were taken but could not be sent, so
// that Issued counts only packets that left.
func (p *Pacer) Unissue(n int) { p.issued -= uint64(n); p.skipped += uint64(n) }
