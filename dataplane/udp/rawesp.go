//go:build linux

package udp

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ListenRawESP opens a raw socket for IP protocol 50 (ESP without UDP
// encapsulation, RFC 4303) of one address family; it needs CAP_NET_RAW.
// It is read and written like a UDP Conn, with three differences: there
// is no GSO or GRO; remote endpoints carry port 0; and on an IPv4 socket
// the kernel hands over every packet with its IP header, which ReadBatch
// reports in Message.Off (IPv6 raw sockets never include it). On send the
// kernel adds the IP header. Every protocol-50 packet the host receives is
// copied to this socket; those with an SPI the caller does not know are
// the caller's to drop.
func ListenRawESP(v6 bool) (*Conn, error) {
	family, network := unix.AF_INET, "ip4:esp"
	if v6 {
		family, network = unix.AF_INET6, "ip6:esp"
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ESP)
	if err != nil {
		return nil, fmt.Errorf("udp: raw ESP socket (%s, needs CAP_NET_RAW): %w", network, err)
	}
	if err := setupSocket(fd, v6); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), network)
	p, err := net.FilePacketConn(f)
	f.Close() // FilePacketConn dups the descriptor
	if err != nil {
		return nil, fmt.Errorf("udp: raw ESP socket (%s): %w", network, err)
	}
	pc, ok := p.(*net.IPConn)
	if !ok {
		p.Close()
		return nil, fmt.Errorf("udp: raw ESP socket (%s): unexpected %T", network, p)
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("udp: raw ESP socket (%s): %w", network, err)
	}
	c := &Conn{pc: pc, rc: rc, v6: v6, raw: true}
	c.rx.init(c, IdealBatch)
	c.rx.fn = c.recvmmsg
	return c, nil
}

// Raw reports whether c is a raw ESP socket (ListenRawESP).
func (c *Conn) Raw() bool { return c.raw }

// ipv4HeaderLen returns the header length of the IPv4 packet p, or 0 when
// p is too short to hold it.
func ipv4HeaderLen(p []byte) int {
	if len(p) < 20 {
		return 0
	}
	n := int(p[0]&0x0f) * 4
	if n < 20 || n > len(p) {
		return 0
	}
	return n
}
