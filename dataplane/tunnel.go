package dataplane

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
	"github.com/cgwproject/cgw/dataplane/udp"
	"github.com/cgwproject/cgw/ipsec"
	"golang.zx2c4.com/wireguard/tun"
)

// TunnelConfig attaches a TUN device to the engine as one tunnel.
type TunnelConfig struct {
	// Name identifies the tunnel in SAParams.Tunnel and the other methods.
	Name string
	// Device is the tunnel's TUN device; the engine owns it from AddTunnel
	// on and closes it in RemoveTunnel. Create it with DeviceMTU so that
	// the kernel hands oversize packets to the engine, which applies
	// Oversize, instead of fragmenting or rejecting them itself.
	Device tun.Device
	// MTU is the tunnel MTU: the largest inner packet that is encrypted
	// as it is, chosen so that the ESP-in-UDP packet fits the outside
	// path. Larger packets are handled as Oversize says. 0 = the device's
	// MTU. SetTunnelMTU changes it.
	MTU int
	// MSSClamp caps the TCP MSS option of SYN and SYN-ACK segments in both
	// directions (IPv4 value; IPv6 gets 20 less); 0 = off. The engine
	// clamps further, to MTU-40, when the tunnel MTU is smaller, so that
	// TCP segments (also those the TUN reader splits out of GSO
	// superpackets, whose size is the sender's MSS) are never fragmented.
	MSSClamp uint16
	// NATKeepalive is the RFC 3948 keepalive interval; 0 = 20 s, negative
	// = never send keepalives.
	NATKeepalive time.Duration
	// Oversize says what happens to inner packets larger than MTU; the
	// zero value is AWS's advice, OversizeFragment.
	Oversize Oversize
}

// DeviceMTU is the MTU to create a tunnel's TUN device with: Ethernet's,
// larger than any tunnel MTU on a 1500-octet outside path, so that the
// kernel neither fragments nor rejects packets between the device MTU and
// the tunnel MTU but hands them to the engine, which handles them as
// TunnelConfig.Oversize says.
const DeviceMTU = 1500

// Oversize is the treatment of inner packets larger than the tunnel MTU.
type Oversize uint8

const (
	// OversizeFragment follows AWS's advice (clear_df_bit,
	// fragmentation_before_encryption; aws-vpn-facts 2.10): an IPv4
	// packet gets DF cleared and is fragmented (RFC 791), and each
	// fragment is encrypted as its own ESP packet, so the ESP packets fit
	// the path and AWS, which does not reassemble fragmented ESP, never
	// sees outer fragments. IPv6 routers must not fragment (RFC 8200,
	// Section 5), so an IPv6 packet is answered with ICMPv6 "packet too
	// big" carrying the tunnel MTU.
	OversizeFragment Oversize = iota
	// OversizeICMP honours DF: an IPv4 packet with DF is answered with
	// ICMP "fragmentation needed" carrying the tunnel MTU (RFC 1191) so
	// the sender lowers its path MTU; IPv4 without DF is fragmented as
	// above; IPv6 gets "packet too big".
	OversizeICMP
)

func (o Oversize) String() string {
	switch o {
	case OversizeFragment:
		return "fragment"
	case OversizeICMP:
		return "icmp"
	}
	return fmt.Sprintf("Oversize(%d)", uint8(o))
}

// tunnel is one TUN device with its SAs and pipeline goroutines.
type tunnel struct {
	e         *Engine
	name      string
	dev       tun.Device
	mtu       atomic.Int32  // tunnel MTU: largest inner packet encrypted as is
	mss       atomic.Uint32 // effective MSS clamp: min(mssCfg, mtu-40); 0 = off
	mssCfg    uint16
	keepalive time.Duration
	oversize  Oversize

	// Owned by RoutineReadFromTUN.
	fragID  uint16    // Identification for packets whose DF is cleared
	icmp    rateLimit // ICMP errors sent back through the TUN
	icmpBuf [1][]byte // Write argument for an ICMP error, reused

	// Owned by RoutineSequentialReceiver: when the dataplane last moved
	// the tunnel to a new peer mapping (unix nanoseconds; mapping.go).
	lastMapping int64

	// out is the active outbound SA; nil = none (drop "no_sa").
	out atomic.Pointer[outboundSA]
	// peerEncap is how the peer's last authentic ESP arrived (rawesp.go).
	peerEncap atomic.Int32
	// sources is what inner source addresses the tunnel may carry; nil =
	// no check (SetTunnelSources).
	sources atomic.Pointer[sourceSet]

	// Guarded by e.mu.
	inSAs    map[ipsec.SPI]*inboundSA
	outSAs   map[ipsec.SPI]*outboundSA
	outOrder []ipsec.SPI // outbound SPIs in installation order

	queue struct {
		outbound chan *outBatch // to RoutineSequentialSender; closed by the TUN reader
		inbound  chan *inBatch  // to RoutineSequentialReceiver; closed by RemoveTunnel
	}
	// inMu guards sends on queue.inbound against its closing.
	inMu     sync.RWMutex
	inClosed bool

	stop chan struct{}
	wg   sync.WaitGroup
	c    tunnelCounters
}

// AddTunnel attaches a TUN device and starts the tunnel's goroutines.
// Until AddSA installs an outbound SA, packets read from the device are
// dropped with reason "no_sa".
func (e *Engine) AddTunnel(tc TunnelConfig) error {
	if tc.Name == "" {
		return errors.New("dataplane: AddTunnel: Name is empty")
	}
	if tc.Device == nil {
		return fmt.Errorf("dataplane: AddTunnel %s: Device is nil", tc.Name)
	}
	mtu := tc.MTU
	if mtu == 0 {
		m, err := tc.Device.MTU()
		if err != nil {
			return fmt.Errorf("dataplane: AddTunnel %s: reading the device MTU: %w; set TunnelConfig.MTU", tc.Name, err)
		}
		mtu = m
	}
	if err := checkMTU(mtu); err != nil {
		return fmt.Errorf("dataplane: AddTunnel %s: %w", tc.Name, err)
	}
	if tc.Oversize > OversizeICMP {
		return fmt.Errorf("dataplane: AddTunnel %s: unknown Oversize %d; use OversizeFragment or OversizeICMP", tc.Name, tc.Oversize)
	}
	ka := tc.NATKeepalive
	if ka == 0 {
		ka = DefaultNATKeepalive
	}
	t := &tunnel{
		e: e, name: tc.Name, dev: tc.Device, mssCfg: tc.MSSClamp,
		keepalive: ka, oversize: tc.Oversize,
		fragID: uint16(rand.Uint32()),
		inSAs:  make(map[ipsec.SPI]*inboundSA),
		outSAs: make(map[ipsec.SPI]*outboundSA),
		stop:   make(chan struct{}),
	}
	t.setMTU(mtu)
	t.queue.outbound = make(chan *outBatch, sequentialQueueLen)
	t.queue.inbound = make(chan *inBatch, sequentialQueueLen)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("dataplane: AddTunnel %s: engine closed", tc.Name)
	}
	if _, dup := e.tunnels[tc.Name]; dup {
		return fmt.Errorf("dataplane: AddTunnel: tunnel %q already exists", tc.Name)
	}
	e.tunnels[tc.Name] = t
	t.wg.Add(3)
	go t.RoutineReadFromTUN()
	go t.RoutineSequentialSender()
	go t.RoutineSequentialReceiver()
	go t.RoutineTUNEvents()
	if t.keepalive > 0 {
		t.wg.Add(1)
		go t.RoutineKeepalive()
	}
	e.log.Info("tunnel added", "tunnel", t.name, "mtu", mtu, "mss_clamp", t.mss.Load(), "oversize", t.oversize.String(), "nat_keepalive", t.keepalive)
	return nil
}

// SetTunnelMTU changes the tunnel MTU of tunnel name, for example when a
// CHILD SA's algorithms fix the ESP overhead. The device's MTU is not
// touched (it stays DeviceMTU); packets read from now on are measured
// against the new value, and the effective MSS clamp follows it.
func (e *Engine) SetTunnelMTU(name string, mtu int) error {
	if err := checkMTU(mtu); err != nil {
		return fmt.Errorf("dataplane: SetTunnelMTU %s: %w", name, err)
	}
	e.mu.Lock()
	t := e.tunnels[name]
	e.mu.Unlock()
	if t == nil {
		return fmt.Errorf("dataplane: SetTunnelMTU: tunnel %q not found", name)
	}
	if old := int(t.mtu.Load()); old != mtu {
		t.setMTU(mtu)
		e.log.Info("tunnel MTU changed", "tunnel", name, "mtu", mtu, "was", old, "mss_clamp", t.mss.Load())
	}
	return nil
}

// maxMTU is the largest tunnel MTU: an inner packet plus ESP header, IV,
// padding and ICV must fit a packet buffer after tunReadOffset.
const maxMTU = bufSize - tunReadOffset - 256

func checkMTU(mtu int) error {
	// 68 is the smallest MTU of an IPv4 link (RFC 791): a 60-octet header
	// and one 8-octet fragment.
	if mtu < 68 || mtu > maxMTU {
		return fmt.Errorf("MTU %d out of range [68, %d]", mtu, maxMTU)
	}
	return nil
}

// setMTU stores the tunnel MTU and the MSS clamp that fits it: an IPv4
// TCP segment with MSS m is m+40 octets (IPv6 segments get 20 less from
// ClampMSS, so they fit too).
func (t *tunnel) setMTU(mtu int) {
	t.mtu.Store(int32(mtu))
	mss := uint32(t.mssCfg)
	if fit := uint32(mtu - packet.IPv4HeaderLen - packet.TCPHeaderLen); mss != 0 && fit < mss {
		mss = fit // at least 28: checkMTU allows no MTU below 68
	}
	t.mss.Store(mss)
}

// RemoveTunnel deletes the tunnel's SAs, closes its device and waits for
// its goroutines to finish.
func (e *Engine) RemoveTunnel(name string) error {
	e.mu.Lock()
	t := e.tunnels[name]
	if t == nil {
		e.mu.Unlock()
		return fmt.Errorf("dataplane: RemoveTunnel: tunnel %q not found", name)
	}
	delete(e.tunnels, name)
	for spi, r := range e.reserved {
		if r.tunnel == name {
			delete(e.reserved, spi)
		}
	}
	e.rebuildSADLocked()
	for _, sa := range t.inSAs {
		retire(sa.tr)
	}
	for _, sa := range t.outSAs {
		retire(sa.tr)
	}
	e.mu.Unlock()

	// Closing the device first ends the TUN reader and unblocks a
	// receiver stuck in Write, so that a receive routine blocked on the
	// tunnel's full inbound queue (holding inMu for reading) gets through.
	close(t.stop)
	err := t.dev.Close()
	t.inMu.Lock()
	t.inClosed = true
	close(t.queue.inbound)
	t.inMu.Unlock()
	t.wg.Wait()
	e.log.Info("tunnel removed", "tunnel", name)
	if err != nil {
		return fmt.Errorf("dataplane: RemoveTunnel %s: closing device: %w", name, err)
	}
	return nil
}

// TunnelStats returns a snapshot of the tunnel's counters and SAs.
func (e *Engine) TunnelStats(name string) (TunnelStats, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tunnels[name]
	if t == nil {
		return TunnelStats{}, fmt.Errorf("dataplane: TunnelStats: tunnel %q not found", name)
	}
	st := TunnelStats{
		Name:           name,
		InPackets:      t.c.inPackets.Load(),
		InBytes:        t.c.inBytes.Load(),
		OutPackets:     t.c.outPackets.Load(),
		OutBytes:       t.c.outBytes.Load(),
		KeepalivesRx:   t.c.keepalivesRx.Load(),
		KeepalivesTx:   t.c.keepalivesTx.Load(),
		Fragmented:     t.c.fragmented.Load(),
		TooBigSent:     t.c.tooBigSent.Load(),
		MappingChanges: t.c.mappingChanges.Load(),
		MappingHeld:    t.c.mappingHeld.Load(),
		LastInbound:    unixTime(t.c.lastInbound.Load()),
		Drops:          make(map[string]uint64, numDropReasons),
	}
	for r := range numDropReasons {
		st.Drops[r.String()] = t.c.drops[r].Load()
	}
	if sa := t.out.Load(); sa != nil {
		st.ActiveOutbound = sa.spi
	}
	var ins, outs []SAInfo
	for _, sa := range t.inSAs {
		ep := sa.ep.Load()
		ins = append(ins, SAInfo{SPI: sa.spi, Dir: ipsec.Inbound, Alg: sa.alg, Encap: ep.encap, Local: ep.local, Remote: ep.remote, SAStats: sa.stats.snapshot()})
	}
	for _, sa := range t.outSAs {
		ep := sa.ep.Load()
		outs = append(outs, SAInfo{SPI: sa.spi, Dir: ipsec.Outbound, Alg: sa.alg, Encap: ep.encap, Local: ep.local, Remote: ep.remote, SAStats: sa.stats.snapshot()})
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].SPI < ins[j].SPI })
	sort.Slice(outs, func(i, j int) bool { return outs[i].SPI < outs[j].SPI })
	st.SAs = append(ins, outs...)
	return st, nil
}

func (t *tunnel) drop(r dropReason, n int) { t.c.drops[r].Add(uint64(n)) }

// RoutineTUNEvents drains the device's events: wireguard-go's netlink
// listener blocks when nobody reads them. The device's MTU does not set
// the tunnel MTU (TunnelConfig.MTU and SetTunnelMTU do): the device is
// bigger on purpose, so that oversize packets reach the engine.
func (t *tunnel) RoutineTUNEvents() {
	for {
		select {
		case <-t.stop:
			return
		case _, ok := <-t.dev.Events():
			if !ok {
				return
			}
		}
	}
}

// RoutineKeepalive sends an RFC 3948 NAT-keepalive (one 0xFF octet, from
// the NAT-T port) when the active outbound SA is UDP-encapsulated and
// nothing was sent to the peer for the keepalive interval (Section 2.3).
func (t *tunnel) RoutineKeepalive() {
	defer t.wg.Done()
	// One timer, set for when the next keepalive may be due, rather than
	// a check every second: with hundreds of tunnels those checks were a
	// steady stream of wake-ups. floor keeps a busy tunnel (whose last
	// packet is always recent) from re-arming in tiny steps; recheck is
	// how often a tunnel without a UDP-encapsulated SA looks again.
	floor := min(keepaliveTick, t.keepalive)
	recheck := max(floor, t.keepalive/4)
	timer := time.NewTimer(recheck)
	defer timer.Stop()
	payload := [][]byte{{natKeepalive}}
	var w *udp.Writer
	var wsock *socket
	for {
		select {
		case <-t.stop:
			return
		case now := <-timer.C:
			next := recheck
			sa := t.out.Load()
			var ep *endpoints
			if sa != nil {
				ep = sa.ep.Load()
			}
			if ep != nil && ep.encap {
				since := time.Duration(now.UnixNano() - t.c.lastOutbound.Load())
				if since < t.keepalive {
					next = max(floor, t.keepalive-since)
				} else if s := t.e.nattSocket(ep.remote.Addr()); s != nil {
					next = t.keepalive
					if s != wsock {
						w, wsock = s.conn.NewWriter(), s
					}
					if err := w.Send(payload, ep.local.Addr(), ep.remote); err != nil {
						t.drop(dropUDPSend, 1)
						next = floor
					} else {
						t.c.keepalivesTx.Add(1)
						t.c.lastOutbound.Store(now.UnixNano())
					}
				}
			}
			timer.Reset(next)
		}
	}
}

// isClosed reports errors that mean the device is gone.
func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed)
}
