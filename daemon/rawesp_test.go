package daemon

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// lockedBuffer is a log sink the watch's goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRawESPAccounting: raw ESP from a tunnel's peer is counted and logged
// at most once a minute per tunnel with its SPI; other sources and runts
// are ignored.
func TestRawESPAccounting(t *testing.T) {
	var logs lockedBuffer
	peer := netip.MustParseAddr("2001:db8:100::10")
	w := &rawESPWatch{log: slog.New(slog.NewTextHandler(&logs, nil)), seen: map[string]*rawESPSeen{},
		lookup: func(a netip.Addr) (string, bool) { return "t1", a == peer }}
	esp := []byte{0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1, 9, 9, 9, 9}
	now := time.Unix(1000, 0)
	w.packet(peer, esp, now)
	w.packet(peer, esp, now.Add(time.Second))
	w.packet(netip.MustParseAddr("2001:db8:100::99"), esp, now)
	w.packet(peer, esp[:7], now)
	if got := w.rawPackets("t1"); got != 2 {
		t.Errorf("counted %d raw ESP packets, want 2", got)
	}
	if n := strings.Count(logs.String(), "raw ESP"); n != 1 || !strings.Contains(logs.String(), "spi=c0ffee01") || !strings.Contains(logs.String(), "tunnel=t1") {
		t.Errorf("want one log line naming the tunnel and SPI, got:\n%s", logs.String())
	}
	w.packet(peer, esp, now.Add(rawESPLogEvery+time.Second))
	if n := strings.Count(logs.String(), "raw ESP"); n != 2 || !strings.Contains(logs.String(), "packets=3") {
		t.Errorf("want a second line with the count after a minute, got:\n%s", logs.String())
	}
}

// TestRawESPWatchSockets sends real IP protocol 50 packets over IPv4 and
// IPv6 on the loopback of a namespace of its own and checks the watch
// sees both (root only).
func TestRawESPWatchSockets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for raw sockets and network namespaces")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // left locked: the thread is discarded with its namespace
		ns, err := netns.New()
		if err != nil {
			t.Errorf("netns.New: %v", err)
			return
		}
		defer ns.Close()
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Errorf("lo up: %v", err)
			return
		}
		var logs lockedBuffer
		peers := map[netip.Addr]bool{netip.MustParseAddr("127.0.0.1"): true, netip.MustParseAddr("::1"): true}
		w, err := startRawESPWatch(slog.New(slog.NewTextHandler(&logs, nil)), func(a netip.Addr) (string, bool) { return "t1", peers[a] })
		if err != nil {
			t.Errorf("startRawESPWatch: %v", err)
			return
		}
		defer w.close()
		for _, dst := range []string{"127.0.0.1", "::1"} {
			network := "ip4:50"
			if strings.Contains(dst, ":") {
				network = "ip6:50"
			}
			c, err := net.DialIP(network, nil, &net.IPAddr{IP: net.ParseIP(dst)})
			if err != nil {
				t.Errorf("dial %s: %v", network, err)
				return
			}
			_, err = c.Write([]byte{0xc0, 0xff, 0xee, 0x02, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8})
			c.Close()
			if err != nil {
				t.Errorf("send raw ESP to %s: %v", dst, err)
				return
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for w.rawPackets("t1") < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := w.rawPackets("t1"); got != 2 {
			t.Errorf("watch counted %d raw ESP packets, want 2 (one IPv4, one IPv6); log:\n%s", got, logs.String())
		}
		if !strings.Contains(logs.String(), "spi=c0ffee02") {
			t.Errorf("no log line with the SPI:\n%s", logs.String())
		}
	}()
	<-done
}
