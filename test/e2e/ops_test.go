//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// metricsAddr is where the tests let cgwd serve Prometheus metrics, inside
// the customer namespace (each simulation has its own loopback).
const metricsAddr = "127.0.0.1:9810"

// withMetrics turns the metrics endpoint on in a configuration rendered by
// sim.CgwdConfig.
func withMetrics(t testing.TB, cfg string) string {
	t.Helper()
	const off = `metrics: {listen: ""}`
	if !strings.Contains(cfg, off) {
		t.Fatalf("cgwd config has no %q line to replace:\n%s", off, cfg)
	}
	return strings.Replace(cfg, off, fmt.Sprintf("metrics: {listen: %q}", metricsAddr), 1)
}

// httpGetIn fetches url from inside network namespace ns. The request runs
// on a goroutine locked to its OS thread, which switches namespace and is
// never unlocked, so the thread ends with the goroutine and no other
// goroutine ever runs in ns. No curl/wget needed.
func httpGetIn(ns, url string) (string, error) {
	type result struct {
		body string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		body, err := func() (string, error) {
			f, err := os.Open("/run/netns/" + ns)
			if err != nil {
				return "", err
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				return "", fmt.Errorf("setns %s: %w", ns, err)
			}
			u, err := neturl.Parse(url)
			if err != nil {
				return "", err
			}
			conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			if err != nil {
				return "", err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(15 * time.Second))
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				return "", err
			}
			req.Close = true
			if err := req.Write(conn); err != nil {
				return "", err
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %s", resp.Status)
			}
			return string(b), err
		}()
		ch <- result{body, err}
	}()
	r := <-ch
	if r.err != nil {
		return r.body, fmt.Errorf("GET %s in %s: %w", url, ns, r.err)
	}
	return r.body, nil
}

// metricSample is one line of the Prometheus text format.
type metricSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parseMetrics parses the Prometheus text exposition format (comments
// skipped, no timestamps expected).
func parseMetrics(text string) ([]metricSample, error) {
	var out []metricSample
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := metricSample{Labels: map[string]string{}}
		rest := l
		if i := strings.IndexAny(l, "{ "); i >= 0 && l[i] == '{' {
			m.Name = l[:i]
			rest = l[i+1:]
			for !strings.HasPrefix(rest, "}") {
				k, after, ok := strings.Cut(rest, `="`)
				if !ok {
					return nil, fmt.Errorf("metrics: bad labels in %q", l)
				}
				var v strings.Builder
				j := 0
				for ; j < len(after) && after[j] != '"'; j++ {
					if after[j] == '\\' && j+1 < len(after) {
						j++
					}
					v.WriteByte(after[j])
				}
				if j == len(after) {
					return nil, fmt.Errorf("metrics: unterminated label value in %q", l)
				}
				m.Labels[strings.TrimPrefix(k, ",")] = v.String()
				rest = strings.TrimPrefix(after[j+1:], ",")
			}
			rest = strings.TrimSpace(rest[1:])
		} else {
			name, v, ok := strings.Cut(l, " ")
			if !ok {
				return nil, fmt.Errorf("metrics: no value in %q", l)
			}
			m.Name, rest = name, v
		}
		f, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: value in %q: %w", l, err)
		}
		m.Value = f
		out = append(out, m)
	}
	return out, nil
}

// metric returns the value of the one series of name whose labels include
// the given key/value pairs, and whether it exists.
func metric(ms []metricSample, name string, kv ...string) (float64, bool) {
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			if m.Labels[kv[i]] != kv[i+1] {
				match = false
				break
			}
		}
		if match {
			return m.Value, true
		}
	}
	return 0, false
}

// scrape fetches and parses cgwd's metrics page (and returns its text).
func scrape(t testing.TB, s *sim.Sim) ([]metricSample, string) {
	t.Helper()
	body, err := httpGetIn(s.NS(sim.Cust), "http://"+metricsAddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseMetrics(body)
	if err != nil {
		t.Fatal(err)
	}
	return ms, body
}

// readLog returns everything cgwd logged so far.
func readLog(t testing.TB, d *Cgwd) string {
	t.Helper()
	b, err := os.ReadFile(d.Proc.Log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// secretForms returns the ways a PSK could leak: as is, hex and base64.
func secretForms(psk string) []string {
	return []string{psk, hex.EncodeToString([]byte(psk)), base64.StdEncoding.EncodeToString([]byte(psk)), base64.RawStdEncoding.EncodeToString([]byte(psk))}
}

// assertNoSecrets fails if any form of any PSK appears in text.
func assertNoSecrets(t testing.TB, what, text string, psks ...string) {
	t.Helper()
	if text == "" {
		t.Errorf("no secrets check on %s: nothing captured", what)
		return
	}
	for _, psk := range psks {
		for _, f := range secretForms(psk) {
			if i := strings.Index(text, f); i >= 0 {
				lo, hi := max(0, i-120), min(len(text), i+len(f)+40)
				t.Errorf("%s contains a PSK (%d bytes in, form %q...): ...%s...", what, i, f[:4], strings.ReplaceAll(text[lo:hi], f, "<PSK>"))
			}
		}
	}
}

// ctlExit runs cgwctl and returns stdout, stderr and the exit code (-1
// when it could not run).
func (c *Cgwd) ctlExit(args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "cgwctl"), args...)
	cmd.Env = append(os.Environ(), "CGW_SOCKET="+c.Socket)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// spiState is what must not change on a tunnel a reload leaves alone.
type spiState struct{ IKEi, IKEr, ChildIn, ChildOut string }

func spisOf(t testing.TB, st *control.Status, name string) spiState {
	t.Helper()
	tn := findTunnel(st, name)
	if tn == nil || tn.IKE == nil || len(tn.Children) == 0 {
		t.Fatalf("tunnel %s has no SAs in status: %+v", name, tn)
	}
	return spiState{tn.IKE.SPIi, tn.IKE.SPIr, tn.Children[0].InSPI, tn.Children[0].OutSPI}
}

// tunnelNames returns the names of the first connection's tunnels.
func tunnelNames(t testing.TB, d *Cgwd) (string, string) {
	t.Helper()
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Connections) != 1 || len(st.Connections[0].Tunnels) != 2 {
		t.Fatalf("want one connection with two tunnels: %+v", st)
	}
	return st.Connections[0].Tunnels[0].Name, st.Connections[0].Tunnels[1].Name
}

// TestOpsStatusAndTunnelControl covers issue 7's status, tunnel verbs and
// metrics on one healthy two-tunnel BGP setup run at log level debug, and
// at the end greps everything cgwd said (log, status, metrics, diagnose)
// for the PSKs.
func TestOpsStatusAndTunnelControl(t *testing.T) {
	s := NewSim(t, sim.Options{})
	cfg, err := s.CgwdConfig(sim.CgwdOptions{LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d := StartCgwdYAML(t, s, sim.Cust, withMetrics(t, cfg))
	d.waitStatus(t, 60*time.Second, childrenUp)
	t.Logf("e2e: cgwd start to both CHILD_SAs established: %v", time.Since(start).Round(time.Millisecond))
	d.waitStatus(t, 60*time.Second, tunnelsUp)
	t.Logf("e2e: cgwd start to both tunnels UP (BGP Established): %v", time.Since(start).Round(time.Millisecond))
	t1, t2 := tunnelNames(t, d)
	var captured []string // every output, for the secrets check
	capture := func(s string) string { captured = append(captured, s); return s }

	t.Run("status", func(t *testing.T) {
		// Traffic first, so the counters are not zero.
		if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		// Both sessions are up, but AWS's lower MED on tunnel 1 may reach
		// the route table a moment after tunnel 2's path did.
		d.waitStatus(t, 20*time.Second, func(st *control.Status) error {
			if r := st.Connections[0].Routes; len(r) != 1 || len(r[0].Via) != 1 || r[0].Via[0] != t1 {
				return fmt.Errorf("routes %+v, want %s via %s", r, sim.DefaultVPC, t1)
			}
			return nil
		})
		var st control.Status
		if err := d.CtlJSON(&st, "status"); err != nil {
			t.Fatal(err)
		}
		js, _ := d.Ctl("status", "--json")
		capture(js)
		text, err := d.Ctl("status")
		if err != nil {
			t.Fatal(err)
		}
		capture(text)
		t.Logf("e2e: cgwctl status (healthy):\n%s", text)
		c := st.Connections[0]
		now := time.Now()
		for i, tn := range c.Tunnels {
			e := sim.Endpoints[i]
			if tn.State != "up" || tn.IKEState != "Established" || tn.ChildState != "Established" {
				t.Errorf("%s: state %s IKE %s CHILD %s", tn.Name, tn.State, tn.IKEState, tn.ChildState)
			}
			if tn.IKE == nil || len(tn.Children) != 1 {
				t.Fatalf("%s: SAs missing: %+v", tn.Name, tn)
			}
			ike, ch := tn.IKE, tn.Children[0]
			if len(ike.SPIi) != 16 || len(ike.SPIr) != 16 || len(ch.InSPI) != 8 || len(ch.OutSPI) != 8 {
				t.Errorf("%s: SPIs %q %q %q %q: want 16/8 hex digits", tn.Name, ike.SPIi, ike.SPIr, ch.InSPI, ch.OutSPI)
			}
			if ike.Algorithms == "" || ch.Algorithms == "" {
				t.Errorf("%s: algorithms missing: IKE %q CHILD %q", tn.Name, ike.Algorithms, ch.Algorithms)
			}
			for what, tm := range map[string][2]time.Time{"IKE": {ike.RekeyAt, ike.ExpiresAt}, "CHILD": {ch.RekeyAt, ch.ExpiresAt}} {
				if !tm[0].After(now) || !tm[1].After(tm[0]) {
					t.Errorf("%s: %s rekey %v / expiry %v: want future rekey before expiry", tn.Name, what, tm[0], tm[1])
				}
			}
			if !tn.NAT || !tn.Encap {
				t.Errorf("%s: nat_detected %v udp_encap %v; the simulator forces NAT-T", tn.Name, tn.NAT, tn.Encap)
			}
			if want := netip.AddrPortFrom(e.Outside, 4500).String(); tn.Remote != want || tn.Local != netip.AddrPortFrom(sim.CustPublicAddr, 4500).String() {
				t.Errorf("%s: endpoints %s <-> %s, want %s <-> %s", tn.Name, tn.Local, tn.Remote, sim.CustPublicAddr, want)
			}
			if tn.InsideLocal != e.CustInside.String() || tn.InsidePeer != e.AWSInside.String() {
				t.Errorf("%s: inside %s -> %s", tn.Name, tn.InsideLocal, tn.InsidePeer)
			}
			if tn.DPD.Interval() != 10*time.Second || tn.DPD.LastSeen.IsZero() {
				t.Errorf("%s: DPD %+v: want interval 10s and a last-seen time", tn.Name, tn.DPD)
			}
			if tn.Traffic.PacketsIn == 0 || tn.Traffic.PacketsOut == 0 || tn.Traffic.Drops == nil {
				t.Errorf("%s: traffic %+v: want packets both ways (BGP runs inside) and drop counters", tn.Name, tn.Traffic)
			}
			if b := tn.BGP; b == nil || b.State != "Established" || b.Neighbor != e.AWSInside.String() || b.PeerASN != 64512 || b.Received < 1 || b.Advertised < 1 {
				t.Errorf("%s: BGP %+v: want Established with %s AS 64512, prefixes received and advertised", tn.Name, b, e.AWSInside)
			}
			// The text view shows the same facts.
			for _, want := range []string{
				tn.Name + ": UP",
				ike.SPIi + "_i*", ike.SPIr + "_r",
				"in  " + ch.InSPI, "out " + ch.OutSPI,
				ike.Algorithms, ch.Algorithms,
				tn.Local + " <-> " + tn.Remote + ", NAT detected",
				"DPD      every 10s",
				fmt.Sprintf("BGP      %s AS 64512 Established", e.AWSInside),
			} {
				if !strings.Contains(text, want) {
					t.Errorf("status text lacks %q", want)
				}
			}
		}
		for _, want := range []string{"rekey in", "expires in", "traffic  in", "last inbound", "received 1 (accepted 1), advertised 1", "routes:",
			sim.DefaultVPC.String() + " via " + t1 + " (bgp"} {
			if !strings.Contains(text, want) {
				t.Errorf("status text lacks %q", want)
			}
		}
		if len(c.Routes) != 1 || c.Routes[0].Prefix != sim.DefaultVPC.String() || len(c.Routes[0].Via) != 1 || c.Routes[0].Via[0] != t1 {
			t.Errorf("routes %+v: want %s via %s (active-passive, tunnel 1 preferred)", c.Routes, sim.DefaultVPC, t1)
		}
	})

	t.Run("counters and metrics", func(t *testing.T) {
		st0, err := d.status()
		if err != nil {
			t.Fatal(err)
		}
		ms0, page := scrape(t, s)
		capture(page)
		for _, n := range []string{t1, t2} {
			if v, ok := metric(ms0, "cgw_tunnel_state", "tunnel", n); !ok || v != 1 {
				t.Errorf("cgw_tunnel_state{tunnel=%s} = %v (present %v), want 1", n, v, ok)
			}
			if v, ok := metric(ms0, "cgw_bgp_session_established", "tunnel", n); !ok || v != 1 {
				t.Errorf("cgw_bgp_session_established{tunnel=%s} = %v (present %v), want 1", n, v, ok)
			}
		}
		const count = 20
		if loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, count, 20*time.Millisecond); err != nil || loss > 0 {
			t.Fatalf("ping LAN -> VPC host: loss %.0f%%, err %v", loss*100, err)
		}
		st1, err := d.status()
		if err != nil {
			t.Fatal(err)
		}
		ms1, page := scrape(t, s)
		capture(page)
		a, b := findTunnel(st0, t1).Traffic, findTunnel(st1, t1).Traffic
		// 20 echo requests and replies of 84 bytes each cross tunnel 1.
		if b.PacketsOut-a.PacketsOut < count || b.PacketsIn-a.PacketsIn < count || b.BytesOut-a.BytesOut < count*84 || b.BytesIn-a.BytesIn < count*84 {
			t.Errorf("tunnel 1 traffic grew by %d/%d packets, %d/%d bytes (out/in); want at least %d packets and %d bytes each way",
				b.PacketsOut-a.PacketsOut, b.PacketsIn-a.PacketsIn, b.BytesOut-a.BytesOut, b.BytesIn-a.BytesIn, count, count*84)
		}
		c0, c1 := findTunnel(st0, t1).Children[0], findTunnel(st1, t1).Children[0]
		if c1.PacketsOut-c0.PacketsOut < count || c1.PacketsIn-c0.PacketsIn < count {
			t.Errorf("tunnel 1 CHILD SA counters grew by %d/%d packets", c1.PacketsOut-c0.PacketsOut, c1.PacketsIn-c0.PacketsIn)
		}
		for _, m := range []string{"cgw_tunnel_data_in_bytes_total", "cgw_tunnel_data_out_bytes_total", "cgw_tunnel_packets_in_total", "cgw_tunnel_packets_out_total"} {
			v0, ok0 := metric(ms0, m, "tunnel", t1)
			v1, ok1 := metric(ms1, m, "tunnel", t1)
			if !ok0 || !ok1 || v1-v0 < count {
				t.Errorf("%s{tunnel=%s}: %v -> %v, want an increase of at least %d", m, t1, v0, v1, count)
			}
		}
		if v, _ := metric(ms1, "cgw_tunnel_data_out_bytes_total", "tunnel", t1); v < float64(b.BytesOut-200) {
			t.Errorf("cgw_tunnel_data_out_bytes_total %v lags the status (%d)", v, b.BytesOut)
		}
		if v, ok := metric(ms1, "cgw_routes_installed"); !ok || v != 1 {
			t.Errorf("cgw_routes_installed = %v (present %v), want 1", v, ok)
		}
		t.Logf("e2e: tunnel 1 after %d pings: in %d B / %d pkts, out %d B / %d pkts", count, b.BytesIn, b.PacketsIn, b.BytesOut, b.PacketsOut)
	})

	t.Run("rekey", func(t *testing.T) {
		st0, err := d.status()
		if err != nil {
			t.Fatal(err)
		}
		old := spisOf(t, st0, t1)
		if out, err := d.Ctl("tunnel", "rekey", t1); err != nil {
			t.Fatal(err)
		} else {
			capture(out)
		}
		st := d.waitStatus(t, 20*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if len(tn.Children) != 1 || tn.Children[0].InSPI == old.ChildIn || tn.ChildState != "Established" {
				return fmt.Errorf("CHILD SA not rekeyed yet: %s %+v", tn.ChildState, tn.Children)
			}
			return nil
		}))
		afterChild := spisOf(t, st, t1)
		if afterChild.IKEi != old.IKEi || afterChild.ChildOut == old.ChildOut {
			t.Errorf("CHILD rekey: %+v -> %+v: want new CHILD SPIs on the same IKE SA", old, afterChild)
		}
		Eventually(t, 10*time.Second, func() error {
			sa, err := swanSAFor(s, 1, findTunnel(st, t1).IKE)
			if err != nil {
				return err
			}
			_, err = swanChildFor(sa, findTunnel(st, t1).Children[0])
			return err
		})
		if _, err := d.Ctl("tunnel", "rekey", "--ike", t1); err != nil {
			t.Fatal(err)
		}
		st = d.waitStatus(t, 20*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if tn.IKE == nil || tn.IKE.SPIi == old.IKEi || tn.IKEState != "Established" || tn.ChildState != "Established" {
				return fmt.Errorf("IKE SA not rekeyed yet: %s %+v", tn.IKEState, tn.IKE)
			}
			return nil
		}))
		afterIKE := spisOf(t, st, t1)
		if afterIKE.IKEi == old.IKEi || afterIKE.IKEr == old.IKEr {
			t.Errorf("IKE rekey: IKE SPIs %s/%s unchanged", afterIKE.IKEi, afterIKE.IKEr)
		}
		if afterIKE.ChildIn != afterChild.ChildIn {
			t.Errorf("IKE rekey replaced the CHILD SA (%s -> %s); RFC 7296 2.18 moves it to the new IKE SA", afterChild.ChildIn, afterIKE.ChildIn)
		}
		Eventually(t, 10*time.Second, func() error {
			_, err := swanSAFor(s, 1, findTunnel(st, t1).IKE)
			return err
		})
		t.Logf("e2e: rekey: CHILD %s/%s -> %s/%s, IKE %s_i -> %s_i", old.ChildIn, old.ChildOut, afterChild.ChildIn, afterChild.ChildOut, old.IKEi, afterIKE.IKEi)
		pingInside(t, s, 1)
	})

	t.Run("tunnel down and up", func(t *testing.T) {
		ms0, _ := scrape(t, s)
		labels0 := seriesLabels(ms0, "cgw_tunnel_state", t1)
		out, err := d.Ctl("tunnel", "down", t1)
		if err != nil {
			t.Fatal(err)
		}
		capture(out)
		down := time.Now()
		st := d.waitStatus(t, 10*time.Second, func(st *control.Status) error {
			tn := findTunnel(st, t1)
			if tn.State != "down" || tn.IKEState != "Down" || len(tn.Children) != 0 {
				return fmt.Errorf("%s: %s IKE %s, %d CHILD SAs", t1, tn.State, tn.IKEState, len(tn.Children))
			}
			if tn.BGP == nil || tn.BGP.State == "Established" {
				return fmt.Errorf("%s: BGP still %+v", t1, tn.BGP)
			}
			r := st.Connections[0].Routes
			if len(r) != 1 || len(r[0].Via) != 1 || r[0].Via[0] != t2 {
				return fmt.Errorf("routes %+v: want %s via %s only", r, sim.DefaultVPC, t2)
			}
			return nil
		})
		t.Logf("e2e: tunnel down: SAs deleted, BGP down and routes on %s after %v", t2, time.Since(down).Round(time.Millisecond))
		if tn := findTunnel(st, t2); tn.State != "up" {
			t.Errorf("%s went %s when %s was taken down", t2, tn.State, t1)
		}
		Eventually(t, 5*time.Second, func() error {
			sas, err := s.ListSAs(1)
			if err != nil {
				return err
			}
			if len(sas) != 0 {
				return fmt.Errorf("AWS endpoint 1 still has %d IKE SAs after tunnel down: %+v", len(sas), sas)
			}
			return nil
		})
		dev := findTunnel(st, t2).Device
		if out, err := s.Exec(sim.Cust, "ip", "route", "show", "table", "199", sim.DefaultVPC.String()); err != nil || !strings.Contains(out, "dev "+dev) {
			t.Errorf("kernel route to %s is %q (err %v), want dev %s", sim.DefaultVPC, out, err, dev)
		}
		ms, page := scrape(t, s)
		capture(page)
		if v, ok := metric(ms, "cgw_tunnel_state", "tunnel", t1); !ok || v != 0 {
			t.Errorf("cgw_tunnel_state{tunnel=%s} = %v (present %v), want 0 for a configured tunnel that is down", t1, v, ok)
		}
		if v, ok := metric(ms, "cgw_tunnel_state", "tunnel", t2); !ok || v != 1 {
			t.Errorf("cgw_tunnel_state{tunnel=%s} = %v (present %v), want 1", t2, v, ok)
		}
		if v, ok := metric(ms, "cgw_tunnel_data_in_bytes_total", "tunnel", t1); !ok || v == 0 {
			t.Errorf("cgw_tunnel_data_in_bytes_total{tunnel=%s} = %v (present %v) while down: the counter must survive", t1, v, ok)
		}
		if l := seriesLabels(ms, "cgw_tunnel_state", t1); l != labels0 {
			t.Errorf("cgw_tunnel_state of %s changed labels when it went down (%s -> %s): Prometheus sees a new series", t1, labels0, l)
		}
		// Down means down: the retry backoff (5 s first) must not bring it back.
		time.Sleep(7 * time.Second)
		if tn := findTunnel(d.waitStatus(t, time.Second, func(*control.Status) error { return nil }), t1); tn.IKEState != "Down" {
			t.Errorf("%s came back by itself (IKE %s) after tunnel down", t1, tn.IKEState)
		}

		out, err = d.Ctl("tunnel", "up", t1)
		if err != nil {
			t.Fatal(err)
		}
		capture(out)
		up := time.Now()
		d.waitStatus(t, 20*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if tn.ChildState != "Established" {
				return fmt.Errorf("CHILD %s", tn.ChildState)
			}
			return nil
		}))
		if err := swanUp(s, 1); err != nil {
			t.Error(err)
		}
		pingInside(t, s, 1)
		d.waitStatus(t, 60*time.Second, func(st *control.Status) error {
			if err := tunnelsUp(st); err != nil {
				return err
			}
			r := st.Connections[0].Routes
			if len(r) != 1 || len(r[0].Via) != 1 || r[0].Via[0] != t1 {
				return fmt.Errorf("routes %+v: want %s via %s again", r, sim.DefaultVPC, t1)
			}
			return nil
		})
		t.Logf("e2e: tunnel up: BGP Established and routes back on %s after %v", t1, time.Since(up).Round(time.Millisecond))
	})

	t.Run("no secrets", func(t *testing.T) {
		diag, _, _ := d.ctlExit("diagnose")
		capture(diag)
		ms, page := scrape(t, s)
		capture(page)
		_ = ms
		log := readLog(t, d)
		if !strings.Contains(log, "level=DEBUG") {
			t.Errorf("cgwd logged no DEBUG line although log.level is debug")
		}
		psks := []string{sim.Endpoints[0].DefaultPSK, sim.Endpoints[1].DefaultPSK}
		assertNoSecrets(t, "cgwd's log", log, psks...)
		for i, c := range captured {
			assertNoSecrets(t, fmt.Sprintf("cgwctl/metrics output #%d", i), c, psks...)
		}
		t.Logf("e2e: no PSK in %d KiB of debug log and %d captured outputs (status, status --json, metrics, diagnose, tunnel verbs)", len(log)/1024, len(captured))
	})
}

// seriesLabels returns the label set of tunnel's series of name as text.
func seriesLabels(ms []metricSample, name, tunnel string) string {
	for _, m := range ms {
		if m.Name == name && m.Labels["tunnel"] == tunnel {
			keys := make([]string, 0, len(m.Labels))
			for k := range m.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var b strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&b, "%s=%q,", k, m.Labels[k])
			}
			return b.String()
		}
	}
	return "(missing)"
}

// editConfigFile rewrites cgwd's configuration file through edit.
func editConfigFile(t testing.TB, d *Cgwd, edit func(doc map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Config, []byte(editYAML(t, string(b), edit)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// setDPD sets tunnel i's (0-based) dpd.interval in a decoded configuration.
func setDPD(t testing.TB, i int, interval string) func(doc map[string]any) {
	return func(doc map[string]any) {
		yamlTunnels(t, doc)[i]["dpd"] = map[string]any{"interval": interval}
	}
}

// TestOpsReload changes only tunnel 2's DPD interval, once applied by
// SIGHUP and once by cgwctl reload: tunnel 2 is renegotiated with the new
// setting and tunnel 1 keeps its SAs (same SPIs). An invalid edit is
// refused with the field named, by either path, and changes nothing.
func TestOpsReload(t *testing.T) {
	s := NewSim(t, sim.Options{Routing: sim.RoutingStatic})
	d := StartCgwd(t, s, sim.CgwdOptions{})
	st := d.waitStatus(t, 30*time.Second, childrenUp)
	t1, t2 := tunnelNames(t, d)
	keep := spisOf(t, st, t1)

	// reloaded waits until tunnel 2 runs with interval and checks tunnel 1
	// was left alone.
	reloaded := func(t *testing.T, old spiState, interval time.Duration) spiState {
		t.Helper()
		st := d.waitStatus(t, 20*time.Second, func(st *control.Status) error {
			tn := findTunnel(st, t2)
			if tn == nil || tn.DPD.Interval() != interval || tn.ChildState != "Established" || tn.IKE == nil || tn.IKE.SPIi == old.IKEi {
				return fmt.Errorf("%s not renegotiated with dpd %v yet: %+v", t2, interval, tn)
			}
			return childrenUp(st)
		})
		if got := spisOf(t, st, t1); got != keep {
			t.Errorf("reload disturbed %s, whose config did not change: SPIs %+v -> %+v", t1, keep, got)
		}
		if tn := findTunnel(st, t1); tn.DPD.Interval() != 10*time.Second {
			t.Errorf("%s dpd interval %v, want 10s", t1, tn.DPD.Interval())
		}
		if err := swanUp(s, 2); err != nil {
			t.Error(err)
		}
		pingInside(t, s, 1)
		pingInside(t, s, 2)
		return spisOf(t, st, t2)
	}

	t2spi := spisOf(t, st, t2)
	t.Run("SIGHUP", func(t *testing.T) {
		editConfigFile(t, d, setDPD(t, 1, "15s"))
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		t2spi = reloaded(t, t2spi, 15*time.Second)
		if len(logLines(t, d, "reload done", t2)) == 0 {
			t.Errorf("cgwd's log has no \"reload done\" line naming %s", t2)
		}
	})

	t.Run("cgwctl reload", func(t *testing.T) {
		editConfigFile(t, d, setDPD(t, 1, "20s"))
		out, err := d.Ctl("reload")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("e2e: cgwctl reload:\n%s", out)
		if !strings.Contains(out, t2) || strings.Contains(out, t1+" ") || strings.Contains(out, t1+":") {
			t.Errorf("reload output should name the change to %s only:\n%s", t2, out)
		}
		t2spi = reloaded(t, t2spi, 20*time.Second)

		out, err = d.Ctl("reload")
		if err != nil || !strings.Contains(out, "no changes") {
			t.Errorf("reload of an unchanged file: %q, %v; want \"no changes\"", out, err)
		}
	})

	t.Run("invalid edit", func(t *testing.T) {
		good, err := os.ReadFile(d.Config)
		if err != nil {
			t.Fatal(err)
		}
		editConfigFile(t, d, setDPD(t, 1, "banana"))
		stdout, stderr, code := d.ctlExit("reload")
		t.Logf("e2e: cgwctl reload of an invalid file: exit %d: %s", code, strings.TrimSpace(stderr))
		if code == 0 {
			t.Errorf("cgwctl reload accepted an invalid file: %s", stdout)
		}
		const field = "connections[0].tunnels[1].dpd.interval"
		if !strings.Contains(stderr, field) || !strings.Contains(stderr, "banana") {
			t.Errorf("reload error does not name the field %s and the bad value: %q", field, stderr)
		}
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		Eventually(t, 10*time.Second, func() error {
			if len(logLines(t, d, "reload failed", field)) == 0 {
				return fmt.Errorf("no \"reload failed\" log line naming %s after SIGHUP", field)
			}
			return nil
		})
		time.Sleep(time.Second) // let anything that would (wrongly) restart start
		st, err := d.status()
		if err != nil {
			t.Fatal(err)
		}
		if got := spisOf(t, st, t1); got != keep {
			t.Errorf("invalid reload changed %s: %+v -> %+v", t1, keep, got)
		}
		if got := spisOf(t, st, t2); got != t2spi {
			t.Errorf("invalid reload changed %s: %+v -> %+v", t2, t2spi, got)
		}
		if tn := findTunnel(st, t2); tn.DPD.Interval() != 20*time.Second {
			t.Errorf("invalid reload changed %s's dpd interval to %v", t2, tn.DPD.Interval())
		}
		assertAlive(t, d)
		// Restore the good file: a reload now finds nothing to do.
		if err := os.WriteFile(d.Config, good, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := d.Ctl("reload"); err != nil || !strings.Contains(out, "no changes") {
			t.Errorf("reload after restoring the file: %q, %v; want \"no changes\"", out, err)
		}
	})
}

// diagnose runs `cgwctl diagnose --json TUNNEL` and returns the findings
// and the exit status.
func (c *Cgwd) diagnose(t testing.TB, tunnel string) (*control.Diagnosis, int, string) {
	t.Helper()
	stdout, stderr, code := c.ctlExit("diagnose", "--json", tunnel)
	var dg control.Diagnosis
	if err := json.Unmarshal([]byte(stdout), &dg); err != nil {
		t.Fatalf("cgwctl diagnose --json %s: exit %d: %v: %q %s", tunnel, code, err, stdout, stderr)
	}
	return &dg, code, stdout
}

// finding returns the finding of check for tunnel, or nil.
func finding(dg *control.Diagnosis, tunnel, check string) *control.Finding {
	for i, f := range dg.Findings {
		if f.Tunnel == tunnel && f.Check == check {
			return &dg.Findings[i]
		}
	}
	return nil
}

// wantFinding checks that check reported sev with summary and fix each
// containing the given words (case-insensitive).
func wantFinding(t testing.TB, dg *control.Diagnosis, tunnel, check string, sev control.Severity, summaryHas, fixHas []string) {
	t.Helper()
	f := finding(dg, tunnel, check)
	if f == nil {
		t.Errorf("diagnose %s: no %q finding among %+v", tunnel, check, dg.Findings)
		return
	}
	if f.Severity != sev {
		t.Errorf("diagnose %s: %s is %s, want %s: %+v", tunnel, check, f.Severity, sev, *f)
	}
	for _, w := range summaryHas {
		if !strings.Contains(strings.ToLower(f.Summary+" "+strings.Join(f.Evidence, " ")), strings.ToLower(w)) {
			t.Errorf("diagnose %s: %s summary/evidence lacks %q: %q %q", tunnel, check, w, f.Summary, f.Evidence)
		}
	}
	for _, w := range fixHas {
		if !strings.Contains(strings.ToLower(f.Fix), strings.ToLower(w)) {
			t.Errorf("diagnose %s: %s fix lacks %q: %q", tunnel, check, w, f.Fix)
		}
	}
}

// TestOpsDiagnose breaks the simulator in the ways AWS's troubleshooting
// guides list and checks `cgwctl diagnose` names each with the right check
// and fix, exits 3 on a broken tunnel and 0 on a healthy one. Tunnel 1
// starts with a wrong PSK and tunnel 2 with UDP 500/4500 blocked; then
// tunnel 1 is fixed (healthy) while tunnel 2 gets a proposal mismatch;
// finally AWS stops BGP on tunnel 1 (its routes disappear).
func TestOpsDiagnose(t *testing.T) {
	o := sim.Options{}
	s := NewSim(t, o)
	cfg, err := s.CgwdConfig(sim.CgwdOptions{LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	// Tunnel 2 offers one suite, so that narrowing AWS to another (the
	// proposal mismatch below) leaves nothing in common: the default
	// proposals contain every algorithm AWS accepts.
	cfg = editYAML(t, cfg, func(doc map[string]any) {
		tn := yamlTunnels(t, doc)[1]
		tn["ike_proposals"] = []string{offerIKE}
		tn["esp_proposals"] = []string{offerESP}
	})
	if err := s.SetPSK(1, wrongPSK); err != nil {
		t.Fatal(err)
	}
	if err := s.BlockEndpoint(2); err != nil {
		t.Fatal(err)
	}
	d := StartCgwdYAML(t, s, sim.Cust, cfg)
	t1, t2 := tunnelNames(t, d)
	var outputs []string

	t.Run("wrong PSK", func(t *testing.T) {
		d.waitStatus(t, 20*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if tn.LastError == "" {
				return fmt.Errorf("no failure yet")
			}
			return nil
		}))
		dg, code, js := d.diagnose(t, t1)
		outputs = append(outputs, js)
		if code != 3 {
			t.Errorf("diagnose exit %d, want 3 for a broken tunnel", code)
		}
		wantFinding(t, dg, t1, "ike-failure", control.SeverityError, []string{"AUTHENTICATION_FAILED"}, []string{"pre-shared key", sim.Endpoints[0].Outside.String()})
		wantFinding(t, dg, t1, "tunnel", control.SeverityError, nil, nil)
		wantFinding(t, dg, t1, "ike-ports", control.SeverityOK, nil, nil)
		text, _, _ := d.ctlExit("diagnose", t1)
		outputs = append(outputs, text)
		t.Logf("e2e: cgwctl diagnose %s (AWS expects another PSK):\n%s", t1, text)
	})

	t.Run("UDP 500/4500 blocked", func(t *testing.T) {
		// No need to wait for IKE to give up: requests without any answer
		// are the evidence.
		dg, code, js := d.diagnose(t, t2)
		outputs = append(outputs, js)
		if code != 3 {
			t.Errorf("diagnose exit %d, want 3", code)
		}
		wantFinding(t, dg, t2, "ike-ports", control.SeverityError, []string{"never answered", sim.Endpoints[1].Outside.String()}, []string{"UDP 500 and 4500", sim.Endpoints[1].Outside.String()})
		if f := finding(dg, t2, "tunnel"); f == nil || f.Severity == control.SeverityOK {
			t.Errorf("tunnel finding %+v, want not OK", f)
		}
		text, _, _ := d.ctlExit("diagnose", t2)
		outputs = append(outputs, text)
		t.Logf("e2e: cgwctl diagnose %s (UDP 500/4500 to AWS blocked):\n%s", t2, text)
	})

	t.Run("healthy", func(t *testing.T) {
		if err := s.SetPSK(1, sim.Endpoints[0].DefaultPSK); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Ctl("tunnel", "up", t1); err != nil { // skip the retry backoff
			t.Fatal(err)
		}
		d.waitStatus(t, 60*time.Second, tunnelCond(t1, func(tn *control.Tunnel) error {
			if tn.State != "up" {
				return fmt.Errorf("%s %s (BGP %+v)", tn.Name, tn.State, tn.BGP)
			}
			return nil
		}))
		// Traffic during the measurement window, for the direction check.
		if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		type pingResult struct {
			loss float64
			err  error
		}
		pinger := make(chan pingResult, 1)
		go func() {
			loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 30, 100*time.Millisecond)
			pinger <- pingResult{loss, err}
		}()
		dg, code, js := d.diagnose(t, t1)
		outputs = append(outputs, js)
		if r := <-pinger; r.err != nil || r.loss > 0 {
			t.Errorf("ping LAN -> VPC during diagnose: loss %.0f%%, err %v", r.loss*100, r.err)
		}
		if code != 0 {
			t.Errorf("diagnose exit %d, want 0 for a healthy tunnel: %+v", code, dg.Findings)
		}
		for _, f := range dg.Findings {
			if f.Severity == control.SeverityError || f.Severity == control.SeverityWarn {
				t.Errorf("healthy tunnel: %s %s: %s", f.Check, f.Severity, f.Summary)
			}
		}
		for _, c := range []string{"tunnel", "ike-ports", "lifetimes", "dpd", "bgp", "routes", "direction", "drops", "mtu"} {
			wantFinding(t, dg, t1, c, control.SeverityOK, nil, nil)
		}
		// The wrong PSK before is history now: at most information.
		if f := finding(dg, t1, "ike-failure"); f == nil || (f.Severity != control.SeverityOK && f.Severity != control.SeverityInfo) {
			t.Errorf("ike-failure finding on the repaired tunnel: %+v, want ok or info", f)
		}
		text, _, _ := d.ctlExit("diagnose", t1)
		outputs = append(outputs, text)
		t.Logf("e2e: cgwctl diagnose %s (healthy):\n%s", t1, text)
	})

	t.Run("proposal mismatch", func(t *testing.T) {
		if err := s.UnblockEndpoint(2); err != nil {
			t.Fatal(err)
		}
		if err := s.SetProposals(2, []string{strictIKE}, []string{strictESP}); err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		// Abandon the unanswered IKE_SA_INIT and start over at once.
		if _, err := d.Ctl("tunnel", "down", t2); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Ctl("tunnel", "up", t2); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 20*time.Second, tunnelCond(t2, func(tn *control.Tunnel) error {
			if !strings.Contains(tn.LastError, "NO_PROPOSAL_CHOSEN") || !tn.LastErrorAt.After(before) {
				return fmt.Errorf("last error %q", tn.LastError)
			}
			return nil
		}))
		dg, code, js := d.diagnose(t, t2)
		outputs = append(outputs, js)
		if code != 3 {
			t.Errorf("diagnose exit %d, want 3", code)
		}
		wantFinding(t, dg, t2, "ike-failure", control.SeverityError, []string{"NO_PROPOSAL_CHOSEN", "our IKE proposals"}, []string{"ike_proposals", "esp_proposals"})
		wantFinding(t, dg, t2, "ike-ports", control.SeverityOK, nil, nil)
		t.Logf("e2e: diagnose %s (proposal mismatch): %s", t2, finding(dg, t2, "ike-failure").Summary)
	})

	t.Run("no route from AWS", func(t *testing.T) {
		// AWS stops advertising the VPC CIDR on tunnel 1 (a virtual private
		// gateway detached from its VPC, a TGW route table without
		// propagation): BGP stays up, nothing is left to route.
		if _, err := s.Birdc(sim.AWS1, "disable", "vpc_cidrs"); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 20*time.Second, func(st *control.Status) error {
			tn := findTunnel(st, t1)
			if tn.BGP == nil || tn.BGP.State != "Established" || tn.BGP.Received != 0 || len(st.Connections[0].Routes) != 0 {
				return fmt.Errorf("%s BGP %+v, routes %+v", t1, tn.BGP, st.Connections[0].Routes)
			}
			return nil
		})
		dg, code, js := d.diagnose(t, t1)
		outputs = append(outputs, js)
		wantFinding(t, dg, t1, "routes", control.SeverityError, []string{"advertises no prefix"}, []string{"attached to the VPC", "propagate"})
		if code != 3 {
			t.Errorf("diagnose exit %d with an error finding, want 3", code)
		}
		wantFinding(t, dg, t1, "bgp", control.SeverityOK, nil, nil)
		t.Logf("e2e: diagnose %s (AWS advertises no route): exit %d: %s", t1, code, finding(dg, t1, "routes").Summary)
		if _, err := s.Birdc(sim.AWS1, "enable", "vpc_cidrs"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no BGP from AWS", func(t *testing.T) {
		if err := s.DisableBGP(1); err != nil {
			t.Fatal(err)
		}
		d.waitStatus(t, 20*time.Second, func(st *control.Status) error {
			tn := findTunnel(st, t1)
			if tn.BGP == nil || tn.BGP.State == "Established" || len(st.Connections[0].Routes) != 0 {
				return fmt.Errorf("%s BGP %+v, routes %+v", t1, tn.BGP, st.Connections[0].Routes)
			}
			return nil
		})
		dg, code, js := d.diagnose(t, t1)
		outputs = append(outputs, js)
		if code != 3 {
			t.Errorf("diagnose exit %d, want 3", code)
		}
		wantFinding(t, dg, t1, "tunnel", control.SeverityOK, nil, nil)
		// The evidence carries AWS's reason, whichever state GoBGP is in.
		wantFinding(t, dg, t1, "bgp", control.SeverityError, []string{"Cease", "Administrative Shutdown"}, nil)
		if f := finding(dg, t1, "bgp"); f != nil && f.Fix == "" {
			t.Errorf("bgp finding without a fix: %+v", *f)
		}
		if f := finding(dg, t1, "routes"); f == nil || f.Severity == control.SeverityOK {
			t.Errorf("routes finding with BGP down: %+v", f)
		}
		text, _, _ := d.ctlExit("diagnose", t1)
		outputs = append(outputs, text)
		t.Logf("e2e: cgwctl diagnose %s (AWS shut its BGP session):\n%s", t1, text)
	})

	t.Run("no secrets", func(t *testing.T) {
		psks := []string{sim.Endpoints[0].DefaultPSK, sim.Endpoints[1].DefaultPSK, wrongPSK}
		assertNoSecrets(t, "cgwd's log", readLog(t, d), psks...)
		for i, o := range outputs {
			assertNoSecrets(t, fmt.Sprintf("diagnose output #%d", i), o, psks...)
		}
	})
}
