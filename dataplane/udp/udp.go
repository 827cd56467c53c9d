//go:build linux

// Package udp owns the dataplane's UDP sockets: one Conn per address family
// and port, read and written in batches with recvmmsg(2)/sendmmsg(2), with
// UDP GSO on send and GRO on receive when the kernel supports them, and
// IP_PKTINFO/IPV6_PKTINFO so that the local address of every received
// datagram is known and replies leave from it. The same Conn type also
// wraps the raw IP protocol 50 sockets of raw ESP (ListenRawESP).
//
// Steady-state I/O does not allocate: a Conn keeps one receive state for
// its single reader, and every sending goroutine owns a Writer. A Conn is
// safe for one concurrent ReadBatch caller and any number of Writers; a
// Writer is not safe for concurrent use.
//
// Outer packets are sent with path MTU discovery off (IP_PMTUDISC_DONT):
// an ESP packet larger than the path MTU is fragmented by the kernel
// rather than dropped, as AWS advises ("clear DF", fragment the tunnel
// packets rather than fail).
package udp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel limits.
const (
	// MaxSegments is the most datagrams one UDP GSO send may carry
	// (UDP_MAX_SEGMENTS in include/linux/udp.h; 64 before Linux 6.9).
	MaxSegments = 64
	// maxGSOPayload bounds the bytes of one GSO send: a UDP length field
	// minus headers (IPv4 worst case).
	maxGSOPayload = 65535 - 20 - 8
	// socketBuffer is the SO_RCVBUF/SO_SNDBUF we ask for (wireguard-go uses
	// the same 7 MiB).
	socketBuffer = 7 << 20
	oobSize      = 128
)

// Message is one datagram of a batch.
type Message struct {
	// Buf is the receive buffer (its full length is offered to the kernel)
	// or the payload to send.
	Buf []byte
	// N is the number of bytes received; 0 for a datagram to ignore
	// (truncated).
	N int
	// Remote is the peer's address and port.
	Remote netip.AddrPort
	// Local is the destination address of a received datagram (from
	// IP_PKTINFO), unmapped for IPv4.
	Local netip.Addr
	// GSOSize is set when the kernel coalesced several datagrams of this
	// size (the last may be shorter) into Buf[:N] (UDP GRO).
	GSOSize int
	// Off is where the payload starts in Buf: the IPv4 header length on a
	// raw IPv4 socket (ListenRawESP), else 0. The payload is Buf[Off:N].
	Off int
}

// Conn is one UDP socket.
type Conn struct {
	pc   net.PacketConn
	rc   syscall.RawConn
	v6   bool
	port uint16
	gro  bool
	raw  bool        // protocol-50 socket (ListenRawESP)
	gso  atomic.Bool // cleared for good when the kernel refuses GSO (EIO)
	rx   batch
}

// Listen opens a UDP socket on addr ("udp4" with an IPv4 or unspecified
// address, "udp6" with an IPv6 one). Port 0 picks a free port.
func Listen(network string, addr netip.AddrPort) (*Conn, error) {
	if network != "udp4" && network != "udp6" {
		return nil, fmt.Errorf("udp: network %q: want udp4 or udp6", network)
	}
	v6 := network == "udp6"
	var sockErr error
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		err := rc.Control(func(fd uintptr) { sockErr = setupSocket(int(fd), v6) })
		if err != nil {
			return err
		}
		return sockErr
	}}
	ap := addr
	if !ap.Addr().IsValid() {
		if v6 {
			ap = netip.AddrPortFrom(netip.IPv6Unspecified(), addr.Port())
		} else {
			ap = netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())
		}
	}
	p, err := lc.ListenPacket(context.Background(), network, ap.String())
	if err != nil {
		return nil, fmt.Errorf("udp: listen %s %s: %w", network, ap, err)
	}
	pc := p.(*net.UDPConn)
	rc, err := pc.SyscallConn()
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("udp: %s: %w", ap, err)
	}
	c := &Conn{pc: pc, rc: rc, v6: v6, port: uint16(pc.LocalAddr().(*net.UDPAddr).Port)}
	c.gso.Store(true)
	_ = rc.Control(func(fd uintptr) {
		// UDP GRO (Linux 5.0+); without it every datagram is read alone.
		c.gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		// Probe UDP GSO support (Linux 4.18+).
		if _, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT); err != nil {
			c.gso.Store(false)
		}
	})
	c.rx.init(c, IdealBatch)
	c.rx.fn = c.recvmmsg
	return c, nil
}

// SetMark sets the socket's firewall mark (SO_MARK; needs CAP_NET_ADMIN).
// Every packet it sends carries the mark, so policy rules can route cgwd's
// own IKE, ESP and keepalives around the routes cgw installs. 0 clears it.
func (c *Conn) SetMark(mark uint32) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("udp: set SO_MARK %#x on port %d: %w", mark, c.port, err)
	}
	return nil
}

// Mark returns the socket's firewall mark.
func (c *Conn) Mark() (uint32, error) {
	var m int
	var serr error
	err := c.rc.Control(func(fd uintptr) { m, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) })
	if err == nil {
		err = serr
	}
	return uint32(m), err
}

func setupSocket(fd int, v6 bool) error {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBuffer)
	}
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return fmt.Errorf("udp: IPV6_RECVPKTINFO: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT); err != nil {
			return fmt.Errorf("udp: IPV6_MTU_DISCOVER: %w", err)
		}
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
		return fmt.Errorf("udp: IP_PKTINFO: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT); err != nil {
		return fmt.Errorf("udp: IP_MTU_DISCOVER: %w", err)
	}
	return nil
}

// IdealBatch is the number of datagrams read or written per system call.
const IdealBatch = 128

// Port is the bound local port.
func (c *Conn) Port() uint16 { return c.port }

// IPv6 reports whether this is the IPv6 socket.
func (c *Conn) IPv6() bool { return c.v6 }

// GRO reports whether received datagrams may arrive coalesced.
func (c *Conn) GRO() bool { return c.gro }

// GSO reports whether sends are currently coalesced with UDP GSO.
func (c *Conn) GSO() bool { return c.gso.Load() }

// SetReadDeadline sets when a blocked ReadBatch gives up with an error
// that is os.ErrDeadlineExceeded; the zero time waits for ever. Writers
// are not affected.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// Close closes the socket; a blocked ReadBatch returns net.ErrClosed.
func (c *Conn) Close() error { return c.pc.Close() }

// ReadBatch blocks until at least one datagram arrives and fills msgs[:n]:
// each msgs[i].Buf must be set by the caller (65535 octets at least when
// GRO is on, or coalesced datagrams are lost). At most IdealBatch messages
// are read. Only one goroutine may call ReadBatch at a time.
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	b := &c.rx
	n := min(len(msgs), len(b.hdrs))
	if n == 0 {
		return 0, nil
	}
	for i := range n {
		h := &b.hdrs[i]
		buf := msgs[i].Buf
		b.iovs[i].Base = unsafe.SliceData(buf)
		b.iovs[i].SetLen(len(buf))
		h.Hdr.Iov = &b.iovs[i]
		h.Hdr.SetIovlen(1)
		h.Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
		h.Hdr.Control = &b.oob[i*oobSize]
		h.Hdr.SetControllen(oobSize)
		h.Hdr.Flags = 0
		h.Len = 0
	}
	b.n = n
	if err := c.rc.Read(b.fn); err != nil {
		return 0, err
	}
	if b.err != nil {
		return 0, b.err
	}
	got := b.n
	for i := range got {
		h := &b.hdrs[i]
		m := &msgs[i]
		m.N = int(h.Len)
		m.GSOSize = 0
		m.Off = 0
		m.Local = netip.Addr{}
		if h.Hdr.Flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			m.N = 0
		}
		if c.raw && !c.v6 && m.N > 0 {
			if m.Off = ipv4HeaderLen(m.Buf[:m.N]); m.Off == 0 {
				m.N = 0
			}
		}
		m.Remote = sockaddrToAddrPort(&b.names[i])
		parseControl(b.oob[i*oobSize:i*oobSize+int(h.Hdr.Controllen)], m)
	}
	return got, nil
}

// recvmmsg runs inside RawConn.Read; returning false waits for readiness.
func (c *Conn) recvmmsg(fd uintptr) bool {
	b := &c.rx
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.n), unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN || errno == unix.EINTR {
		return false
	}
	b.err = nil
	if errno != 0 {
		b.err = fmt.Errorf("udp: recvmmsg: %w", errno)
		b.n = 0
		return true
	}
	b.n = int(r)
	return true
}

// batch is the kernel-facing state of one batched system call.
type batch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte
	n     int
	err   error
	fn    func(fd uintptr) bool
}

func (b *batch) init(c *Conn, n int) {
	b.hdrs = make([]unix.Mmsghdr, n)
	b.iovs = make([]unix.Iovec, n)
	b.names = make([]unix.RawSockaddrInet6, n)
	b.oob = make([]byte, n*oobSize)
}

// parseControl extracts PKTINFO and UDP_GRO from received control
// messages without allocating.
func parseControl(oob []byte, m *Message) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return
		}
		data := oob[unix.SizeofCmsghdr:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }:
			// addr is the header destination address.
			m.Local = netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			m.Local = netip.AddrFrom16([16]byte(data[0:16])).Unmap()
		case h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			m.GSOSize = int(binary.NativeEndian.Uint32(data))
		}
		sp := unix.CmsgSpace(l - unix.SizeofCmsghdr)
		if sp > len(oob) {
			return
		}
		oob = oob[sp:]
	}
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// putSockaddr writes ap into sa for a socket of the given family and
// returns the address length.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort, v6 bool) uint32 {
	*sa = unix.RawSockaddrInet6{}
	if !v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], ap.Port())
		sa4.Addr = ap.Addr().Unmap().As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	sa.Addr = ap.Addr().As16()
	return unix.SizeofSockaddrInet6
}

// Errors.
var (
	ErrFamily = errors.New("udp: destination address family does not match the socket")
)
