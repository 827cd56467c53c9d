package traffic

import (
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mbatch is the kernel-facing state of one sendmmsg/recvmmsg call on a
// connected (send) or bound (receive) socket: no addresses, no control
// data, one buffer per message.
type mbatch struct {
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	bufs [][]byte

	// in/out of the last call
	n     int
	flags int
	got   int
	err   error
}

func newBatch(n, bufSize int) *mbatch {
	b := &mbatch{hdrs: make([]unix.Mmsghdr, n), iovs: make([]unix.Iovec, n), bufs: make([][]byte, n)}
	mem := make([]byte, n*bufSize)
	for i := range b.bufs {
		b.bufs[i] = mem[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
		b.iovs[i].Base = &b.bufs[i][0]
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	return b
}

// setLen sets the length of message i (send) or its buffer (receive).
func (b *mbatch) setLen(i, n int) { b.iovs[i].SetLen(n) }

func (b *mbatch) call(trap uintptr) func(fd uintptr) bool {
	return func(fd uintptr) bool {
		r, _, errno := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.n), uintptr(b.flags), 0, 0)
		switch errno {
		case unix.EAGAIN, unix.EINTR:
			return false
		case 0:
			b.got, b.err = int(r), nil
		default:
			b.got, b.err = 0, errno
		}
		return true
	}
}

// batchConn wraps a UDP socket for batched I/O through the Go poller.
type batchConn struct {
	rc   syscall.RawConn
	b    *mbatch
	send func(fd uintptr) bool
	recv func(fd uintptr) bool
}

func newBatchConn(c *net.UDPConn, n, bufSize int) (*batchConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := newBatch(n, bufSize)
	return &batchConn{rc: rc, b: b, send: b.call(unix.SYS_SENDMMSG), recv: b.call(unix.SYS_RECVMMSG)}, nil
}

// sendmmsg sends messages [0, n) and returns how many left; it retries
// a partial send until all are gone or an error occurs.
func (c *batchConn) sendmmsg(n int) (int, error) {
	done := 0
	for done < n {
		c.b.n, c.b.flags = n-done, unix.MSG_DONTWAIT
		hdrs := c.b.hdrs
		c.b.hdrs = hdrs[done:]
		err := c.rc.Write(c.send)
		c.b.hdrs = hdrs
		if err != nil {
			return done, err
		}
		if c.b.err != nil {
			return done, fmt.Errorf("sendmmsg: %w", c.b.err)
		}
		done += c.b.got
	}
	return done, nil
}

// recvmmsg blocks until at least one datagram is queued and reads up to
// len(bufs) of them; message i is bufs[i][:hdrs[i].Len] unless truncated.
func (c *batchConn) recvmmsg() (int, error) {
	for i := range c.b.hdrs {
		c.b.setLen(i, len(c.b.bufs[i]))
		c.b.hdrs[i].Hdr.Flags = 0
	}
	c.b.n, c.b.flags = len(c.b.hdrs), unix.MSG_DONTWAIT
	if err := c.rc.Read(c.recv); err != nil {
		return 0, err
	}
	if c.b.err != nil {
		return 0, fmt.Errorf("recvmmsg: %w", c.b.err)
	}
	return c.b.got, nil
}

// setBuffer raises a socket buffer to size bytes, past the sysctl limit
// when running as root (SO_*BUFFORCE), else as far as the limit allows.
func setBuffer(c *net.UDPConn, force, plain int, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, force, size); serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, plain, size)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// maxGSO bounds the datagrams of one GSO send (the kernel's UDP_MAX_SEGMENTS
// is 128).
const maxGSO = 64

// setGSO makes every send on c of more than size bytes leave as datagrams
// of size bytes (UDP_SEGMENT, Linux 4.18).
func setGSO(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, size)
	}); err != nil {
		return err
	}
	return serr
}
