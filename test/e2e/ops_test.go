//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
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
	"strings"
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
