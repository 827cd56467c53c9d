package daemon

import (
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// keepalive sends ICMP echo requests through a tunnel at a fixed interval,
// as AWS recommends for tunnels that may sit idle (its DPD and idle timers
// otherwise tear them down). Replies are counted, not required.
type keepalive struct {
	done       chan struct{}
	sent, recv atomic.Uint64
}

func startKeepalive(log *slog.Logger, tunnel, dev string, src, dst netip.Addr, every time.Duration) *keepalive {
	k := &keepalive{done: make(chan struct{})}
	go k.run(log.With("tunnel", tunnel, "keepalive", dst.String()), src, dst, every)
	return k
}

func (k *keepalive) stop() { close(k.done) }

func (k *keepalive) run(log *slog.Logger, src, dst netip.Addr, every time.Duration) {
	var conn *icmp.PacketConn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	id := os.Getpid() & 0xffff
	t := time.NewTicker(every)
	defer t.Stop()
	seq := 0
	warned := false
	for {
		select {
		case <-k.done:
			return
		case <-t.C:
		}
		if conn == nil {
			c, err := icmp.ListenPacket("ip4:icmp", src.String())
			if err != nil {
				if !warned {
					log.Warn("keepalive: cannot open an ICMP socket; retrying each interval", "err", err)
					warned = true
				}
				continue
			}
			conn = c
			go k.readReplies(conn, id)
		}
		seq++
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq & 0xffff, Data: []byte("cgw keepalive")}}
		b, _ := msg.Marshal(nil)
		if _, err := conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err == nil {
			k.sent.Add(1)
		}
	}
}

func (k *keepalive) readReplies(c *icmp.PacketConn, id int) {
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id {
			k.recv.Add(1)
		}
	}
}
