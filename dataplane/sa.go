package dataplane

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
	"github.com/cgwproject/cgw/ipsec"
)

// endpoints are the outer addresses of an SA; replaced as a whole by
// UpdateEndpoints.
type endpoints struct {
	local, remote netip.AddrPort
	encap         bool
}

// outboundSA is one installed outbound SA.
type outboundSA struct {
	t         *tunnel
	spi       ipsec.SPI
	alg       ipsec.Algorithms
	tr        outboundTransform
	ts        selectors // local (source) and remote (destination)
	softBytes uint64
	hardBytes uint64
	softFired atomic.Bool
	// admitted is the inner octets let through toward hardBytes, counted
	// by the tunnel's (single) TUN reader; only kept with a hard limit.
	admitted atomic.Uint64
	ep       atomic.Pointer[endpoints]
	stats    saCounters
}

// inboundSA is one installed inbound SA.
type inboundSA struct {
	t         *tunnel
	spi       ipsec.SPI
	alg       ipsec.Algorithms
	tr        inboundTransform
	ts        selectors // remote (source) and local (destination)
	hardBytes uint64
	ep        atomic.Pointer[endpoints]
	stats     saCounters
	// topSeq is the highest sequence number accepted so far; owned by
	// the tunnel's RoutineSequentialReceiver (see mapping.go).
	topSeq uint64
}

// selectors are an SA's traffic selectors, compiled for the hot path.
type selectors struct {
	local, remote tsList
}

// tsList is one side's selectors (RFC 7296, Section 3.13.1). An empty list
// means any address, like 0.0.0.0/0 plus ::/0.
type tsList struct {
	ts           []ipsec.TrafficSelector
	anyV4, anyV6 bool // a selector covers the whole family, any protocol and port
}

func compileTS(ts []ipsec.TrafficSelector) tsList {
	l := tsList{ts: append([]ipsec.TrafficSelector(nil), ts...)}
	if len(ts) == 0 {
		l.anyV4, l.anyV6 = true, true
	}
	for _, s := range ts {
		if s.IPProto != 0 || s.StartPort != 0 || s.EndPort != 65535 || !s.Start.IsValid() {
			continue
		}
		if s.Start == netip.IPv4Unspecified() && s.End == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			l.anyV4 = true
		}
		if s.Start == netip.IPv6Unspecified() && s.End == netip.AddrFrom16([16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}) {
			l.anyV6 = true
		}
	}
	return l
}

// match reports whether address a with the packet's protocol and the port
// of this side (source port for the sending side) is inside the list. For
// ICMP the port is type<<8|code (RFC 4301, Section 4.4.1.1).
func (l *tsList) match(p *packet.Parsed, a netip.Addr, port uint16) bool {
	if a.Is4() {
		if l.anyV4 {
			return true
		}
	} else if l.anyV6 {
		return true
	}
	for i := range l.ts {
		s := &l.ts[i]
		if !s.Contains(a) {
			continue
		}
		if s.IPProto != 0 && s.IPProto != p.Proto {
			continue
		}
		if s.StartPort == 0 && s.EndPort == 65535 {
			return true
		}
		if p.HasPorts && s.StartPort <= port && port <= s.EndPort {
			return true
		}
	}
	return false
}

// outboundOK: source in TSi-local, destination in TS-remote.
func (s *selectors) outboundOK(p *packet.Parsed) bool {
	dport := p.DstPort
	if p.Proto == packet.ProtoICMP || p.Proto == packet.ProtoICMPv6 {
		dport = p.SrcPort
	}
	return s.local.match(p, p.Src, p.SrcPort) && s.remote.match(p, p.Dst, dport)
}

// inboundOK: source in the remote selectors, destination in the local ones.
func (s *selectors) inboundOK(p *packet.Parsed) bool {
	dport := p.DstPort
	if p.Proto == packet.ProtoICMP || p.Proto == packet.ProtoICMPv6 {
		dport = p.SrcPort
	}
	return s.remote.match(p, p.Src, p.SrcPort) && s.local.match(p, p.Dst, dport)
}

// sad is the immutable inbound lookup table, swapped as a whole.
type sad struct {
	bySPI map[ipsec.SPI]*inboundSA
	// byPeer attributes NAT-keepalives and unknown SPIs to a tunnel.
	byPeer map[netip.Addr]*tunnel
}

// rebuildSADLocked publishes a new SAD snapshot. Caller must hold e.mu.
func (e *Engine) rebuildSADLocked() {
	s := &sad{bySPI: make(map[ipsec.SPI]*inboundSA), byPeer: make(map[netip.Addr]*tunnel)}
	for _, t := range e.tunnels {
		for spi, in := range t.inSAs {
			s.bySPI[spi] = in
			s.byPeer[in.ep.Load().remote.Addr()] = t
		}
		for _, out := range t.outSAs {
			s.byPeer[out.ep.Load().remote.Addr()] = t
		}
	}
	e.sad.Store(s)
}

// spiAllocTimeout is how long an SPI handed out by AllocSPI stays
// reserved without being installed.
const spiAllocTimeout = 5 * time.Minute

// AllocSPI returns a random inbound SPI that is not installed or reserved
// anywhere in the engine. SPIs 1-255 are reserved by IANA (RFC 4303,
// Section 2.1) and never returned. The reservation lapses after five
// minutes unless AddSA installs it.
func (e *Engine) AllocSPI(tunnel string) (ipsec.SPI, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	for spi, r := range e.reserved {
		if now.Sub(r.at) > spiAllocTimeout {
			delete(e.reserved, spi)
		}
	}
	var b [4]byte
	for range 64 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("dataplane: AllocSPI: %w", err)
		}
		spi := ipsec.SPI(binary.BigEndian.Uint32(b[:]))
		if spi < 256 || e.spiInUseLocked(spi) {
			continue
		}
		e.reserved[spi] = spiReservation{tunnel: tunnel, at: now}
		return spi, nil
	}
	return 0, errors.New("dataplane: AllocSPI: no free SPI found (SPI space exhausted?)")
}

type spiReservation struct {
	tunnel string
	at     time.Time
}

// spiInUseLocked reports whether spi is reserved or installed inbound.
// Caller must hold e.mu.
func (e *Engine) spiInUseLocked(spi ipsec.SPI) bool {
	if _, ok := e.reserved[spi]; ok {
		return true
	}
	for _, t := range e.tunnels {
		if _, ok := t.inSAs[spi]; ok {
			return true
		}
	}
	return false
}

// AddSA installs one direction of a CHILD SA on the tunnel p.Tunnel. An
// outbound SA becomes the tunnel's active outbound SA at once; the one it
// replaces keeps its counters until DelSA. Inbound SPIs must be unique in
// the engine.
func (e *Engine) AddSA(p ipsec.SAParams) error {
	if p.SPI == 0 {
		return fmt.Errorf("dataplane: AddSA %s: SPI 0 is reserved (RFC 4303, Section 2.1)", p.Tunnel)
	}
	if !p.Remote.Addr().IsValid() {
		return fmt.Errorf("dataplane: AddSA %s/%s/%s: Remote endpoint not set", p.Tunnel, p.Dir, p.SPI)
	}
	ep, err := e.newEndpoints(p.Local, p.Remote, p.Encap)
	if err != nil {
		return fmt.Errorf("dataplane: AddSA %s/%s/%s: %w", p.Tunnel, p.Dir, p.SPI, err)
	}
	switch p.Dir {
	case ipsec.Outbound:
		tr, err := newOutboundTransform(p)
		if err != nil {
			return fmt.Errorf("dataplane: AddSA %s/out/%s: %w", p.Tunnel, p.SPI, err)
		}
		if tr.HeadRoom() > tunReadOffset {
			return fmt.Errorf("dataplane: AddSA %s/out/%s: transform needs %d octets of headroom, at most %d supported", p.Tunnel, p.SPI, tr.HeadRoom(), tunReadOffset)
		}
		sa := &outboundSA{
			spi: p.SPI, alg: p.Alg, tr: tr,
			ts:        selectors{local: compileTS(p.TSLocal), remote: compileTS(p.TSRemote)},
			softBytes: p.SoftBytes, hardBytes: p.HardBytes,
		}
		sa.ep.Store(ep)
		e.mu.Lock()
		defer e.mu.Unlock()
		t := e.tunnels[p.Tunnel]
		if t == nil {
			return fmt.Errorf("dataplane: AddSA: tunnel %q not found; call AddTunnel first", p.Tunnel)
		}
		if _, dup := t.outSAs[p.SPI]; dup {
			return fmt.Errorf("dataplane: AddSA %s/out/%s: SA already installed", p.Tunnel, p.SPI)
		}
		sa.t = t
		t.outSAs[p.SPI] = sa
		t.outOrder = append(t.outOrder, p.SPI)
		t.out.Store(sa)
		e.rebuildSADLocked()
		return nil
	case ipsec.Inbound:
		tr, err := newInboundTransform(p)
		if err != nil {
			return fmt.Errorf("dataplane: AddSA %s/in/%s: %w", p.Tunnel, p.SPI, err)
		}
		sa := &inboundSA{
			spi: p.SPI, alg: p.Alg, tr: tr,
			ts:        selectors{local: compileTS(p.TSLocal), remote: compileTS(p.TSRemote)},
			hardBytes: p.HardBytes,
		}
		sa.ep.Store(ep)
		e.mu.Lock()
		defer e.mu.Unlock()
		t := e.tunnels[p.Tunnel]
		if t == nil {
			return fmt.Errorf("dataplane: AddSA: tunnel %q not found; call AddTunnel first", p.Tunnel)
		}
		for _, other := range e.tunnels {
			if _, dup := other.inSAs[p.SPI]; dup {
				return fmt.Errorf("dataplane: AddSA %s/in/%s: SPI already installed on tunnel %q; allocate SPIs with AllocSPI", p.Tunnel, p.SPI, other.name)
			}
		}
		delete(e.reserved, p.SPI)
		sa.t = t
		t.inSAs[p.SPI] = sa
		e.rebuildSADLocked()
		return nil
	}
	return fmt.Errorf("dataplane: AddSA %s/%s: direction %v is neither in nor out", p.Tunnel, p.SPI, p.Dir)
}

// DelSA removes one direction of an SA. Deleting an unknown SA (or one of
// an unknown tunnel) is not an error. Deleting the active outbound SA makes
// the most recently added remaining outbound SA active, if any. Packets
// already in flight with the SA complete.
func (e *Engine) DelSA(tunnel string, dir ipsec.Direction, spi ipsec.SPI) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tunnels[tunnel]
	if t == nil {
		if dir == ipsec.Inbound {
			delete(e.reserved, spi)
		}
		return nil
	}
	switch dir {
	case ipsec.Inbound:
		delete(e.reserved, spi)
		sa, ok := t.inSAs[spi]
		if !ok {
			return nil
		}
		delete(t.inSAs, spi)
		defer retire(sa.tr)
	case ipsec.Outbound:
		sa, ok := t.outSAs[spi]
		if !ok {
			return nil
		}
		delete(t.outSAs, spi)
		defer retire(sa.tr)
		for i, s := range t.outOrder {
			if s == spi {
				t.outOrder = append(t.outOrder[:i], t.outOrder[i+1:]...)
				break
			}
		}
		if t.out.Load() == sa {
			var next *outboundSA
			if n := len(t.outOrder); n > 0 {
				next = t.outSAs[t.outOrder[n-1]]
			}
			t.out.Store(next)
		}
	default:
		return fmt.Errorf("dataplane: DelSA %s/%s: direction %v is neither in nor out", tunnel, spi, dir)
	}
	e.rebuildSADLocked()
	return nil
}

// saWipeGrace is how long a deleted SA's transform stays intact after it
// left the SAD snapshot and the tunnel's outbound pointer: packets already
// in the pipeline (queued batches hold the SA) finish with it well within
// this time. A variable for tests.
var saWipeGrace = 5 * time.Second

// wiper is implemented by the esp transforms.
type wiper interface{ Wipe() }

// retire zeroes the key material of a transform no new packet can reach,
// once the grace period for packets in flight has passed (best effort:
// see esp's Wipe).
func retire(tr any) {
	if w, ok := tr.(wiper); ok {
		time.AfterFunc(saWipeGrace, w.Wipe)
	}
}

// UpdateEndpoints changes the outer addresses of all the tunnel's SAs, for
// example after a NAT rebinding or the float to port 4500.
func (e *Engine) UpdateEndpoints(tunnel string, local, remote netip.AddrPort, encap bool) error {
	if !remote.Addr().IsValid() {
		return fmt.Errorf("dataplane: UpdateEndpoints %s: remote endpoint not set", tunnel)
	}
	ep, err := e.newEndpoints(local, remote, encap)
	if err != nil {
		return fmt.Errorf("dataplane: UpdateEndpoints %s: %w", tunnel, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tunnels[tunnel]
	if t == nil {
		return fmt.Errorf("dataplane: UpdateEndpoints: tunnel %q not found", tunnel)
	}
	for _, sa := range t.inSAs {
		sa.ep.Store(ep)
	}
	for _, sa := range t.outSAs {
		sa.ep.Store(ep)
	}
	e.rebuildSADLocked()
	return nil
}

// QuerySA returns the use counters of an installed SA: inner octets and
// packets, and when it last carried a packet (inbound: last authentic
// packet, which DPD needs).
func (e *Engine) QuerySA(tunnel string, dir ipsec.Direction, spi ipsec.SPI) (ipsec.SAStats, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tunnels[tunnel]
	if t == nil {
		return ipsec.SAStats{}, fmt.Errorf("dataplane: QuerySA: tunnel %q not found", tunnel)
	}
	switch dir {
	case ipsec.Inbound:
		if sa := t.inSAs[spi]; sa != nil {
			return sa.stats.snapshot(), nil
		}
	case ipsec.Outbound:
		if sa := t.outSAs[spi]; sa != nil {
			return sa.stats.snapshot(), nil
		}
	}
	return ipsec.SAStats{}, fmt.Errorf("dataplane: QuerySA: %s SA %s not installed on tunnel %q", dir, spi, tunnel)
}

// SetSoftExpireHandler sets the function called, once per outbound SA and
// in its own goroutine, when the SA passes its soft limit: esp's sequence
// number threshold or SAParams.SoftBytes. The daemon answers by asking IKE
// to rekey the CHILD SA.
func (e *Engine) SetSoftExpireHandler(h func(tunnel string, spi ipsec.SPI)) {
	if h == nil {
		e.softExpire.Store(nil)
		return
	}
	e.softExpire.Store(&h)
}

// fireSoftExpire calls the handler once for sa.
func (e *Engine) fireSoftExpire(sa *outboundSA) {
	if !sa.softFired.CompareAndSwap(false, true) {
		return
	}
	if h := e.softExpire.Load(); h != nil {
		go (*h)(sa.t.name, sa.spi)
	}
}
