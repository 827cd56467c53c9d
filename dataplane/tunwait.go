package dataplane

import (
	"os"
	"syscall"
	"time"

	"github.com/cgwproject/cgw/dataplane/tun"
)

// A TUN reader holds batchSize buffers while it waits in Read: 218 KB per
// tunnel, most of cgwd's memory per tunnel with hundreds of quiet tunnels
// (docs/scale.md). A reader whose device is quiet hands its buffers back
// and waits for the device to become readable without them; one that
// reads often keeps them, so a busy tunnel pays nothing.

// quietGap is the time between two reads above which a reader counts its
// device as quiet. Below 1000 reads a second, the extra poll(2) per read
// of the quiet wait costs nothing that matters.
const quietGap = time.Millisecond

// tunWaiter waits for a TUN device to become readable. nil when the
// device has no file descriptor (a test's channel device).
type tunWaiter struct {
	f        *os.File
	rc       syscall.RawConn
	deadline time.Time // the device's read deadline set by hold; zero = none
}

func newTUNWaiter(dev any) *tunWaiter {
	f, ok := dev.(interface{ File() *os.File })
	if !ok || f.File() == nil {
		return nil
	}
	rc, err := f.File().SyscallConn()
	if err != nil {
		return nil
	}
	return &tunWaiter{f: f.File(), rc: rc}
}

// wait returns when the device has a packet to read, or is closed or
// failing (the Read that follows reports it). The readiness is checked
// with poll(2) and no buffer: the runtime's poller waits when it is not.
// A deadline hold set is cleared first, or the wait would end at it.
func (w *tunWaiter) wait() {
	if !w.deadline.IsZero() && w.f.SetReadDeadline(time.Time{}) == nil {
		w.deadline = time.Time{}
	}
	w.rc.Read(tun.PollReadable)
}

// busyHold bounds how long a busy reader (its last two reads within
// quietGap) waits for the next packet with its buffers: a tunnel that
// sent a short burst and then went quiet would otherwise hold them until
// its next packet, seconds later.
const busyHold = 100 * time.Millisecond

// hold gives a busy reader's next Read a deadline busyHold after its
// last read, at which the Read returns os.ErrDeadlineExceeded and the
// reader turns quiet. The deadline is moved only every busyHold/2, not
// at every read, so a busy reader waits 50 to 100 ms for its next packet
// and pays no system call per read for it (a deadline is a runtime
// timer). Only the reader reads the device, so the deadline is its own.
func (w *tunWaiter) hold(last time.Time) {
	if w.deadline.Sub(last) >= busyHold/2 {
		return
	}
	if d := last.Add(busyHold); w.f.SetReadDeadline(d) == nil {
		w.deadline = d
	}
}

// releaseTxElems gives a quiet reader's buffers back to the pool.
func (t *tunnel) releaseTxElems(elems []*elem) {
	for i, el := range elems {
		if el != nil {
			t.e.pools.putElem(el)
			elems[i] = nil
		}
	}
}
