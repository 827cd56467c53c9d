//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// multiConns is the number of connections of TestMultiConnections
// (CGW_E2E_MULTI_CONNS overrides it; the 100-connection figures are the
// scale benchmark's).
func multiConns(t *testing.T) int {
	n := 20
	if v := os.Getenv("CGW_E2E_MULTI_CONNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 3 {
			t.Fatalf("CGW_E2E_MULTI_CONNS=%q: want a number of connections >= 3", v)
		}
	}
	return n
}

// TestMultiConnections: one cgwd with 19 of 20 VPN connections (38
// tunnels) against one strongSwan and one BIRD serving them all, each
// connection with its own customer ASN and its own advertise list. All
// tunnels come up with BGP; BIRD sees on each session exactly that
// connection's prefixes with its ASN as the AS path (and accepts the
// session only with that ASN); a ping crosses each connection to its own
// VPC prefix. A reload then removes connection 1 and adds connection 20:
// every other tunnel keeps its CHILD SA (same SPIs) and gets BGP back.
func TestMultiConnections(t *testing.T) {
	n := multiConns(t)
	s := NewSim(t, sim.Options{AWS: sim.AWSNone})
	m, err := s.StartMulti(sim.MultiOptions{Connections: n})
	if err != nil {
		t.Fatal(err)
	}
	first := make([]int, 0, n-1)
	for k := 1; k < n; k++ {
		first = append(first, k)
	}
	d := StartCgwdYAML(t, s, sim.Cust, m.CgwdConfig(sim.MultiCgwdOptions{Conns: first}))
	start := time.Now()
	st := d.waitStatus(t, 150*time.Second, tunnelsUp)
	t.Logf("e2e: %d tunnels up (CHILD SA and BGP) %.1fs after start", 2*(n-1), time.Since(start).Seconds())
	if got := countTunnels(st); got != 2*(n-1) {
		t.Fatalf("status lists %d tunnels, want %d", got, 2*(n-1))
	}
	checkMultiBIRD(t, m, first)
	for _, k := range first {
		c := m.Conns[k-1]
		if err := s.WaitPing(sim.LAN, c.VPCHost, 20*time.Second); err != nil {
			t.Fatalf("connection %s: LAN -> its VPC %v: %v", c.Name, c.VPCHost, err)
		}
	}
	before := childSPIs(st)

	next := make([]int, 0, n-1)
	for k := 2; k <= n; k++ {
		next = append(next, k)
	}
	if err := os.WriteFile(d.Config, []byte(m.CgwdConfig(sim.MultiCgwdOptions{Conns: next})), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := d.Ctl("reload")
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	t.Logf("e2e: reload removing %s, adding %s:\n%s", m.Conns[0].Name, m.Conns[n-1].Name, out)
	st = d.waitStatus(t, 90*time.Second, tunnelsUp)
	after := childSPIs(st)
	for _, c := range m.Conns[0].Tunnels {
		if _, ok := after[c.Name]; ok {
			t.Errorf("tunnel %s of the removed connection is still listed", c.Name)
		}
	}
	for _, c := range m.Conns[n-1].Tunnels {
		if after[c.Name] == "" {
			t.Errorf("tunnel %s of the added connection has no CHILD SA", c.Name)
		}
	}
	kept := 0
	for name, spis := range before {
		if strings.HasPrefix(name, m.Conns[0].Name+"-") {
			continue
		}
		kept++
		if after[name] != spis {
			t.Errorf("tunnel %s: CHILD SA %s before the reload, %s after: an unchanged connection was touched", name, spis, after[name])
		}
	}
	if kept != 2*(n-2) {
		t.Errorf("%d unchanged tunnels compared, want %d", kept, 2*(n-2))
	}
	checkMultiBIRD(t, m, next)
	if err := s.WaitPing(sim.LAN, m.Conns[n-1].VPCHost, 20*time.Second); err != nil {
		t.Fatalf("added connection: LAN -> its VPC: %v", err)
	}
	// The removed connection's sessions are down on BIRD's side.
	Eventually(t, 60*time.Second, func() error {
		b, err := m.BGP(1, 0)
		if err != nil {
			return err
		}
		if b.Established() {
			return fmt.Errorf("BIRD still has an established session for the removed connection")
		}
		return nil
	})
}

// checkMultiBIRD waits until BIRD has an established session on both
// tunnels of each listed connection and, on each, received exactly that
// connection's advertise list, originated by its own ASN (tunnel 2 of
// active-passive prepends the same ASN).
func checkMultiBIRD(t *testing.T, m *sim.Multi, conns []int) {
	t.Helper()
	Eventually(t, 90*time.Second, func() error {
		for _, k := range conns {
			c := m.Conns[k-1]
			for i := range 2 {
				b, err := m.BGP(k, i)
				if err != nil {
					return err
				}
				if !b.Established() {
					return fmt.Errorf("BIRD: %s is %s (%s)", c.Tunnels[i].Name, b.BGPState, b.LastError)
				}
				got, err := m.Received(k, i)
				if err != nil {
					return err
				}
				if len(got) != len(c.Advertise) {
					return fmt.Errorf("BIRD: %s received %v, want exactly %v", c.Tunnels[i].Name, got, c.Advertise)
				}
				for _, p := range c.Advertise {
					path, ok := got[p]
					if !ok {
						return fmt.Errorf("BIRD: %s did not receive %v (got %v)", c.Tunnels[i].Name, p, got)
					}
					asns := strings.Fields(path)
					if len(asns) == 0 {
						return fmt.Errorf("BIRD: %s: %v has an empty AS path", c.Tunnels[i].Name, p)
					}
					for _, a := range asns {
						if a != strconv.FormatUint(uint64(c.ASN), 10) {
							return fmt.Errorf("BIRD: %s: %v has AS path %q, want only AS %d (the connection's own ASN)", c.Tunnels[i].Name, p, path, c.ASN)
						}
					}
				}
			}
		}
		return nil
	})
}

func countTunnels(st *control.Status) int {
	n := 0
	for _, c := range st.Connections {
		n += len(c.Tunnels)
	}
	return n
}

// childSPIs maps each tunnel to its CHILD SAs' SPIs.
func childSPIs(st *control.Status) map[string]string {
	out := map[string]string{}
	for _, c := range st.Connections {
		for _, t := range c.Tunnels {
			var spis []string
			for _, ch := range t.Children {
				spis = append(spis, ch.InSPI+"/"+ch.OutSPI)
			}
			out[t.Name] = strings.Join(spis, ",")
		}
	}
	return out
}
