package daemon

import (
	"net/netip"
	"sync"

	"github.com/cgwproject/cgw/dataplane"
	"github.com/cgwproject/cgw/ike"
)

// ikeCounting sits between IKE and the dataplane's sockets and counts IKE
// messages per peer address, so diagnose can tell "UDP 500/4500 never
// answered" from "answered but rejected".
type ikeCounting struct {
	dp *dataplane.Engine
	mu sync.Mutex
	by map[netip.Addr]*ikeCount
}

type ikeCount struct{ sent, received uint64 }

func newIKECounting(dp *dataplane.Engine) *ikeCounting {
	return &ikeCounting{dp: dp, by: map[netip.Addr]*ikeCount{}}
}

func (c *ikeCounting) count(a netip.Addr) *ikeCount {
	a = a.Unmap()
	n := c.by[a]
	if n == nil {
		n = &ikeCount{}
		c.by[a] = n
	}
	return n
}

// SendIKE implements ike.Sender.
func (c *ikeCounting) SendIKE(local, remote netip.AddrPort, data []byte) error {
	c.mu.Lock()
	c.count(remote.Addr()).sent++
	c.mu.Unlock()
	return c.dp.SendIKE(local, remote, data)
}

// received wraps the IKE handler.
func (c *ikeCounting) received(h func(local, remote netip.AddrPort, data []byte)) func(local, remote netip.AddrPort, data []byte) {
	return func(local, remote netip.AddrPort, data []byte) {
		c.mu.Lock()
		c.count(remote.Addr()).received++
		c.mu.Unlock()
		h(local, remote, data)
	}
}

func (c *ikeCounting) get(a netip.Addr) ikeCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.by[a.Unmap()]; n != nil {
		return *n
	}
	return ikeCount{}
}

var _ ike.Sender = (*ikeCounting)(nil)

// ikeCounters returns the IKE message counts per tunnel name.
func (d *Daemon) ikeCounters() map[string]ikeCount {
	out := map[string]ikeCount{}
	if d.ikeCount == nil {
		return out
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, t := range d.tunnels {
		out[n] = d.ikeCount.get(t.cfg.PeerAddress)
	}
	return out
}
