package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Raw ESP watch.
//
// cgw carries ESP only inside UDP 4500 and asks every peer to do the same
// (forced NAT-T, README "NAT traversal"). Whether AWS honours that over
// IPv6 outside addresses or sends raw ESP (IP protocol 50) is unconfirmed
// (docs/ipv6.md), and a peer that sent raw ESP would leave the tunnel up
// in IKE but silent inbound. So cgwd listens for protocol 50 (raw sockets,
// CAP_NET_RAW; without it the watch is off) and logs, per tunnel and at
// most once a minute, which encapsulation the peer used when it is raw
// ESP. The packets are only counted: nothing is decrypted or answered.
// On a host whose kernel handles ESP itself (XFRM) the raw sockets get a
// copy of every ESP packet; those from addresses that are no tunnel's peer
// are ignored.
type rawESPWatch struct {
	log    *slog.Logger
	lookup func(netip.Addr) (tunnel string, ok bool)
	conns  []*net.IPConn
	wg     sync.WaitGroup

	mu   sync.Mutex
	seen map[string]*rawESPSeen
}

type rawESPSeen struct {
	packets uint64
	logged  time.Time
}

// rawESPLogEvery bounds the log lines per tunnel.
const rawESPLogEvery = time.Minute

// startRawESPWatch opens a protocol-50 socket per address family and
// starts reading. It returns an error only when no family could be opened.
func startRawESPWatch(log *slog.Logger, lookup func(netip.Addr) (string, bool)) (*rawESPWatch, error) {
	w := &rawESPWatch{log: log, lookup: lookup, seen: map[string]*rawESPSeen{}}
	var errs []error
	for _, network := range []string{"ip4:50", "ip6:50"} {
		c, err := net.ListenIP(network, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		w.conns = append(w.conns, c)
	}
	if len(w.conns) == 0 {
		return nil, errors.Join(errs...)
	}
	for _, c := range w.conns {
		w.wg.Add(1)
		go w.read(c)
	}
	return w, nil
}

// read receives ESP packets (Go strips the IPv4 header; IPv6 raw sockets
// never include it) until the socket is closed.
func (w *rawESPWatch) read(c *net.IPConn) {
	defer w.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromIP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		src, ok := netip.AddrFromSlice(from.IP)
		if !ok {
			continue
		}
		w.packet(src.Unmap(), buf[:n], time.Now())
	}
}

// packet accounts one raw ESP packet from src and logs it when due.
func (w *rawESPWatch) packet(src netip.Addr, esp []byte, now time.Time) {
	tunnel, ok := w.lookup(src)
	if !ok || len(esp) < 8 {
		return
	}
	spi := binary.BigEndian.Uint32(esp)
	w.mu.Lock()
	s := w.seen[tunnel]
	if s == nil {
		s = &rawESPSeen{}
		w.seen[tunnel] = s
	}
	s.packets++
	due := now.Sub(s.logged) >= rawESPLogEvery
	if due {
		s.logged = now
	}
	count := s.packets
	w.mu.Unlock()
	if due {
		w.log.Warn("the peer sends raw ESP (IP protocol 50), not ESP in UDP 4500: cgw does not decrypt it, so traffic from the peer is lost; see docs/ipv6.md",
			"tunnel", tunnel, "peer", src, "spi", fmt.Sprintf("%08x", spi), "packets", count)
	}
}

// rawPackets returns how many raw ESP packets came from tunnel's peer.
func (w *rawESPWatch) rawPackets(tunnel string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.seen[tunnel]; s != nil {
		return s.packets
	}
	return 0
}

func (w *rawESPWatch) close() {
	for _, c := range w.conns {
		c.Close()
	}
	w.wg.Wait()
}

// peerTunnel returns the tunnel whose peer address is a (for the raw ESP
// watch).
func (d *Daemon) peerTunnel(a netip.Addr) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, t := range d.tunnels {
		if t.cfg.PeerAddress.Unmap() == a {
			return name, true
		}
	}
	return "", false
}
