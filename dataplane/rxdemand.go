package dataplane

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgwproject/cgw/dataplane/udp"
)

// A socket reader offers the kernel one 64 KiB buffer per message of its
// batch (a UDP GRO superpacket may fill one). Holding a full batch of 128
// while it waits is 8 MiB per socket, and cgwd has up to six sockets:
// most of an idle cgwd's heap (docs/scale.md). rxDemand sizes the batch
// by demand instead. A quiet reader waits with one buffer; a reader that
// filled every buffer it offered doubles its batch for the next read, up
// to the full batch. A reader whose reads follow each other within
// quietGap keeps what it has, so at full rate it reads full batches as
// before, and buffers are never smaller.
type rxDemand struct {
	want, max int
	last      int64 // time of the previous read, Unix ns
	deadline  int64 // the socket's read deadline, Unix ns; 0 = none
}

// arm gives a busy reader's next read a deadline busyHold after its last
// read (moved only every busyHold/2, not at every read), so that a reader
// whose traffic stopped does not keep its batch of buffers until the next
// datagram; a quiet reader waits without one. A read that times out is
// passed to timedOut.
func (d *rxDemand) arm(c *udp.Conn) {
	if d.want == 1 {
		if d.deadline != 0 && c.SetReadDeadline(time.Time{}) == nil {
			d.deadline = 0
		}
		return
	}
	if d.deadline-d.last < int64(busyHold/2) && c.SetReadDeadline(time.Unix(0, d.last+int64(busyHold))) == nil {
		d.deadline = d.last + int64(busyHold)
	}
}

// timedOut records a read that reached the deadline of arm: the reader is
// quiet. It returns the batch it had, for rxResized.
func (d *rxDemand) timedOut() (prev int) {
	prev, d.want = d.want, 1
	return prev
}

func newRxDemand(max int) rxDemand { return rxDemand{want: 1, max: max} }

// read records a read of got messages at now (Unix ns) and returns the
// batch to offer next.
func (d *rxDemand) read(got int, now int64) int {
	switch {
	case now-d.last > int64(quietGap):
		d.want = 1
	case got >= d.want:
		d.want = min(2*d.want, d.max)
	}
	d.last = now
	return d.want
}

// rxResized is called by a socket reader whose batch went from prev to
// want buffers: it releases the buffers beyond want (extra), and counts
// busy readers. When the last busy reader turns quiet, the free list is
// trimmed a little later (trimAfter): buffers a burst left there are given
// back to the OS rather than kept for good.
func (e *Engine) rxResized(prev, want int, extra []*elem) {
	if want >= prev {
		if prev == 1 && want > 1 {
			e.rxTrim.busy.Add(1)
		}
		return
	}
	for i, el := range extra {
		if el != nil {
			e.pools.putElem(el)
			extra[i] = nil
		}
	}
	if want == 1 && e.rxTrim.busy.Add(-1) == 0 {
		e.rxTrim.soon(e.pools)
	}
}

// trimAfter is how long every socket reader must have been quiet before
// the receive buffers in the free list are dropped.
const trimAfter = 10 * time.Second

// rxTrimmer drops the free list's receive buffers once traffic stops.
type rxTrimmer struct {
	busy  atomic.Int32  // socket readers with more than one buffer
	after time.Duration // 0 = trimAfter (tests set less)
	mu    sync.Mutex
	t     *time.Timer
	armed bool // t is pending
}

func (r *rxTrimmer) soon(p *pools) {
	r.mu.Lock()
	defer r.mu.Unlock()
	after := r.after
	if after == 0 {
		after = trimAfter
	}
	// Armed once, not pushed back by every quiet spell: with hundreds of
	// tunnels on one socket, two datagrams close together make a reader
	// busy for a moment every few seconds, and a timer reset each time
	// would never fire.
	if r.armed {
		return
	}
	r.armed = true
	if r.t != nil {
		r.t.Reset(after)
		return
	}
	r.t = time.AfterFunc(after, func() {
		r.mu.Lock()
		r.armed = false
		r.mu.Unlock()
		if r.busy.Load() > 0 {
			return // traffic came back; the next quiet spell trims
		}
		if p.trimElems() >= freeOSAfter {
			// Dropped buffers are only garbage until the next GC, and the
			// runtime keeps freed heap for minutes: an idle daemon would
			// keep the burst's RSS. A few buffers are not worth a forced
			// collection.
			debug.FreeOSMemory()
		}
	})
}

// freeOSAfter is the number of dropped receive buffers (4 MiB) that makes
// the trim hand freed memory back to the OS at once.
const freeOSAfter = 64

// trimElems empties the free list of receive buffers and returns how many
// it dropped. The next burst allocates afresh.
func (p *pools) trimElems() int {
	n := 0
	for {
		select {
		case <-p.elems:
			n++
		default:
			return n
		}
	}
}

// stopTrim cancels a pending trim (Close).
func (r *rxTrimmer) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.t != nil {
		r.t.Stop()
	}
}
