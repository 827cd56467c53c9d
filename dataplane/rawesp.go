package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/cgwproject/cgw/dataplane/udp"
)

/* Raw ESP (IP protocol 50, RFC 4303 without RFC 3948's UDP header).
 *
 * When IKE negotiated no UDP encapsulation (no NAT detected and neither
 * side forced it, RFC 7296 Section 2.23), an SA's ESP packets travel
 * directly over IP. The engine holds one SOCK_RAW socket per family bound
 * to protocol 50 (CAP_NET_RAW); its receive routine feeds the same
 * pipeline as the NAT-T socket, minus the UDP header and the RFC 3948
 * demux (a raw packet is always ESP), and the sequential sender writes an
 * SA's packets to it when the SA is not encapsulated; the kernel adds the
 * IP header. Raw endpoints carry port 0.
 *
 * Inbound SAs accept ESP from either path: the SPI finds the SA wherever
 * the packet came from, and the tunnel logs which one the peer uses
 * whenever it changes (peerEncap), since whether AWS sends raw ESP over
 * IPv6 outside addresses is unconfirmed (docs/ipv6.md). Only UDP packets
 * on a UDP SA can move the peer's endpoint (NAT rebinding, mapping.go).
 */

// Peer encapsulation as seen on authentic packets (tunnel.peerEncap).
const (
	peerEncapUnknown int32 = iota
	peerEncapUDP
	peerEncapRaw
)

// listenRawESPLocked opens the raw ESP sockets of the families that have
// a NAT-T socket. Without CAP_NET_RAW it logs and returns none: SAs then
// need UDP encapsulation. Caller holds e.mu.
func (e *Engine) listenRawESPLocked() []*socket {
	var opened []*socket
	for fam := range 2 {
		if e.natt[fam] == nil {
			continue
		}
		c, err := udp.ListenRawESP(fam == 1)
		if err != nil {
			e.log.Info("raw ESP (IP protocol 50) is off for this address family; tunnels use ESP in UDP 4500", "ipv6", fam == 1, "err", err)
			continue
		}
		if e.fwmark != 0 {
			if err := c.SetMark(e.fwmark); err != nil {
				e.log.Warn("raw ESP socket: cannot set the firewall mark; raw ESP is off", "err", err)
				c.Close()
				continue
			}
		}
		s := &socket{conn: c, raw: true}
		e.raw[fam] = s
		opened = append(opened, s)
	}
	e.rawSocks.Store(&[2]*socket{e.raw[0], e.raw[1]})
	return opened
}

// RawESP reports whether the engine can send and receive raw ESP to and
// from addresses of a's family (a raw socket is open).
func (e *Engine) RawESP(a netip.Addr) bool {
	return e.rawSocket(a) != nil
}

// rawSocket returns the raw ESP socket for the family of a, or nil. It
// does not lock.
func (e *Engine) rawSocket(a netip.Addr) *socket {
	socks := e.rawSocks.Load()
	if socks == nil {
		return nil
	}
	if a.Is4() || a.Is4In6() {
		return socks[0]
	}
	return socks[1]
}

// sendSocket returns the socket that carries an SA's ESP to ep.
func (e *Engine) sendSocket(ep *endpoints) *socket {
	if ep.encap {
		return e.nattSocket(ep.remote.Addr())
	}
	return e.rawSocket(ep.remote.Addr())
}

// newEndpoints checks an SA's outer endpoints and returns them; raw ESP
// endpoints carry port 0.
func (e *Engine) newEndpoints(local, remote netip.AddrPort, encap bool) (*endpoints, error) {
	if !encap {
		if e.rawSocket(remote.Addr()) == nil {
			return nil, fmt.Errorf("no raw ESP socket for %s (cgwd needs CAP_NET_RAW for ESP without UDP encapsulation; grant it, or set the tunnel's encapsulation to udp)", remote.Addr())
		}
		local = netip.AddrPortFrom(local.Addr(), 0)
		remote = netip.AddrPortFrom(remote.Addr(), 0)
	}
	return &endpoints{local: local, remote: remote, encap: encap}, nil
}

// peerEncapOf says how a packet from remote arrived: raw ESP has port 0.
func peerEncapOf(remote netip.AddrPort) int32 {
	if remote.Port() == 0 {
		return peerEncapRaw
	}
	return peerEncapUDP
}

// notePeerEncap records how the peer's authentic ESP arrived and logs it,
// once per change.
func (t *tunnel) notePeerEncap(sa *inboundSA, remote netip.AddrPort) {
	got := peerEncapOf(remote)
	if t.peerEncap.Swap(got) == got {
		return
	}
	negotiated := "ESP in UDP"
	if !sa.ep.Load().encap {
		negotiated = "raw ESP"
	}
	if got == peerEncapRaw {
		t.e.log.Info("ESP from the peer arrives as raw ESP (IP protocol 50)", "tunnel", t.name, "peer", remote.Addr(), "spi", sa.spi.String(), "negotiated", negotiated)
	} else {
		t.e.log.Info("ESP from the peer arrives in UDP (RFC 3948)", "tunnel", t.name, "peer", remote, "spi", sa.spi.String(), "negotiated", negotiated)
	}
}

// TunnelEncap reports whether the tunnel's active outbound SA carries ESP
// in UDP (true) or raw (false); ok is false when it has none.
func (e *Engine) TunnelEncap(tunnel string) (encap, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tunnels[tunnel]
	if t == nil {
		return false, false
	}
	sa := t.out.Load()
	if sa == nil {
		return false, false
	}
	return sa.ep.Load().encap, true
}
