//go:build e2e

package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/test/sim"
)

// proposalRow is one line of the proposal matrix (issue 3): the single IKE
// and ESP proposal both sides are configured with, and what each side must
// report once it negotiated.
type proposalRow struct {
	IKE, ESP string
	// cgwd's status strings: the IKE SA, the CHILD SA created inside
	// IKE_AUTH (no KE payload there, so no DH group, RFC 7296 1.2) and the
	// CHILD SA after a rekey with PFS (RFC 7296 1.3.1).
	CgwdChild, CgwdChildPFS string
	// strongSwan's view (swanctl --list-sas), see swanIKE/swanChild.
	SwanIKE, SwanESP, SwanPFS string
}

// proposalMatrix holds the five rows issue 3 asks for, plus one that mixes
// a GCM IKE SA with a CBC/HMAC CHILD SA and different DH groups per phase.
var proposalMatrix = []proposalRow{
	{IKE: "aes128-sha1-modp1024", ESP: "aes128-sha1-modp1024", CgwdChild: "aes128-sha1", CgwdChildPFS: "aes128-sha1-modp1024",
		SwanIKE: "AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", SwanESP: "AES_CBC_128/HMAC_SHA1_96", SwanPFS: "MODP_1024"},
	{IKE: "aes256-sha256-modp2048", ESP: "aes256-sha256-modp2048", CgwdChild: "aes256-sha256", CgwdChildPFS: "aes256-sha256-modp2048",
		SwanIKE: "AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", SwanESP: "AES_CBC_256/HMAC_SHA2_256_128", SwanPFS: "MODP_2048"},
	{IKE: "aes128gcm16-prfsha256-ecp256", ESP: "aes128gcm16-ecp256", CgwdChild: "aes128gcm16", CgwdChildPFS: "aes128gcm16-ecp256",
		SwanIKE: "AES_GCM_16_128/-/PRF_HMAC_SHA2_256/ECP_256", SwanESP: "AES_GCM_16_128/-", SwanPFS: "ECP_256"},
	{IKE: "aes256gcm16-prfsha384-ecp384", ESP: "aes256gcm16-ecp384", CgwdChild: "aes256gcm16", CgwdChildPFS: "aes256gcm16-ecp384",
		SwanIKE: "AES_GCM_16_256/-/PRF_HMAC_SHA2_384/ECP_384", SwanESP: "AES_GCM_16_256/-", SwanPFS: "ECP_384"},
	{IKE: "aes256-sha512-modp4096", ESP: "aes256-sha512-modp4096", CgwdChild: "aes256-sha512", CgwdChildPFS: "aes256-sha512-modp4096",
		SwanIKE: "AES_CBC_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/MODP_4096", SwanESP: "AES_CBC_256/HMAC_SHA2_512_256", SwanPFS: "MODP_4096"},
	{IKE: "aes256gcm16-prfsha384-ecp384", ESP: "aes128-sha1-modp2048", CgwdChild: "aes128-sha1", CgwdChildPFS: "aes128-sha1-modp2048",
		SwanIKE: "AES_GCM_16_256/-/PRF_HMAC_SHA2_384/ECP_384", SwanESP: "AES_CBC_128/HMAC_SHA1_96", SwanPFS: "MODP_2048"},
}

// swanIKE renders charon's negotiated IKE algorithms as "ENCR_BITS/INTEG/PRF/DH".
func swanIKE(sa sim.IKESA) string {
	return fmt.Sprintf("%s_%d/%s/%s/%s", sa.EncrAlg, sa.EncrKeySize, orNone(sa.IntegAlg), sa.PRFAlg, sa.DHGroup)
}

// swanChild renders charon's CHILD SA algorithms as "ENCR_BITS/INTEG".
func swanChild(c sim.ChildSA) string {
	return fmt.Sprintf("%s_%d/%s", c.EncrAlg, c.EncrKeySize, orNone(c.IntegAlg))
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// editYAML decodes a cgwd configuration, lets edit change it and encodes it.
func editYAML(t testing.TB, doc string, edit func(doc map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("cgwd config is not YAML: %v\n%s", err, doc)
	}
	edit(m)
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// yamlTunnels returns the tunnel maps of the first connection of doc.
func yamlTunnels(t testing.TB, doc map[string]any) []map[string]any {
	t.Helper()
	conns, _ := doc["connections"].([]any)
	if len(conns) == 0 {
		t.Fatalf("config has no connections: %v", doc)
	}
	c, _ := conns[0].(map[string]any)
	ts, _ := c["tunnels"].([]any)
	var out []map[string]any
	for _, x := range ts {
		m, ok := x.(map[string]any)
		if !ok {
			t.Fatalf("tunnel entry is %T", x)
		}
		out = append(out, m)
	}
	return out
}

// matrixConfig is the simulation's cgwd configuration with tunnel i
// offering exactly rows[i]'s proposals.
func matrixConfig(t testing.TB, s *sim.Sim, rows [2]proposalRow) string {
	t.Helper()
	cfg, err := s.CgwdConfig(sim.CgwdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return editYAML(t, cfg, func(doc map[string]any) {
		for i, tn := range yamlTunnels(t, doc) {
			tn["ike_proposals"] = []string{rows[i].IKE}
			tn["esp_proposals"] = []string{rows[i].ESP}
		}
	})
}

// findTunnel returns the named tunnel of a status.
func findTunnel(st *control.Status, name string) *control.Tunnel {
	for _, c := range st.Connections {
		for _, tn := range c.Tunnels {
			if tn.Name == name {
				return tn
			}
		}
	}
	return nil
}

// swanSAFor returns strongSwan's IKE SA with the SPIs cgwd reports for the
// same tunnel, so stale SAs of earlier runs never match by accident.
func swanSAFor(s *sim.Sim, endpoint int, ike *control.IKESA) (sim.IKESA, error) {
	sas, err := s.ListSAs(endpoint)
	if err != nil {
		return sim.IKESA{}, err
	}
	for _, sa := range sas {
		if sa.SPIInit == ike.SPIi && sa.SPIResp == ike.SPIr {
			if !sa.Established() {
				return sa, fmt.Errorf("AWS endpoint %d: IKE SA %s_i %s_r is %s, not ESTABLISHED", endpoint, sa.SPIInit, sa.SPIResp, sa.State)
			}
			return sa, nil
		}
	}
	return sim.IKESA{}, fmt.Errorf("AWS endpoint %d: no IKE SA with cgwd's SPIs %s_i %s_r among %d: %+v", endpoint, ike.SPIi, ike.SPIr, len(sas), sas)
}

// swanChildFor returns strongSwan's INSTALLED CHILD SA matching cgwd's pair
// (our inbound SPI is strongSwan's outbound one).
func swanChildFor(sa sim.IKESA, c *control.Child) (sim.ChildSA, error) {
	for _, ch := range sa.Installed() {
		if ch.SPIOut == c.InSPI && ch.SPIIn == c.OutSPI {
			return ch, nil
		}
	}
	return sim.ChildSA{}, fmt.Errorf("no INSTALLED CHILD SA with cgwd's SPIs in %s out %s: %+v", c.InSPI, c.OutSPI, sa.Children)
}

// pingInside pings the AWS inside address of endpoint i from the customer
// namespace: the packets can only cross that tunnel.
func pingInside(t testing.TB, s *sim.Sim, i int) {
	t.Helper()
	dst := sim.Endpoints[i-1].AWSInside
	if err := s.WaitPing(sim.Cust, dst, 10*time.Second); err != nil {
		t.Fatalf("tunnel %d: %v", i, err)
	}
	if loss, err := s.Ping(sim.Cust, dst, 5, 50*time.Millisecond); err != nil || loss > 0 {
		t.Fatalf("tunnel %d: ping %s: loss %.0f%%, err %v", i, dst, loss*100, err)
	}
}

// TestIKEProposalMatrix negotiates every row of proposalMatrix, two rows at
// a time (one per AWS endpoint), with both sides configured to exactly that
// proposal. For each it checks the algorithms strongSwan and cgwd report for
// the same SPIs, pings across that tunnel, rekeys the CHILD SA to check the
// ESP DH group (PFS) and pings again.
func TestIKEProposalMatrix(t *testing.T) {
	rounds := [][2]proposalRow{
		{proposalMatrix[0], proposalMatrix[1]},
		{proposalMatrix[2], proposalMatrix[3]},
		{proposalMatrix[4], proposalMatrix[5]},
	}
	o := sim.Options{Routing: sim.RoutingStatic}
	for i := range 2 {
		o.Endpoint[i].IKEProposals = []string{rounds[0][i].IKE}
		o.Endpoint[i].ESPProposals = []string{rounds[0][i].ESP}
	}
	s := NewSim(t, o)
	var (
		mu    sync.Mutex
		table = make([]string, 2*len(rounds))
	)
	defer func() {
		t.Logf("e2e: proposal matrix (cgwd initiates, AWS endpoint = strongSwan, exactly one proposal each side):")
		t.Logf("e2e: %-3s %-30s %-24s %-58s %-40s %-8s %-5s %s", "tun", "ike_proposals", "esp_proposals", "strongSwan IKE SA", "strongSwan CHILD SA (PFS)", "up", "ping", "rekeyed CHILD (cgwd)")
		for _, l := range table {
			if l != "" {
				t.Logf("e2e: %s", l)
			}
		}
	}()
	var d *Cgwd
	for r, rows := range rounds {
		ok := t.Run(fmt.Sprintf("round%d", r+1), func(t *testing.T) {
			if r > 0 {
				stopCleanly(t, s, d)
				for i := range 2 {
					if err := s.SetProposals(i+1, []string{rows[i].IKE}, []string{rows[i].ESP}); err != nil {
						t.Fatal(err)
					}
				}
			}
			start := time.Now()
			d = StartCgwdYAML(t, s, sim.Cust, matrixConfig(t, s, rows))
			st := d.waitStatus(t, 30*time.Second, childrenUp)
			up := time.Since(start)
			for i := range 2 {
				row := rows[i]
				name := st.Connections[0].Tunnels[i].Name
				t.Run(fmt.Sprintf("t%d_%s_%s", i+1, row.IKE, row.ESP), func(t *testing.T) {
					t.Parallel()
					line := checkMatrixRow(t, s, d, i+1, name, row)
					mu.Lock()
					table[2*r+i] = fmt.Sprintf("t%d  %s %-8s", i+1, line[0], up.Round(time.Millisecond)) + line[1]
					mu.Unlock()
				})
			}
		})
		if !ok {
			return
		}
	}
	stopCleanly(t, s, d)
}

// checkMatrixRow verifies one tunnel of a matrix round and returns the two
// halves of its table line (around the time to CHILD SAs).
func checkMatrixRow(t *testing.T, s *sim.Sim, d *Cgwd, endpoint int, name string, row proposalRow) [2]string {
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	tn := findTunnel(st, name)
	if tn == nil || tn.IKE == nil || len(tn.Children) != 1 {
		t.Fatalf("tunnel %s: want an IKE SA and one CHILD SA in cgwd's status, got %+v", name, tn)
	}
	if tn.IKE.Algorithms != row.IKE {
		t.Errorf("cgwd IKE SA algorithms %q, want %q", tn.IKE.Algorithms, row.IKE)
	}
	child := tn.Children[0]
	if child.Algorithms != row.CgwdChild {
		t.Errorf("cgwd CHILD SA algorithms %q, want %q (no DH in IKE_AUTH)", child.Algorithms, row.CgwdChild)
	}
	sa, err := swanSAFor(s, endpoint, tn.IKE)
	if err != nil {
		t.Fatal(err)
	}
	if got := swanIKE(sa); got != row.SwanIKE {
		t.Errorf("strongSwan IKE SA %s, want %s", got, row.SwanIKE)
	}
	sc, err := swanChildFor(sa, child)
	if err != nil {
		t.Fatal(err)
	}
	if got := swanChild(sc); got != row.SwanESP {
		t.Errorf("strongSwan CHILD SA %s, want %s", got, row.SwanESP)
	}
	pingInside(t, s, endpoint)

	// CHILD rekey from cgwd: the new SA pair is negotiated with a KE
	// payload, so both sides now name the ESP DH group.
	rekeyed, rc := rekeyChild(t, s, d, endpoint, name, tn.IKE, child)
	if rekeyed.Algorithms != row.CgwdChildPFS {
		t.Errorf("cgwd rekeyed CHILD SA algorithms %q, want %q", rekeyed.Algorithms, row.CgwdChildPFS)
	}
	if got := swanChild(rc); got != row.SwanESP || rc.DHGroup != row.SwanPFS {
		t.Errorf("strongSwan rekeyed CHILD SA %s PFS %q, want %s PFS %s", got, rc.DHGroup, row.SwanESP, row.SwanPFS)
	}
	pingInside(t, s, endpoint)
	return [2]string{
		fmt.Sprintf("%-30s %-24s %-58s %-40s", row.IKE, row.ESP, swanIKE(sa), swanChild(sc)+" ("+rc.DHGroup+")"),
		fmt.Sprintf(" %-5s %s", "ok", rekeyed.Algorithms),
	}
}

// rekeyChild rekeys the tunnel's CHILD SA from cgwd and returns the new
// SA as cgwd and strongSwan (AWS endpoint) report it.
func rekeyChild(t *testing.T, s *sim.Sim, d *Cgwd, endpoint int, name string, ike *control.IKESA, child *control.Child) (*control.Child, sim.ChildSA) {
	t.Helper()
	if _, err := d.Ctl("tunnel", "rekey", name); err != nil {
		t.Fatal(err)
	}
	var rekeyed *control.Child
	d.waitStatus(t, 30*time.Second, func(st *control.Status) error {
		tn := findTunnel(st, name)
		if tn == nil || len(tn.Children) != 1 || tn.Children[0].InSPI == child.InSPI {
			return fmt.Errorf("tunnel %s: CHILD SA not replaced yet: %+v", name, tn)
		}
		rekeyed = tn.Children[0]
		return nil
	})
	var rc sim.ChildSA
	Eventually(t, 10*time.Second, func() error {
		sa, err := swanSAFor(s, endpoint, ike)
		if err != nil {
			return err
		}
		rc, err = swanChildFor(sa, rekeyed)
		return err
	})
	return rekeyed, rc
}

// stopCleanly stops cgwd with SIGTERM and checks it exits at once and
// deletes its IKE SAs on the AWS side (DELETE sent) on the way out.
func stopCleanly(t testing.TB, s *sim.Sim, d *Cgwd) {
	t.Helper()
	start := time.Now()
	d.Stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("cgwd took %v to stop on SIGTERM (sim.Process.Stop SIGKILLs after 5 s)", took.Round(time.Millisecond))
	}
	if _, err := d.Proc.Exited(); err != nil {
		t.Errorf("cgwd exit on SIGTERM: %v", err)
	}
	Eventually(t, 5*time.Second, func() error {
		for i := 1; i <= 2; i++ {
			sas, err := s.ListSAs(i)
			if err != nil {
				return err
			}
			for _, sa := range sas {
				if sa.Established() {
					return fmt.Errorf("AWS endpoint %d still has IKE SA %s_i after cgwd stopped: no DELETE", i, sa.SPIInit)
				}
			}
		}
		return nil
	})
}

// TestIKEStrongSwanInitiates: the AWS endpoints start IKE (tunnel startup
// action "start") and cgwd, configured to respond, only answers; both sides
// show the SAs with the roles swapped, and traffic crosses both tunnels.
func TestIKEStrongSwanInitiates(t *testing.T) {
	o := sim.Options{Routing: sim.RoutingStatic}
	o.Endpoint[0].StartAction = "start"
	o.Endpoint[1].StartAction = "start"
	s := NewSim(t, o)
	start := time.Now()
	d := StartCgwd(t, s, sim.CgwdOptions{StartupAction: "respond"})
	st := d.waitStatus(t, 60*time.Second, childrenUp)
	t.Logf("e2e: AWS-initiated: cgwd start to both CHILD_SAs established: %v", time.Since(start).Round(time.Millisecond))
	for i, tn := range st.Connections[0].Tunnels {
		if tn.IKE == nil || len(tn.Children) == 0 {
			t.Fatalf("tunnel %s: no SA details in status: %+v", tn.Name, tn)
		}
		if tn.IKE.Initiator {
			t.Errorf("tunnel %s: cgwd reports itself as the IKE initiator; AWS started it", tn.Name)
		}
		sa, err := swanSAFor(s, i+1, tn.IKE)
		if err != nil {
			t.Fatal(err)
		}
		if !sa.Initiator {
			t.Errorf("tunnel %d: strongSwan is not the initiator of IKE SA %s_i", i+1, sa.SPIInit)
		}
		if _, err := swanChildFor(sa, tn.Children[0]); err != nil {
			t.Errorf("tunnel %d: %v", i+1, err)
		}
		pingInside(t, s, i+1)
	}
}
