package dataplane

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgwproject/cgw/dataplane/udp"
	"github.com/cgwproject/cgw/ipsec"
	"golang.zx2c4.com/wireguard/tun"
)

// TunnelConfig attaches a TUN device to the engine as one tunnel.
type TunnelConfig struct {
	// Name identifies the tunnel in SAParams.Tunnel and the other methods.
	Name string
	// Device is the tunnel's TUN device; the engine owns it from AddTunnel
	// on and closes it in RemoveTunnel.
	Device tun.Device
	// MTU is the largest inner packet sent; 0 = the device's MTU.
	MTU int
	// MSSClamp caps the TCP MSS option of SYN and SYN-ACK segments in both
	// directions (IPv4 value; IPv6 gets 20 less); 0 = off.
	MSSClamp uint16
	// NATKeepalive is the RFC 3948 keepalive interval; 0 = 20 s, negative
	// = never send keepalives.
	NATKeepalive time.Duration
	// FragNeededICMP answers inner packets larger than MTU with ICMP
	// "fragmentation needed" (DF set) / ICMPv6 "packet too big" instead of
	// dropping them silently.
	FragNeededICMP bool
}

// tunnel is one TUN device with its SAs and pipeline goroutines.
type tunnel struct {
	e         *Engine
	name      string
	dev       tun.Device
	mtu       atomic.Int32 // largest inner packet sent; follows the device's MTU
	mss       uint16
	keepalive time.Duration
	fragICMP  bool

	// out is the active outbound SA; nil = none (drop "no_sa").
	out atomic.Pointer[outboundSA]

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
	if mtu < 68 || mtu > bufSize-tunReadOffset-256 {
		return fmt.Errorf("dataplane: AddTunnel %s: MTU %d out of range [68, %d]", tc.Name, mtu, bufSize-tunReadOffset-256)
	}
	ka := tc.NATKeepalive
	if ka == 0 {
		ka = DefaultNATKeepalive
	}
	t := &tunnel{
		e: e, name: tc.Name, dev: tc.Device, mss: tc.MSSClamp,
		keepalive: ka, fragICMP: tc.FragNeededICMP,
		inSAs:  make(map[ipsec.SPI]*inboundSA),
		outSAs: make(map[ipsec.SPI]*outboundSA),
		stop:   make(chan struct{}),
	}
	t.mtu.Store(int32(mtu))
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
	e.log.Info("tunnel added", "tunnel", t.name, "mtu", mtu, "mss_clamp", t.mss, "nat_keepalive", t.keepalive)
	return nil
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
		Name:         name,
		InPackets:    t.c.inPackets.Load(),
		InBytes:      t.c.inBytes.Load(),
		OutPackets:   t.c.outPackets.Load(),
		OutBytes:     t.c.outBytes.Load(),
		KeepalivesRx: t.c.keepalivesRx.Load(),
		KeepalivesTx: t.c.keepalivesTx.Load(),
		LastInbound:  unixTime(t.c.lastInbound.Load()),
		Drops:        make(map[string]uint64, numDropReasons),
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

// RoutineTUNEvents drains the device's events (wireguard-go's netlink
// listener blocks when nobody reads them) and makes the tunnel MTU follow
// the device's: the daemon resizes the device when a CHILD SA's algorithms
// are known, and the kernel already hands us packets up to the new size,
// so keeping the old limit would silently drop every packet in between.
func (t *tunnel) RoutineTUNEvents() {
	for {
		select {
		case <-t.stop:
			return
		case ev, ok := <-t.dev.Events():
			if !ok {
				return
			}
			if ev&tun.EventMTUUpdate == 0 {
				continue
			}
			m, err := t.dev.MTU()
			old := int(t.mtu.Load())
			if err != nil || m == old {
				continue
			}
			if limit := bufSize - tunReadOffset - 256; m < 68 || m > limit {
				t.e.log.Warn("TUN device MTU out of range; keeping the tunnel MTU, larger packets are dropped",
					"tunnel", t.name, "device_mtu", m, "tunnel_mtu", old, "max", limit)
				continue
			}
			t.mtu.Store(int32(m))
			t.e.log.Info("tunnel MTU follows the device", "tunnel", t.name, "mtu", m, "was", old)
		}
	}
}

// RoutineKeepalive sends an RFC 3948 NAT-keepalive (one 0xFF octet, from
// the NAT-T port) when the active outbound SA is UDP-encapsulated and
// nothing was sent to the peer for the keepalive interval (Section 2.3).
func (t *tunnel) RoutineKeepalive() {
	defer t.wg.Done()
	tick := min(keepaliveTick, t.keepalive)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	payload := [][]byte{{natKeepalive}}
	var w *udp.Writer
	var wsock *socket
	for {
		select {
		case <-t.stop:
			return
		case now := <-ticker.C:
			sa := t.out.Load()
			if sa == nil {
				continue
			}
			ep := sa.ep.Load()
			if !ep.encap || now.UnixNano()-t.c.lastOutbound.Load() < int64(t.keepalive) {
				continue
			}
			s := t.e.nattSocket(ep.remote.Addr())
			if s == nil {
				continue
			}
			if s != wsock {
				w, wsock = s.conn.NewWriter(), s
			}
			if err := w.Send(payload, ep.local.Addr(), ep.remote); err != nil {
				t.drop(dropUDPSend, 1)
				continue
			}
			t.c.keepalivesTx.Add(1)
			t.c.lastOutbound.Store(now.UnixNano())
		}
	}
}

// isClosed reports errors that mean the device is gone.
func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed)
}
