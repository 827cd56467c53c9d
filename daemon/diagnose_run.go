package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/daemon/diagnose"
)

// diagWindow is how long diagnose watches the counters to tell which
// direction traffic flows in.
const diagWindow = 3 * time.Second

// diagnose runs the troubleshooting checklist for one tunnel (or all):
// two status samples diagWindow apart for the direction analysis, an MTU
// probe through each tunnel that is up, then the findings.
func (d *Daemon) diagnose(ctx context.Context, only string) (*control.Diagnosis, error) {
	if only != "" {
		if _, err := d.tunnelByName(only); err != nil {
			return nil, err
		}
	}
	before := d.snapshot()
	probes := map[string]*diagnose.MTUProbeResult{}
	d.mu.Lock()
	type probeTarget struct {
		name, dev string
		src, dst  netip.Addr
		mtu       int
	}
	var targets []probeTarget
	for _, t := range d.tunnels {
		if (only == "" || only == t.cfg.Name) && t.childUp() {
			local, peer := insideAddrs(t.cfg) // IPv6-inside tunnels: ICMPv6 to AWS's /126 address
			targets = append(targets, probeTarget{t.cfg.Name, t.dev, local, peer, t.mtu})
		}
	}
	d.mu.Unlock()
	deadline := time.Now().Add(diagWindow)
	for _, pt := range targets {
		probes[pt.name] = probeMTU(ctx, pt.src, pt.dst, pt.mtu)
	}
	select {
	case <-time.After(time.Until(deadline)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	after := d.snapshot()

	counters := d.ikeCounters()
	natViews := map[string]*diagnose.NATView{}
	if d.ikm != nil {
		for _, p := range d.ikm.Status() {
			if v := p.NAT; v != nil {
				natViews[p.Name] = &diagnose.NATView{At: v.At, Local: v.Local, BehindNAT: v.BehindNAT, SeenAs: v.SeenAs}
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out control.Diagnosis
	for _, c := range d.conns {
		routes := diagnose.ConnectionRoutes(after, c.cfg.Name)
		for _, t := range c.tunnels {
			if only != "" && only != t.cfg.Name {
				continue
			}
			in := diagnose.Input{
				Conn:     c.cfg,
				Tunnel:   t.cfg,
				Before:   diagnose.FindTunnel(before, t.cfg.Name),
				After:    diagnose.FindTunnel(after, t.cfg.Name),
				Window:   diagWindow,
				Routes:   routes,
				MTUProbe: probes[t.cfg.Name],
				NAT:      natViews[t.cfg.Name],
			}
			ic := counters[t.cfg.Name]
			in.IKERequests, in.IKEResponses = ic.sent, ic.received
			if in.After != nil {
				in.LastIKEFailure = in.After.LastError
			}
			in.LastIKENotify = t.counts.lastNotify
			out.Findings = append(out.Findings, diagnose.Tunnel(in)...)
		}
	}
	return &out, nil
}

// probeMTU finds the largest IPv4 packet that crosses the tunnel unfragmented:
// ICMP echo requests with DF set, sizes searched between 576 and the tunnel
// MTU, each answered within a second or counted as lost.
func probeMTU(ctx context.Context, src, dst netip.Addr, mtu int) *diagnose.MTUProbeResult {
	res := &diagnose.MTUProbeResult{}
	f := probeFamilyOf(dst)
	c, err := net.ListenIP(f.network, &net.IPAddr{IP: src.AsSlice()})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer c.Close()
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), f.level, f.opt, f.probe)
		})
	}
	id := (os.Getpid() + 7) & 0xffff
	seq := 0
	try := func(size int) bool {
		seq++
		res.Tried = append(res.Tried, size)
		payload := make([]byte, size-f.headers)
		m := icmp.Message{Type: f.echo, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}
		b, _ := m.Marshal(nil)
		if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return false
		}
		buf := make([]byte, 65536)
		end := time.Now().Add(time.Second)
		for time.Now().Before(end) && ctx.Err() == nil {
			c.SetReadDeadline(end)
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return false
			}
			r, err := icmp.ParseMessage(f.proto, buf[:n])
			if err != nil || r.Type != f.reply {
				continue
			}
			if e, ok := r.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
				return true
			}
		}
		return false
	}
	lo, hi := f.min, mtu
	if !try(lo) {
		res.Err = fmt.Sprintf("no echo reply from %s even for %d-byte packets", dst, lo)
		return res
	}
	res.Largest = lo
	if try(hi) {
		res.Largest = hi
		return res
	}
	for hi-lo > 8 && ctx.Err() == nil {
		mid := (lo + hi) / 2
		if try(mid) {
			lo = mid
			res.Largest = mid
		} else {
			hi = mid
		}
	}
	return res
}

var errNoIKE = errors.New("ike: not running")
