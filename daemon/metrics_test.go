package daemon

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
)

// A client that sends its request headers slowly (slowloris) or keeps an
// idle connection is cut off by the metrics server's timeouts.
func TestMetricsServerTimeouts(t *testing.T) {
	saved := metricsTimeouts
	t.Cleanup(func() { metricsTimeouts = saved })
	metricsTimeouts.readHeader = 200 * time.Millisecond
	metricsTimeouts.read = 300 * time.Millisecond
	metricsTimeouts.idle = 300 * time.Millisecond

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go newMetricsServer(http.RedirectHandler("/metrics", http.StatusFound)).Serve(ln)

	// Slow headers: the server closes the connection.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("slow client: %v after %v; want the server to close the connection", err, time.Since(start))
	}

	// Idle keep-alive connection: closed after the idle timeout.
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c2)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 302 Found\r\n" {
		t.Fatalf("status line %q, %v", line, err)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("idle connection not closed by the server: %v", err)
	}
}

func TestIKEDropMap(t *testing.T) {
	if m := ikeDropMap(ike.Drops{}); m != nil {
		t.Errorf("all zero: got %v, want nil (nothing to show)", m)
	}
	m := ikeDropMap(ike.Drops{CookieSent: 7, InvalidKE: 3, ResendLimited: 1})
	want := map[string]uint64{"cookie_sent": 7, "invalid_ke": 3, "resend_limited": 1}
	if len(m) != len(want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %d, want %d", k, m[k], v)
		}
	}
}
