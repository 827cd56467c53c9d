package dataplane

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	f  *os.File
	rc syscall.RawConn
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
func (w *tunWaiter) wait() {
	w.rc.Read(readable)
}

// busyHold is how long a busy reader (its last two reads within
// quietGap) waits for the next packet with its buffers: a tunnel that
// sent a short burst and then went quiet would otherwise hold them until
// its next packet, seconds later.
const busyHold = 100 * time.Millisecond

// waitFor waits up to d for the device to become readable and reports
// whether it did (or is closed or failing: the Read that follows reports
// it). Only the reader reads the device, so the read deadline it sets for
// the wait is its own.
func (w *tunWaiter) waitFor(d time.Duration) bool {
	ready := false
	if w.rc.Control(func(fd uintptr) { ready = readable(fd) }) != nil || ready {
		return true
	}
	if w.f.SetReadDeadline(time.Now().Add(d)) != nil {
		return true
	}
	err := w.rc.Read(readable)
	_ = w.f.SetReadDeadline(time.Time{})
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// readable polls fd without waiting.
func readable(fd uintptr) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, 0)
	return err != nil || n > 0
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
