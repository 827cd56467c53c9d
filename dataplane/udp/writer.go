//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writer sends batches of datagrams on a Conn. Each sending goroutine owns
// its Writer; it is not safe for concurrent use.
type Writer struct {
	c *Conn
	b batch
	// msgIov[i] is the number of iovecs of message i.
	msgs   int
	start  int
	sent   int
	gsoMax int // segment sizes >= gsoMax are not coalesced (learned from EINVAL); 0 = no limit
}

// NewWriter returns a Writer for up to IdealBatch datagrams per Send.
// Its batch state starts small and grows to the largest Send it was
// given: every tunnel has a Writer, and most tunnels send one packet at a
// time (a full batch of state is 30 KB).
func (c *Conn) NewWriter() *Writer {
	w := &Writer{c: c}
	w.b.init(c, writerStart)
	w.b.fn = w.sendmmsg
	return w
}

// writerStart is the batch a new Writer has room for.
const writerStart = 4

// fit makes room for a Send of n packets: a power of two, at most
// IdealBatch. build lays out every message afresh, so nothing is kept.
func (w *Writer) fit(n int) {
	if n <= len(w.b.hdrs) {
		return
	}
	size := len(w.b.hdrs)
	for size < n {
		size *= 2
	}
	w.b.init(w.c, min(size, IdealBatch))
}

// Send transmits pkts, in order, to remote from local (the zero Addr lets
// the kernel choose the source address). With GSO, runs of equal-sized
// packets (the last of a run may be shorter) leave in one system call and
// one kernel traversal, segmented by the kernel or the NIC. At most
// IdealBatch packets may be passed. The packets are not retained.
func (w *Writer) Send(pkts [][]byte, local netip.Addr, remote netip.AddrPort) error {
	if len(pkts) > IdealBatch {
		return fmt.Errorf("udp: Send of %d packets: at most %d per call", len(pkts), IdealBatch)
	}
	if len(pkts) == 0 {
		return nil
	}
	w.fit(len(pkts))
	if remote.Addr().Is4() || remote.Addr().Is4In6() {
		if w.c.v6 {
			return ErrFamily
		}
	} else if !w.c.v6 {
		return ErrFamily
	}
	if local.IsValid() && local.Is4() == w.c.v6 && !local.Is4In6() {
		local = netip.Addr{} // wrong family: let the kernel choose
	}
	if w.c.raw {
		remote = netip.AddrPortFrom(remote.Addr(), 0) // IPv6 raw sockets refuse any other port
	}
	gso := w.c.gso.Load()
	withSrc := local.IsValid() && !local.IsUnspecified()
	for attempt := 0; ; attempt++ {
		w.build(pkts, local, remote, gso, withSrc)
		err := w.flush()
		if err == nil {
			return nil
		}
		var errno unix.Errno
		if !errors.As(err, &errno) || attempt >= 3 {
			return err
		}
		switch {
		case gso && errno == unix.EIO:
			// The egress device cannot checksum-offload UDP GSO
			// (wireguard-go conn/errors_linux.go): stop using it.
			w.c.gso.Store(false)
			gso = false
		case gso && (errno == unix.EINVAL || errno == unix.EMSGSIZE):
			// A segment (plus headers) exceeds the route MTU: GSO cannot
			// fragment. Send those sizes one by one from now on.
			w.gsoMax = w.largestSegment(pkts)
			gso = false
		case withSrc && (errno == unix.EINVAL || errno == unix.ENETUNREACH):
			// The source address is not ours (any more): let the kernel
			// choose, as wireguard-go does when its sticky source fails.
			withSrc = false
		default:
			return err
		}
		pkts = pkts[w.sent:]
	}
}

func (w *Writer) largestSegment(pkts [][]byte) int {
	m := 0
	for _, p := range pkts {
		m = max(m, len(p))
	}
	return m
}

// build lays out the messages of one Send.
func (w *Writer) build(pkts [][]byte, local netip.Addr, remote netip.AddrPort, gso, withSrc bool) {
	b := &w.b
	nm := -1
	segSize, segs, total := 0, 0, 0
	ended := false
	finish := func() {
		if nm >= 0 {
			w.control(nm, local, withSrc, segs, segSize)
		}
	}
	for i, p := range pkts {
		b.iovs[i].Base = unsafe.SliceData(p)
		b.iovs[i].SetLen(len(p))
		if nm >= 0 && gso && !ended && len(p) <= segSize && segs < MaxSegments &&
			total+len(p) <= maxGSOPayload && (w.gsoMax == 0 || segSize < w.gsoMax) {
			segs++
			total += len(p)
			b.hdrs[nm].Hdr.SetIovlen(segs)
			if len(p) < segSize {
				ended = true // a short segment ends a GSO run
			}
			continue
		}
		finish()
		nm++
		h := &b.hdrs[nm]
		*h = unix.Mmsghdr{}
		h.Hdr.Iov = &b.iovs[i]
		h.Hdr.SetIovlen(1)
		h.Hdr.Name = (*byte)(unsafe.Pointer(&b.names[nm]))
		h.Hdr.Namelen = putSockaddr(&b.names[nm], remote, w.c.v6)
		segSize, segs, total, ended = len(p), 1, len(p), false
	}
	finish()
	w.msgs = nm + 1
	w.start = 0
	w.sent = 0
}

// control writes the control messages of message i: the source address
// (IP_PKTINFO / IPV6_PKTINFO) and the GSO segment size (UDP_SEGMENT).
func (w *Writer) control(i int, local netip.Addr, withSrc bool, segs, segSize int) {
	oob := w.b.oob[i*oobSize : (i+1)*oobSize]
	clear(oob)
	n := 0
	if withSrc {
		if w.c.v6 {
			// struct in6_pktinfo { in6_addr ipi6_addr; int ipi6_ifindex; }
			d := putCmsg(oob, &n, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
			a := local.As16()
			copy(d, a[:])
		} else {
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }:
			// spec_dst selects the source address.
			d := putCmsg(oob, &n, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
			a := local.Unmap().As4()
			copy(d[4:8], a[:])
		}
	}
	if segs > 1 {
		d := putCmsg(oob, &n, unix.IPPROTO_UDP, unix.UDP_SEGMENT, 2)
		binary.NativeEndian.PutUint16(d, uint16(segSize))
	}
	if n > 0 {
		h := &w.b.hdrs[i]
		h.Hdr.Control = &oob[0]
		h.Hdr.SetControllen(n)
	}
}

// putCmsg appends a cmsghdr for a datalen-octet value at oob[*n:],
// advances *n by the space it takes and returns the value's bytes.
func putCmsg(oob []byte, n *int, level, typ int32, datalen int) []byte {
	b := oob[*n:]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = level
	h.Type = typ
	h.SetLen(unix.CmsgLen(datalen))
	*n += unix.CmsgSpace(datalen)
	return b[unix.SizeofCmsghdr : unix.SizeofCmsghdr+datalen]
}

// flush sends the built messages, resuming after partial sends.
func (w *Writer) flush() error {
	for w.start < w.msgs {
		w.b.err = nil
		if err := w.c.rc.Write(w.b.fn); err != nil {
			return err
		}
		if w.b.err != nil {
			return w.b.err
		}
	}
	return nil
}

// sendmmsg runs inside RawConn.Write; returning false waits for the
// socket to become writable.
func (w *Writer) sendmmsg(fd uintptr) bool {
	r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.b.hdrs[w.start])), uintptr(w.msgs-w.start), unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN || errno == unix.EINTR {
		return false
	}
	if errno != 0 {
		w.b.err = errno
		return true
	}
	// Count the packets of the messages that left.
	for i := w.start; i < w.start+int(r); i++ {
		w.sent += int(w.b.hdrs[i].Hdr.Iovlen)
	}
	w.start += int(r)
	return true
}
