package diagnose

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/ipsec"
)

const (
	diagPSK1 = "EXAMPLEpsk1_abcdefghij.klmnopqrs"
	diagPSK2 = "EXAMPLEpsk2_zyxwvutsrq.ponmlkjih"
)

// diagConfig is a realistic two-tunnel BGP connection, decoded and
// defaulted by the config package as cgwd would.
const diagConfig = `version: 1
connections:
  - name: vpn-0a1b2c3d
    local_id: 203.0.113.10
    routing: bgp
    bgp:
      asn: 65000
      advertise: [10.1.0.0/16]
    tunnels:
      - name: t1
        peer_address: 198.51.100.10
        psk: "` + diagPSK1 + `"
        inside_cidr: 169.254.15.192/30
      - name: t2
        peer_address: 198.51.100.20
        psk: "` + diagPSK2 + `"
        inside_cidr: 169.254.13.236/30
`

var diagNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func diagParse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return cfg
}

// healthyInput is tunnel t1 up for two hours with BGP Established, traffic
// both ways during a 3 s window and an MTU probe that reached the MTU.
func healthyInput(t *testing.T) Input {
	cfg := diagParse(t, diagConfig)
	conn := &cfg.Connections[0]
	tc := &conn.Tunnels[0]
	now := diagNow
	after := &control.Tunnel{
		Name: "t1", State: "up", IKEState: "Established", ChildState: "Established",
		Since: now.Add(-2 * time.Hour), Device: "cgw0", InsideLocal: "169.254.15.194", InsidePeer: "169.254.15.193",
		Local: "203.0.113.10:500", Remote: "198.51.100.10:500", MTU: 1436,
		IKE: &control.IKESA{SPIi: "8f1c2a3b4c5d6e7f", SPIr: "0123456789abcdef", Initiator: true,
			Algorithms: "aes256gcm16-prfsha384-ecp384", Established: now.Add(-2 * time.Hour),
			RekeyAt: now.Add(5*time.Hour + 40*time.Minute), ExpiresAt: now.Add(6 * time.Hour)},
		Children: []*control.Child{{InSPI: "c1a2b3c4", OutSPI: "d5e6f7a8", Algorithms: "aes256gcm16-ecp384",
			Established: now.Add(-20 * time.Minute), RekeyAt: now.Add(35 * time.Minute), ExpiresAt: now.Add(40 * time.Minute),
			BytesIn: 90000, BytesOut: 120000, PacketsIn: 900, PacketsOut: 1000,
			TSLocal: []string{"0.0.0.0/0"}, TSRemote: []string{"0.0.0.0/0"}}},
		Traffic: control.Traffic{BytesIn: 1_500_000, BytesOut: 2_000_000, PacketsIn: 15000, PacketsOut: 16000,
			Drops: map[string]uint64{"auth": 0, "replay": 2, "no_sa": 0}, LastInbound: now.Add(-200 * time.Millisecond)},
		DPD: control.DPD{IntervalSeconds: 10, LastSeen: now.Add(-200 * time.Millisecond)},
		BGP: &control.BGP{Neighbor: "169.254.15.193", PeerASN: 64512, State: "Established", Since: now.Add(-119 * time.Minute),
			Received: 1, Accepted: 1, Advertised: 1},
	}
	before := *after
	before.Traffic.BytesIn -= 4200
	before.Traffic.BytesOut -= 5100
	before.Traffic.PacketsIn -= 42
	before.Traffic.PacketsOut -= 51
	before.Traffic.Drops = map[string]uint64{"auth": 0, "replay": 2, "no_sa": 0}
	return Input{
		Conn: conn, Tunnel: tc, Before: &before, After: after, Window: 3 * time.Second,
		Routes:      []control.Route{{Prefix: "10.0.0.0/16", Via: []string{"t1"}, Source: "bgp", Metric: 100}},
		MTUProbe:    &MTUProbeResult{Largest: 1436, Tried: []int{576, 1436}},
		IKERequests: 14, IKEResponses: 31,
		Now: now,
	}
}

// down makes the sample a tunnel without SAs.
func down(in *Input) {
	for _, t := range []*control.Tunnel{in.Before, in.After} {
		if t == nil {
			continue
		}
		t.State, t.IKEState, t.ChildState = "down", "Down", "Down"
		t.IKE, t.Children = nil, nil
		if t.BGP != nil {
			t.BGP.State, t.BGP.Since, t.BGP.Received, t.BGP.Accepted = "Active", time.Time{}, 0, 0
		}
	}
	in.Routes = nil
	in.MTUProbe = nil
}

func failed(in *Input, notify, sentence string) {
	in.LastIKENotify, in.LastIKEFailure = notify, sentence
	in.After.LastError, in.After.LastErrorAt = sentence, diagNow.Add(-30*time.Second)
}

func mustProposals(t *testing.T, ike bool, ss ...string) []ipsec.Proposal {
	t.Helper()
	var out []ipsec.Proposal
	for _, s := range ss {
		p, err := ipsec.ParseProposal(s, ike)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func findingsOf(fs []control.Finding, check string) []control.Finding {
	var out []control.Finding
	for _, f := range fs {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

func findingText(f control.Finding) string {
	return f.Summary + "\n" + strings.Join(f.Evidence, "\n") + "\n" + f.Fix
}

func TestDiagnoseHealthy(t *testing.T) {
	fs := Tunnel(healthyInput(t))
	var checks []string
	for _, f := range fs {
		checks = append(checks, f.Check)
		if f.Severity != control.SeverityOK {
			t.Errorf("healthy tunnel: %s is %s: %s", f.Check, f.Severity, findingText(f))
		}
		if f.Tunnel != "t1" {
			t.Errorf("finding %s names tunnel %q", f.Check, f.Tunnel)
		}
	}
	want := []string{checkTunnel, checkIKEPorts, checkNAT, checkIKEFail, checkLifetimes, checkDPD, checkBGP, checkRoutes, checkDirection, checkDrops, checkMTU}
	if strings.Join(checks, ",") != strings.Join(want, ",") {
		t.Errorf("checks = %v, want %v", checks, want)
	}
	// The OK findings still carry the numbers.
	for check, sub := range map[string]string{
		checkTunnel:    "IKE SA 8f1c2a3b4c5d6e7f_i 0123456789abcdef_r aes256gcm16-prfsha384-ecp384, established 2h ago, rekey in 5h40m, expires in 6h",
		checkIKEPorts:  "sent to 198.51.100.10: 14, received from it: 31",
		checkBGP:       "up for 1h59m",
		checkRoutes:    "10.0.0.0/16 via t1 (bgp, metric 100)",
		checkDirection: "in 3s: sent 51 packets (5.0 KiB) to AWS, received 42 packets (4.1 KiB)",
		checkDrops:     "drops since start: replay: 2",
		checkMTU:       "largest answered: 1436",
		checkLifetimes: "rekey_margin: 4m30s, AWS default 4m30s (270 s)",
	} {
		fs := findingsOf(fs, check)
		if len(fs) != 1 || !strings.Contains(findingText(fs[0]), sub) {
			t.Errorf("%s: want %q in\n%+v", check, sub, fs)
		}
	}
}

func TestDiagnoseFindings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, in *Input)
		check  string
		sev    control.Severity
		want   []string // substrings of summary, evidence or fix
	}{
		// --- tunnel state
		{"ike up, child down", func(t *testing.T, in *Input) {
			in.After.ChildState, in.After.Children = "Down", nil
		}, checkTunnel, control.SeverityError, []string{"no CHILD (IPsec) SA", "Phase 2 was unable to establish"}},
		{"negotiating", func(t *testing.T, in *Input) {
			down(in)
			in.After.IKEState = "Negotiating"
		}, checkTunnel, control.SeverityWarn, []string{"negotiating"}},
		{"down, respond", func(t *testing.T, in *Input) {
			down(in)
			in.Tunnel.StartupAction = config.StartRespond
		}, checkTunnel, control.SeverityError, []string{"no IKE SA", "startup_action is respond"}},

		// --- UDP 500/4500 answered?
		{"udp blocked", func(t *testing.T, in *Input) {
			down(in)
			in.IKERequests, in.IKEResponses = 12, 0
			in.After.Local = ""
		}, checkIKEPorts, control.SeverityError, []string{"12 IKE requests went to 198.51.100.10", "Allow UDP 500 and 4500", "tunnel 1 of 2 of connection vpn-0a1b2c3d", "outside IP address"}},
		{"waiting for AWS", func(t *testing.T, in *Input) {
			down(in)
			in.IKERequests, in.IKEResponses = 0, 0
			in.Tunnel.StartupAction = config.StartRespond
		}, checkIKEPorts, control.SeverityInfo, []string{"waits for AWS", "\"start\""}},
		{"answered before, silent now", func(t *testing.T, in *Input) {
			down(in)
			in.IKERequests, in.IKEResponses = 40, 25
			failed(in, "timeout", "ike: peer 198.51.100.10 did not answer our IKE_SA_INIT after 5 transmissions")
		}, checkIKEPorts, control.SeverityWarn, []string{"answered IKE before", "cgw keeps retrying"}},
		{"nothing sent yet", func(t *testing.T, in *Input) {
			down(in)
			in.IKERequests, in.IKEResponses = 0, 0
		}, checkIKEPorts, control.SeverityInfo, []string{"No IKE message", "cgwctl tunnel up t1"}},

		// --- NAT
		{"nat, public id", func(t *testing.T, in *Input) {
			in.After.NAT, in.After.Encap = true, true
			in.After.Local = "192.168.1.10:4500"
		}, checkNAT, control.SeverityInfo, []string{"A NAT is between", "local_id: 203.0.113.10, from local_id", "192.168.1.10:4500", "public IP of the NAT device"}},
		{"nat, private id from the outside address", func(t *testing.T, in *Input) {
			in.Conn.LocalID = netip.Addr{}
			in.After.NAT, in.After.Encap = true, true
			in.After.Local = "192.168.1.10:4500"
		}, checkNAT, control.SeverityWarn, []string{"192.168.1.10 is not a public address", "AUTHENTICATION_FAILED", "the outside address in use (local_id not set)", "Set local_id"}},
		{"nat, cgnat local_address", func(t *testing.T, in *Input) {
			in.Conn.LocalID = netip.Addr{}
			in.Conn.LocalAddress = netip.MustParseAddr("100.64.3.4")
			in.After.NAT = true
		}, checkNAT, control.SeverityWarn, []string{"100.64.3.4 is not a public address", "from local_address"}},
		{"nat, keepalive off", func(t *testing.T, in *Input) {
			in.After.NAT = true
			in.Tunnel.NATKeepalive = 0
		}, checkNAT, control.SeverityWarn, []string{"nat_keepalive is off", "nat_keepalive: 20s"}},
		{"nat unknown before IKE", func(t *testing.T, in *Input) {
			down(in)
			in.IKEResponses = 0
		}, checkNAT, control.SeverityInfo, []string{"not known yet"}},
		{"no nat", func(t *testing.T, in *Input) {}, checkNAT, control.SeverityOK, []string{"UDP 4500 (cgw always encapsulates)"}},

		// --- last IKE failure
		{"no proposal chosen", func(t *testing.T, in *Input) {
			down(in)
			in.Tunnel.IKEProposals = mustProposals(t, true, "aes256-sha256-modp2048", "chacha20poly1305-prfsha256-curve25519")
			in.Tunnel.ESPProposals = mustProposals(t, false, "aes256-sha256")
			failed(in, "NO_PROPOSAL_CHOSEN", "ike: peer answered NO_PROPOSAL_CHOSEN to our IKE_SA_INIT")
		}, checkIKEFail, control.SeverityError, []string{
			"AWS accepted none of our proposals (NO_PROPOSAL_CHOSEN)",
			"our IKE proposals: aes256-sha256-modp2048, chacha20poly1305-prfsha256-curve25519",
			"our ESP proposals: aes256-sha256",
			"AWS accepts by default, IKE: aes128-aes256-sha1-sha256-sha384-sha512-modp1024",
			"IKE proposal chacha20poly1305-prfsha256-curve25519 has no combination AWS accepts",
			"ESP proposal aes256-sha256 has no DH group: AWS requires PFS",
			"AWS picks the lowest value",
			"describe-vpn-connections",
			"notify: NO_PROPOSAL_CHOSEN",
			"last failure (30s ago): ike: peer answered NO_PROPOSAL_CHOSEN",
		}},
		{"no proposal chosen in phase 2", func(t *testing.T, in *Input) {
			in.After.ChildState, in.After.Children = "Down", nil
			failed(in, "NO_PROPOSAL_CHOSEN", "ike: CREATE_CHILD_SA refused: NO_PROPOSAL_CHOSEN")
		}, checkIKEFail, control.SeverityError, []string{"none of our ESP (phase 2) proposals"}},
		{"authentication failed", func(t *testing.T, in *Input) {
			down(in)
			failed(in, "AUTHENTICATION_FAILED", "ike: peer answered AUTHENTICATION_FAILED to our IKE_AUTH")
		}, checkIKEFail, control.SeverityError, []string{
			"AUTHENTICATION_FAILED", "this is tunnel 1 of 2 of connection vpn-0a1b2c3d, AWS outside IP 198.51.100.10",
			"our identity (IDi): 203.0.113.10, from local_id", "psk given inline", "easily swapped", "set local_id",
		}},
		{"udp 500 answered, 4500 blocked", func(t *testing.T, in *Input) {
			down(in)
			in.IKERequests, in.IKEResponses = 6, 1
			failed(in, "none", "ike: peer 198.51.100.10 did not answer our IKE_AUTH after 5 transmissions; check that it is reachable on UDP 500 and 4500 and that its outside IP is 198.51.100.10")
		}, checkIKEPorts, control.SeverityError, []string{"answers on UDP 500 but not on UDP 4500", "Allow UDP 4500 to and from 198.51.100.10", "UDP 500 alone is not enough"}},
		{"large IKE_AUTH lost, fragmentation off", func(t *testing.T, in *Input) {
			down(in)
			in.IKERequests, in.IKEResponses = 6, 1
			failed(in, "none", "ike: peer 198.51.100.10 did not answer our IKE_AUTH after 5 transmissions; check that it is reachable on UDP 500 and 4500 and that its outside IP is 198.51.100.10; the request was one 1402-octet datagram because ike_fragment_size is 0 (IKE fragmentation off), and a path that drops IP fragments loses it")
		}, checkIKEPorts, control.SeverityError, []string{"larger than 1280 octets", "drops IP fragments", "never 0", "allow IP fragments to and from 198.51.100.10"}},
		{"authentication failed, same psk on both tunnels, psk file, nat", func(t *testing.T, in *Input) {
			down(in)
			in.Conn.Tunnels[1].PSK = config.Secret(diagPSK1)
			in.Tunnel.PSKFile = "/etc/cgw/t1.psk"
			in.After.NAT = true
			failed(in, "AUTHENTICATION_FAILED", "ike: peer answered AUTHENTICATION_FAILED to our IKE_AUTH")
		}, checkIKEFail, control.SeverityError, []string{"tunnels t1 and t2 have the same PSK", "psk read from /etc/cgw/t1.psk", "NAT device's public IP as our identity"}},
		{"ts unacceptable", func(t *testing.T, in *Input) {
			in.After.ChildState, in.After.Children = "Down", nil
			in.Tunnel.TrafficSelectors.Local = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
			in.Tunnel.TrafficSelectors.Remote = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("10.2.0.0/16")}
			failed(in, "TS_UNACCEPTABLE", "ike: peer answered TS_UNACCEPTABLE to our IKE_AUTH")
		}, checkIKEFail, control.SeverityError, []string{"TS_UNACCEPTABLE", "local (customer side) 10.1.0.0/16, remote (AWS side) 10.0.0.0/16,10.2.0.0/16", "Local IPv4 Network CIDR 0.0.0.0/0", "traffic_selectors.local"}},
		{"timeout, never answered", func(t *testing.T, in *Input) {
			down(in)
			in.IKERequests, in.IKEResponses = 5, 0
			failed(in, "timeout", "ike: peer 198.51.100.10 did not answer our IKE_SA_INIT after 5 transmissions")
		}, checkIKEFail, control.SeverityError, []string{"AWS never answered", "sent: 5, received: 0"}},
		{"timeout detected from the sentence, answered before", func(t *testing.T, in *Input) {
			down(in)
			in.IKERequests, in.IKEResponses = 9, 2
			failed(in, "none", "ike: peer 198.51.100.10 did not answer our IKE_AUTH after 5 transmissions")
		}, checkIKEFail, control.SeverityError, []string{"answered earlier messages, then stopped", "UDP 4500 is usually blocked"}},
		{"invalid ke is harmless", func(t *testing.T, in *Input) {
			down(in)
			in.After.IKEState = "Negotiating"
			failed(in, "INVALID_KE_PAYLOAD", "ike: peer wants DH group MODP_1024")
		}, checkIKEFail, control.SeverityError, []string{"different Diffie-Hellman group"}},
		{"other notify", func(t *testing.T, in *Input) {
			down(in)
			failed(in, "INVALID_SYNTAX", "ike: peer answered INVALID_SYNTAX")
		}, checkIKEFail, control.SeverityError, []string{"failed with INVALID_SYNTAX", "cgwd's log"}},
		{"recovered failure", func(t *testing.T, in *Input) {
			failed(in, "AUTHENTICATION_FAILED", "ike: peer answered AUTHENTICATION_FAILED to our IKE_AUTH")
			in.After.LastErrorAt = diagNow.Add(-3 * time.Hour)
		}, checkIKEFail, control.SeverityInfo, []string{"The tunnel is up now; an earlier negotiation failed: AWS rejected", "(3h ago)"}},
		{"rekey failed while up", func(t *testing.T, in *Input) {
			failed(in, "NO_PROPOSAL_CHOSEN", "ike: CREATE_CHILD_SA rekey refused: NO_PROPOSAL_CHOSEN")
			in.After.LastErrorAt = diagNow.Add(-5 * time.Minute)
		}, checkIKEFail, control.SeverityWarn, []string{"a rekey failed, and that SA expires in 40m"}},

		// --- lifetimes
		{"lifetimes differ", func(t *testing.T, in *Input) {
			in.Tunnel.IKELifetime = 4 * time.Hour
			in.Tunnel.RekeyMargin = 9 * time.Minute
		}, checkLifetimes, control.SeverityWarn, []string{"ike_lifetime: 4h, AWS default 8h (28800 s) (differs)", "rekey_margin: 9m, AWS default 4m30s (270 s) (differs)", "AWS rekeys on its own schedule", "Phase1LifetimeSeconds"}},
		{"lifetimes out of AWS range", func(t *testing.T, in *Input) {
			in.Tunnel.IKELifetime = 10 * time.Hour
			in.Tunnel.ChildLifetime = 10 * time.Hour
		}, checkLifetimes, control.SeverityWarn, []string{"outside what AWS allows for phase 1", "outside what AWS allows for phase 2", "not shorter than ike_lifetime"}},

		// --- DPD and idle
		{"dpd misses", func(t *testing.T, in *Input) {
			in.After.DPD.Misses = 2
			in.After.Traffic.LastInbound = diagNow.Add(-25 * time.Second)
		}, checkDPD, control.SeverityWarn, []string{"2 dead peer detection probes went unanswered", "last packet from AWS: 25s ago", "unanswered DPD probes: 2"}},
		{"peer dead", func(t *testing.T, in *Input) {
			down(in)
			failed(in, "", "peer dead: DPD timed out after 3 unanswered probes 10s apart")
		}, checkDPD, control.SeverityError, []string{"declared dead", "nat_keepalive"}},
		{"dpd off", func(t *testing.T, in *Input) {
			in.Tunnel.DPD.Action = config.DPDNone
		}, checkDPD, control.SeverityWarn, []string{"Dead peer detection is off", "dpd: off", "action: restart"}},
		{"idle without keepalive", func(t *testing.T, in *Input) {
			in.After.Traffic.LastInbound = diagNow.Add(-95 * time.Second)
		}, checkDPD, control.SeverityWarn, []string{"idle for 1m35s", "keepalive.target to the AWS inside address 169.254.15.193"}},
		{"keepalive unanswered", func(t *testing.T, in *Input) {
			in.Tunnel.Keepalive = config.Keepalive{Target: netip.MustParseAddr("169.254.15.193"), Interval: 5 * time.Second}
			in.After.Traffic.LastInbound = diagNow.Add(-40 * time.Second)
		}, checkDPD, control.SeverityWarn, []string{"keepalive to 169.254.15.193 gets no reply", "keepalive: ping 169.254.15.193 every 5s"}},
		{"never received", func(t *testing.T, in *Input) {
			in.After.Traffic.LastInbound, in.After.DPD.LastSeen = time.Time{}, time.Time{}
		}, checkDPD, control.SeverityWarn, []string{"Nothing has ever been received", "last packet from AWS: never"}},
		{"dpd while down", func(t *testing.T, in *Input) { down(in) }, checkDPD, control.SeverityInfo, []string{"nothing to watch"}},

		// --- BGP
		{"bgp hold timer expired", func(t *testing.T, in *Input) {
			in.After.BGP.State, in.After.BGP.LastError = "Active", "hold timer expired"
		}, checkBGP, control.SeverityError, []string{"hold timer expired", "mss_clamp: 1379", "last error: hold timer expired"}},
		{"bgp wrong asn", func(t *testing.T, in *Input) {
			in.After.BGP.State, in.After.BGP.LastError = "Idle", "received NOTIFICATION OPEN Message Error / Bad Peer AS"
			in.Conn.BGP.PeerASN = 64513
		}, checkBGP, control.SeverityError, []string{"refused at OPEN", "configured: bgp.asn 65000, bgp.peer_asn 64513", "Amazon-side ASN"}},
		{"bgp prefix limit", func(t *testing.T, in *Input) {
			in.After.BGP.State, in.After.BGP.LastError = "Idle", "received NOTIFICATION Cease / Maximum Number of Prefixes Reached"
		}, checkBGP, control.SeverityError, []string{"too many prefixes (Cease 6/1)", "at most 100"}},
		{"bgp shut by aws", func(t *testing.T, in *Input) {
			in.After.BGP.State, in.After.BGP.LastError = "Active", "received NOTIFICATION Cease / Administrative Shutdown"
		}, checkBGP, control.SeverityError, []string{"AWS closed the BGP session", "Cease", "reconnects by itself"}},
		{"bgp stuck in active", func(t *testing.T, in *Input) {
			in.After.BGP.State = "Active"
		}, checkBGP, control.SeverityError, []string{"stuck in Active", "TCP connection on port 179", "our inside address 169.254.15.194, AWS's 169.254.15.193 (inside_cidr 169.254.15.192/30)"}},
		{"bgp starting", func(t *testing.T, in *Input) {
			in.After.BGP.State, in.After.BGP.Since = "OpenSent", time.Time{}
			in.After.Since = diagNow.Add(-12 * time.Second)
		}, checkBGP, control.SeverityInfo, []string{"BGP is starting (state OpenSent): the tunnel came up 12s ago"}},
		{"bgp starting is not an excuse for a known error", func(t *testing.T, in *Input) {
			in.After.BGP.State, in.After.BGP.LastError = "Active", "hold timer expired"
			in.After.Since = diagNow.Add(-12 * time.Second)
		}, checkBGP, control.SeverityError, []string{"hold timer expired"}},
		{"bgp other state", func(t *testing.T, in *Input) {
			in.After.BGP.State = "OpenSent"
		}, checkBGP, control.SeverityError, []string{"state OpenSent"}},
		{"bgp down with the tunnel", func(t *testing.T, in *Input) { down(in) }, checkBGP, control.SeverityWarn, []string{"because the tunnel is down"}},
		{"bgp nothing advertised", func(t *testing.T, in *Input) {
			in.Conn.BGP.Advertise = nil
			in.After.BGP.Advertised = 0
		}, checkBGP, control.SeverityWarn, []string{"advertises no prefix", "bgp.advertise"}},
		{"bgp over the VGW limit", func(t *testing.T, in *Input) {
			in.After.BGP.Advertised = 150
		}, checkBGP, control.SeverityWarn, []string{"advertises 150 prefixes", "at most 100"}},
		{"bgp prefix warning", func(t *testing.T, in *Input) {
			in.After.BGP.LastError = "advertising 95 prefixes, at least 90% of the peer's limit of 100; more will make the peer close the session"
		}, checkBGP, control.SeverityWarn, []string{"close to AWS's prefix limit"}},
		{"bgp no neighbor", func(t *testing.T, in *Input) { in.After.BGP = nil }, checkBGP, control.SeverityWarn, []string{"no neighbor"}},

		// --- routes
		{"aws advertises nothing", func(t *testing.T, in *Input) {
			in.After.BGP.Received, in.After.BGP.Accepted = 0, 0
			in.Routes = nil
		}, checkRoutes, control.SeverityError, []string{"AWS advertises no prefix", "attached to the VPC", "propagate", "no kernel route installed for connection vpn-0a1b2c3d"}},
		{"prefixes refused", func(t *testing.T, in *Input) {
			in.After.BGP.Received, in.After.BGP.Accepted = 2, 0
			in.Routes = nil
		}, checkRoutes, control.SeverityError, []string{"AWS sent 2 prefixes but cgw accepted none", "own ASN"}},
		{"no kernel route", func(t *testing.T, in *Input) { in.Routes = nil }, checkRoutes, control.SeverityError, []string{"no kernel route is installed", "routes.table"}},
		{"standby tunnel", func(t *testing.T, in *Input) {
			in.Routes = []control.Route{{Prefix: "10.0.0.0/16", Via: []string{"t2"}, Source: "bgp", Metric: 100}}
		}, checkRoutes, control.SeverityOK, []string{"other tunnel", "standby", "10.0.0.0/16 via t2"}},
		{"routes while bgp down", func(t *testing.T, in *Input) { down(in) }, checkRoutes, control.SeverityInfo, []string{"BGP is not Established"}},
		{"static route missing", func(t *testing.T, in *Input) {
			in.Conn.Routing, in.Conn.BGP = config.RoutingStatic, nil
			in.Conn.Static = &config.Static{RemotePrefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("10.9.0.0/16")}}
			in.After.BGP = nil
			in.Routes[0].Source = "static"
		}, checkRoutes, control.SeverityError, []string{"1 of the static.remote_prefixes have no kernel route: 10.9.0.0/16"}},
		{"static routes installed", func(t *testing.T, in *Input) {
			in.Conn.Routing, in.Conn.BGP = config.RoutingStatic, nil
			in.Conn.Static = &config.Static{RemotePrefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}
			in.After.BGP = nil
			in.Routes[0].Source = "static"
		}, checkRoutes, control.SeverityOK, []string{"This tunnel carries 1 static route", "10.0.0.0/16 via t1 (static, metric 100)"}},
		{"static tunnel down", func(t *testing.T, in *Input) {
			in.Conn.Routing, in.Conn.BGP = config.RoutingStatic, nil
			in.Conn.Static = &config.Static{RemotePrefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}
			down(in)
			in.After.BGP = nil
		}, checkRoutes, control.SeverityInfo, []string{"withdrawn"}},

		// --- direction
		{"out but nothing in", func(t *testing.T, in *Input) {
			in.Before.Traffic.PacketsIn, in.Before.Traffic.BytesIn = in.After.Traffic.PacketsIn, in.After.Traffic.BytesIn
		}, checkDirection, control.SeverityError, []string{"nothing comes back", "security groups", "network ACLs", "route propagation", "inbound UDP 4500 from 198.51.100.10", "received 0 packets (0 B)"}},
		{"out but nothing in, nat", func(t *testing.T, in *Input) {
			in.Before.Traffic.PacketsIn, in.Before.Traffic.BytesIn = in.After.Traffic.PacketsIn, in.After.Traffic.BytesIn
			in.After.NAT = true
		}, checkDirection, control.SeverityError, []string{"inbound UDP 4500"}},
		{"in but nothing out", func(t *testing.T, in *Input) {
			in.Before.Traffic.PacketsOut, in.Before.Traffic.BytesOut = in.After.Traffic.PacketsOut, in.After.Traffic.BytesOut
		}, checkDirection, control.SeverityWarn, []string{"nothing goes back", "ip_forward", "route to the VPC CIDR"}},
		{"idle window", func(t *testing.T, in *Input) {
			in.Before.Traffic = in.After.Traffic
			in.Before.Traffic.PacketsOut--
		}, checkDirection, control.SeverityInfo, []string{"Too little traffic"}},
		{"counters reset", func(t *testing.T, in *Input) {
			in.Before.Traffic.PacketsOut = in.After.Traffic.PacketsOut + 10
		}, checkDirection, control.SeverityInfo, []string{"restarted"}},
		{"one sample", func(t *testing.T, in *Input) { in.Before = nil }, checkDirection, control.SeverityInfo, []string{"two samples"}},
		{"direction while down", func(t *testing.T, in *Input) { down(in) }, checkDirection, control.SeverityInfo, []string{"No CHILD SA"}},

		// --- drops
		{"auth drops", func(t *testing.T, in *Input) {
			in.After.Traffic.Drops = map[string]uint64{"auth": 57, "replay": 2}
		}, checkDrops, control.SeverityError, []string{"57 packets dropped in 3s (auth)", "keys do not match", "cgwctl tunnel rekey t1", "auth drops: 0 before, 57 after 3s"}},
		{"replay drops", func(t *testing.T, in *Input) {
			in.After.Traffic.Drops = map[string]uint64{"replay": 12}
		}, checkDrops, control.SeverityWarn, []string{"10 packets dropped in 3s (replay)", "replay_window (up to 2048"}},
		{"ts mismatch drops", func(t *testing.T, in *Input) {
			in.After.Traffic.Drops = map[string]uint64{"ts_mismatch": 4}
		}, checkDrops, control.SeverityWarn, []string{"outside the negotiated traffic selectors"}},
		{"no_sa drops", func(t *testing.T, in *Input) {
			in.After.Traffic.Drops = map[string]uint64{"no_sa": 8}
		}, checkDrops, control.SeverityWarn, []string{"no outbound SA"}},
		{"mtu drops", func(t *testing.T, in *Input) {
			in.After.Traffic.Drops = map[string]uint64{"mtu": 3}
		}, checkDrops, control.SeverityWarn, []string{"larger than the tunnel MTU", "mss_clamp: 1379"}},
		{"unknown drop reason", func(t *testing.T, in *Input) {
			in.After.Traffic.Drops = map[string]uint64{"gremlins": 3}
		}, checkDrops, control.SeverityWarn, []string{"reason gremlins"}},
		{"drops without a window", func(t *testing.T, in *Input) {
			in.Before = nil
			in.After.Traffic.Drops = map[string]uint64{"auth": 5, "replay": 1}
		}, checkDrops, control.SeverityInfo, []string{"drops since start: auth: 5, replay: 1"}},

		// --- MTU
		{"mtu black hole with clamp", func(t *testing.T, in *Input) {
			in.MTUProbe = &MTUProbeResult{Largest: 1400, Tried: []int{576, 1436, 1006, 1221, 1328, 1382, 1409, 1395, 1402, 1398}}
		}, checkMTU, control.SeverityWarn, []string{"Only packets up to 1400 bytes", "its MTU is 1436", "Set mtu: 1400", "tunnel MTU: 1436", "mss_clamp: 1379"}},
		{"mtu black hole without clamp", func(t *testing.T, in *Input) {
			in.Tunnel.MSSClamp = 0
			in.MTUProbe = &MTUProbeResult{Largest: 1400, Tried: []int{576, 1436, 1400}}
		}, checkMTU, control.SeverityError, []string{"mss_clamp: off", "below 1360"}},
		{"mtu fine, clamp off", func(t *testing.T, in *Input) {
			in.Tunnel.MSSClamp = 0
		}, checkMTU, control.SeverityWarn, []string{"clamping is off", "mss_clamp: 1379"}},
		{"mtu no reply", func(t *testing.T, in *Input) {
			in.MTUProbe = &MTUProbeResult{Tried: []int{576}, Err: "no echo reply from 169.254.15.193 even for 576-byte packets"}
		}, checkMTU, control.SeverityError, []string{"No echo reply", "probe: no echo reply"}},
		{"mtu probe could not run", func(t *testing.T, in *Input) {
			in.MTUProbe = &MTUProbeResult{Err: "listen ip4:icmp 169.254.15.194: socket: operation not permitted"}
		}, checkMTU, control.SeverityWarn, []string{"could not run", "operation not permitted"}},
		{"mtu not run", func(t *testing.T, in *Input) { in.MTUProbe = nil }, checkMTU, control.SeverityInfo, []string{"did not run"}},
		{"mtu while down", func(t *testing.T, in *Input) { down(in) }, checkMTU, control.SeverityInfo, []string{"needs the tunnel up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := healthyInput(t)
			tt.mutate(t, &in)
			fs := Tunnel(in)
			checkInvariants(t, fs)
			got := findingsOf(fs, tt.check)
			if len(got) == 0 {
				t.Fatalf("no %s finding in %+v", tt.check, fs)
			}
			f := got[0]
			if f.Severity != tt.sev {
				t.Errorf("severity = %s, want %s\n%s", f.Severity, tt.sev, findingText(f))
			}
			text := findingText(f)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in\n%s", w, text)
				}
			}
		})
	}
}

// checkInvariants holds for every diagnosis: each finding names its tunnel,
// check and a summary; every problem comes with a fix; no secret leaks.
func checkInvariants(t *testing.T, fs []control.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Tunnel == "" || f.Check == "" || f.Summary == "" {
			t.Errorf("incomplete finding %+v", f)
		}
		if (f.Severity == control.SeverityError || f.Severity == control.SeverityWarn) && f.Fix == "" {
			t.Errorf("%s %s finding has no fix: %s", f.Check, f.Severity, f.Summary)
		}
		if f.Severity == control.SeverityOK && f.Fix != "" {
			t.Errorf("%s OK finding has a fix: %s", f.Check, f.Fix)
		}
	}
	b, err := json.Marshal(fs)
	if err != nil {
		t.Fatal(err)
	}
	for _, psk := range []string{diagPSK1, diagPSK2} {
		if strings.Contains(string(b), psk) {
			t.Errorf("a finding contains a pre-shared key")
		}
	}
}

func TestDiagnoseMultipleDrops(t *testing.T) {
	in := healthyInput(t)
	in.After.Traffic.Drops = map[string]uint64{"replay": 9, "auth": 3, "no_sa": 1, "dummy": 0}
	fs := findingsOf(Tunnel(in), checkDrops)
	var got []string
	for _, f := range fs {
		got = append(got, string(f.Severity)+":"+strings.SplitN(f.Summary, ":", 2)[0])
	}
	want := []string{"error:3 packets dropped in 3s (auth)", "warn:7 packets dropped in 3s (replay)", "warn:1 packet dropped in 3s (no_sa)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("drop findings = %q, want %q", got, want)
	}
}

func TestDiagnoseUDPBlockedEndToEnd(t *testing.T) {
	// The "blocked UDP 4500/500" simulator scenario as the daemon samples
	// it: nothing ever established, requests retransmitted, no answer.
	in := healthyInput(t)
	down(&in)
	in.After.Local, in.After.Remote = "", "198.51.100.10"
	in.After.Traffic = control.Traffic{}
	in.Before = nil
	in.IKERequests, in.IKEResponses = 10, 0
	failed(&in, "timeout", "ike: peer 198.51.100.10 did not answer our IKE_SA_INIT after 5 transmissions; check that it is reachable on UDP 500 and 4500")
	sev := map[string]control.Severity{}
	for _, f := range Tunnel(in) {
		if _, ok := sev[f.Check]; !ok {
			sev[f.Check] = f.Severity
		}
	}
	want := map[string]control.Severity{
		checkTunnel: control.SeverityError, checkIKEPorts: control.SeverityError, checkNAT: control.SeverityInfo,
		checkIKEFail: control.SeverityError, checkLifetimes: control.SeverityOK, checkDPD: control.SeverityInfo,
		checkBGP: control.SeverityWarn, checkRoutes: control.SeverityInfo, checkDirection: control.SeverityInfo,
		checkDrops: control.SeverityOK, checkMTU: control.SeverityInfo,
	}
	for c, w := range want {
		if sev[c] != w {
			t.Errorf("%s: severity %s, want %s", c, sev[c], w)
		}
	}
}

func TestDiagnosePartialInput(t *testing.T) {
	fs := Tunnel(Input{})
	if len(fs) != 1 || fs[0].Severity != control.SeverityError {
		t.Fatalf("empty input: %+v", fs)
	}
	in := healthyInput(t)
	in.After, in.Before, in.MTUProbe, in.Routes = nil, nil, nil, nil
	in.Now = time.Time{}
	fs = Tunnel(in)
	checkInvariants(t, fs)
	if f := findingsOf(fs, checkTunnel); len(f) != 1 || f[0].Severity != control.SeverityError {
		t.Errorf("no sample: tunnel finding %+v", f)
	}
}
