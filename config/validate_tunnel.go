package config

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

func (c *checker) tunnel(path string, conn Connection, i int, r *rawTunnel) Tunnel {
	var t Tunnel
	// Name: unique across the file, since tunnels are keyed by name in IKE,
	// the dataplane and the control API.
	if r.Name == nil {
		if conn.Name != "" {
			t.Name = fmt.Sprintf("%s-t%d", conn.Name, i+1)
		}
	} else if !nameRE.MatchString(*r.Name) {
		c.errorf(path+".name", nameFix, "invalid tunnel name %q", *r.Name)
	} else {
		t.Name = *r.Name
	}
	if t.Name != "" {
		if first, dup := c.tunnelNames[t.Name]; dup {
			c.errorf(path+".name", "give every tunnel a unique name across all connections", "tunnel name %q is already used by %s", t.Name, first)
		} else {
			c.tunnelNames[t.Name] = path
		}
	}

	if r.PeerAddress == nil {
		c.errorf(path+".peer_address", "add the AWS outside IP address of this tunnel", "missing peer_address")
	} else if a := c.addr(path+".peer_address", *r.PeerAddress, "write the AWS outside IP address of this tunnel"); a.IsValid() {
		switch {
		case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
			c.errorf(path+".peer_address", "write the AWS outside IP address of this tunnel", "%v is not a unicast peer address", a)
		case conn.LocalAddress.IsValid() && conn.LocalAddress.Is4() != a.Is4():
			c.errorf(path+".peer_address", "use outside addresses of the same IP family on both ends", "address family differs from local_address %v", conn.LocalAddress)
		default:
			t.PeerAddress = a
			if first, dup := c.peers[a]; dup {
				c.errorf(path+".peer_address", "every AWS tunnel has its own outside address; check you copied the right one", "peer address %v is already used by %s", a, first)
			} else {
				c.peers[a] = path
			}
		}
	}
	if !c.tunnelAuth(path, conn, &t, r) {
		t.PeerID = c.optAddr(path+".peer_id", r.PeerID, "write the AWS outside IP address (the default), or remove the key")
		if !t.PeerID.IsValid() {
			t.PeerID = t.PeerAddress
		}
		c.psk(path, &t, r)
	}

	if r.InsideCIDR == nil {
		c.errorf(path+".inside_cidr", "add the tunnel's inside /30 from the AWS configuration, e.g. 169.254.15.192/30", "missing inside_cidr")
	} else {
		t.InsideCIDR = c.insideCIDR(path+".inside_cidr", *r.InsideCIDR)
	}
	if r.InsideIPv6CIDR != nil {
		t.InsideIPv6CIDR = c.insideCIDR6(path+".inside_ipv6_cidr", *r.InsideIPv6CIDR)
	}

	t.IKEProposals = c.proposals(path+".ike_proposals", r.IKEProposals, ipsec.DefaultIKEProposals, true)
	t.ESPProposals = c.proposals(path+".esp_proposals", r.ESPProposals, ipsec.DefaultESPProposals, false)

	c.lifetimes(path, &t, r)

	t.DPD.Interval = DefaultDPDInterval
	t.DPD.Retries = DefaultDPDRetries
	t.DPD.Action = DPDRestart
	if r.DPD != nil {
		p := path + ".dpd"
		t.DPD.Interval = c.durationRange(p+".interval", r.DPD.Interval, DefaultDPDInterval, time.Second, 300*time.Second,
			"use 1s-300s; AWS probes after 10s of silence")
		t.DPD.Retries = int(c.intRange(p+".retries", r.DPD.Retries, DefaultDPDRetries, 1, 20, "use 1-20 retries; AWS uses 3"))
		t.DPD.Action = DPDAction(c.enum(p+".action", r.DPD.Action, string(DPDRestart), string(DPDRestart), string(DPDClear), string(DPDNone)))
		if timeout := t.DPD.Interval * time.Duration(t.DPD.Retries+1); timeout > 120*time.Second {
			c.warnf(p, "AWS is declared dead only after about %v (interval x (retries+1)); AWS gives up on us after 30-40s, so failover to the other tunnel will be slow", timeout)
		}
	}
	t.StartupAction = StartupAction(c.enum(path+".startup_action", r.StartupAction, string(StartInitiate), string(StartInitiate), string(StartRespond)))

	c.selectors(path, &t, r)

	if r.ForceEncap != nil {
		t.ForceEncap = *r.ForceEncap
	}
	t.Encapsulation = Encapsulation(c.enum(path+".encapsulation", r.Encapsulation, string(EncapUDP), string(EncapUDP), string(EncapAuto)))
	t.NATKeepalive = c.durationRange(path+".nat_keepalive", r.NATKeepalive, DefaultNATKeepalive, 0, 300*time.Second,
		"use 0 (off) or up to 300s; 20s keeps most NAT mappings alive")
	t.ReplayWindow = int(c.intRange(path+".replay_window", r.ReplayWindow, DefaultReplayWindow, 64, 2048,
		"use 64-2048 packets, as AWS allows (default 1024)"))
	t.IKEFragmentSize = int(c.intRange(path+".ike_fragment_size", r.IKEFragmentSize, DefaultIKEFragmentSize, 0, 9000,
		"use 576-9000 octets, the largest IP datagram an IKE message may be sent in (default 1280), or 0 to turn IKE fragmentation off"))
	if t.IKEFragmentSize != 0 && t.IKEFragmentSize < 576 {
		c.errorf(path+".ike_fragment_size", "use 576-9000 octets (default 1280), or 0 to turn IKE fragmentation off",
			"%d is too small: IKE fragments must be at least 576 octets, the smallest datagram every IPv4 host reassembles", t.IKEFragmentSize)
	}
	minMTU := int64(576)
	if t.InsideIPv6CIDR.IsValid() || (len(t.TrafficSelectors.Local) > 0 && t.TrafficSelectors.Local[0].Addr().Is6()) {
		minMTU = 1280
	}
	t.MTU = int(c.intRange(path+".mtu", r.MTU, 0, 0, 1446, "use 0 (derive from the algorithms) or at most 1446, the largest MTU AWS supports"))
	if t.MTU != 0 && int64(t.MTU) < minMTU {
		c.errorf(path+".mtu", fmt.Sprintf("use 0 (derive from the algorithms) or %d-1446", minMTU), "MTU %d is too small", t.MTU)
	}
	t.MSSClamp = int(c.intRange(path+".mss_clamp", r.MSSClamp, DefaultMSSClamp, 0, 1406, fmt.Sprintf("use 0 (off) or at most 1406, the largest MSS AWS supports (default %d)", DefaultMSSClamp)))
	if t.MSSClamp != 0 && t.MSSClamp < 536 {
		c.errorf(path+".mss_clamp", fmt.Sprintf("use 0 (off) or 536-1406 (default %d)", DefaultMSSClamp), "MSS %d is too small", t.MSSClamp)
	}
	t.Oversize = Oversize(c.enum(path+".oversize", r.Oversize, string(OversizeFragment), string(OversizeFragment), string(OversizeICMP)))
	t.SourceCheck = SourceCheck(c.enum(path+".source_check", r.SourceCheck, string(SourceStrict), string(SourceStrict), string(SourceOff)))
	t.ExtraSources = c.prefixList(path+".extra_sources", r.ExtraSources, nil,
		"list the extra source prefixes AWS may send from through this tunnel, e.g. [10.9.0.0/16]")
	if t.SourceCheck == SourceOff && len(t.ExtraSources) > 0 {
		c.warnf(path+".extra_sources", "extra_sources has no effect with source_check: off")
	}

	t.Keepalive.Interval = DefaultKeepaliveInterval
	if r.Keepalive != nil {
		p := path + ".keepalive"
		if r.Keepalive.Target != nil && *r.Keepalive.Target != "" {
			t.Keepalive.Target = c.addr(p+".target", *r.Keepalive.Target, `write an IP address reachable through the tunnel (e.g. a VPC host), or "" for off`)
		}
		t.Keepalive.Interval = c.durationRange(p+".interval", r.Keepalive.Interval, DefaultKeepaliveInterval, time.Second, 300*time.Second,
			"use 1s-300s; AWS suggests about 5s")
	}
	t.AWS = c.awsTunnelOptions(path+".aws_tunnel_options", r.AWSTunnelOptions, &t, r.IKEProposals != nil, r.ESPProposals != nil)
	return t
}

// pskRE is AWS's PSK rule (aws-vpn-facts 2.5): 8-64 of [0-9A-Za-z._], not
// starting with 0.
var pskRE = regexp.MustCompile(`^[0-9A-Za-z._]+$`)

const pskFix = "use the pre-shared key of this tunnel from the AWS configuration (8-64 characters of 0-9 A-Z a-z . _, not starting with 0)"

func (c *checker) psk(path string, t *Tunnel, r *rawTunnel) {
	var key []byte
	var keyPath string
	switch {
	case r.PSK != nil && r.PSKFile != nil:
		c.errorf(path+".psk_file", "keep psk or psk_file, not both", "both psk and psk_file are set")
		return
	case r.PSK != nil:
		key, keyPath = []byte(*r.PSK), path+".psk"
		c.inline = append(c.inline, keyPath)
	case r.PSKFile != nil:
		keyPath = path + ".psk_file"
		var ok bool
		if key, t.PSKFile, ok = c.secretFile(keyPath, *r.PSKFile); !ok {
			return
		}
	default:
		c.errorf(path+".psk", "add `psk:` or `psk_file:` with this tunnel's pre-shared key", "missing pre-shared key")
		return
	}
	if msg, fix := pskProblem(key); msg != "" {
		c.errorf(keyPath, fix, "%s", msg)
		return
	}
	t.PSK = Secret(key)
}

// secretFile reads a key file named by the field at path (relative names
// resolve from the configuration's directory). It warns when the file is
// readable by group or others, strips one trailing newline, and reports
// problems without ever including the file's content.
func (c *checker) secretFile(path, name string) (key []byte, abs string, ok bool) {
	if name == "" {
		c.errorf(path, "write the path of a file holding the key", "empty %s", path[strings.LastIndex(path, ".")+1:])
		return nil, "", false
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(c.dir, name)
	}
	fi, err := os.Stat(name)
	if err != nil {
		c.errorf(path, "create the file with the key, readable by cgwd only (chmod 600)", "cannot read the key file: %v", stripPathErr(err))
		return nil, name, false
	}
	if !fi.Mode().IsRegular() {
		c.errorf(path, "point it at a regular file", "%s is not a regular file", name)
		return nil, name, false
	}
	if fi.Mode().Perm()&0o077 != 0 {
		c.warnf(path, "key file %s is accessible by group or others (mode %04o): run chmod 600 %s", name, fi.Mode().Perm(), name)
	}
	key, err = readSmall(name, maxPSKFile)
	if err != nil {
		c.errorf(path, "make the file readable by cgwd", "cannot read the key file: %v", stripPathErr(err))
		return nil, name, false
	}
	if len(key) > maxPSKFile {
		c.errorf(path, "point it at a file holding only the key", "%s is larger than any pre-shared key (%d bytes)", name, maxPSKFile)
		return nil, name, false
	}
	if len(key) > 0 && key[len(key)-1] == '\n' {
		key = key[:len(key)-1]
	}
	return key, name, true
}

// pskProblem describes what is wrong with key, or returns "" if AWS accepts
// it. The description never includes the key or any part of it.
func pskProblem(key []byte) (msg, fix string) {
	switch {
	case len(key) == 0:
		return "the pre-shared key is empty", pskFix
	case len(key) < 8 || len(key) > 64:
		return fmt.Sprintf("the pre-shared key has %d characters; AWS requires 8-64", len(key)), pskFix
	case key[len(key)-1] == '\r':
		return "the pre-shared key ends with a carriage return", "save the file with Unix line endings (dos2unix)"
	case !pskRE.Match(key):
		return "the pre-shared key contains characters AWS does not allow (spaces or characters other than 0-9 A-Z a-z . _)", pskFix
	case key[0] == '0':
		return "the pre-shared key starts with 0, which AWS does not allow", pskFix
	}
	return "", ""
}

// CheckPSK applies AWS's pre-shared key rules (8-64 characters of
// [0-9A-Za-z._], not starting with 0). The error never contains the key.
func CheckPSK(key []byte) error {
	if msg, fix := pskProblem(key); msg != "" {
		return fmt.Errorf("config: %s; %s", msg, fix)
	}
	return nil
}

// CheckInsideCIDR applies AWS's rules for a tunnel inside CIDR: an IPv4 /30
// in 169.254.0.0/16, not one of the reserved /30s, host bits clear.
func CheckInsideCIDR(p netip.Prefix) error {
	if msg := insideProblem(p); msg != "" {
		return fmt.Errorf("config: %s; %s", msg, insideFix)
	}
	return nil
}

const insideFix = "use the tunnel's inside /30 from the AWS configuration: a /30 in 169.254.0.0/16 outside the reserved 169.254.0.0/30-169.254.5.0/30 and 169.254.169.252/30"

func insideProblem(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "invalid prefix"
	case p.Masked() != p:
		return fmt.Sprintf("%v has bits set after the prefix length (write %v)", p, p.Masked())
	case !p.Addr().Is4() || p.Bits() != 30:
		return fmt.Sprintf("%v is not an IPv4 /30", p)
	case !linkLocal4.Contains(p.Addr()):
		return fmt.Sprintf("%v is not inside 169.254.0.0/16", p)
	}
	for _, r := range reservedInside {
		if r == p {
			return fmt.Sprintf("%v is reserved by AWS", p)
		}
	}
	return ""
}

// maxPSKFile bounds what is read from a psk_file (a key is at most 64
// characters; the rest is room for a newline).
const maxPSKFile = 1024

// readSmall reads at most limit+1 bytes of a file, so that a wrong path
// (a log, a device that passed the regular-file check) cannot make Load
// read without bound.
func readSmall(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

func stripPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

var (
	linkLocal4 = netip.MustParsePrefix("169.254.0.0/16")
	ula6       = netip.MustParsePrefix("fd00::/8")
	// AWS rejects these inside CIDRs (aws-vpn-facts 2.8).
	reservedInside = []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/30"),
		netip.MustParsePrefix("169.254.1.0/30"),
		netip.MustParsePrefix("169.254.2.0/30"),
		netip.MustParsePrefix("169.254.3.0/30"),
		netip.MustParsePrefix("169.254.4.0/30"),
		netip.MustParsePrefix("169.254.5.0/30"),
		netip.MustParsePrefix("169.254.169.252/30"),
	}
)

func (c *checker) insideCIDR(path, s string) netip.Prefix {
	p, ok := c.prefix(path, s, insideFix)
	if !ok {
		return netip.Prefix{}
	}
	if msg := insideProblem(p); msg != "" {
		c.errorf(path, insideFix, "%s", msg)
		return netip.Prefix{}
	}
	if first, dup := c.insides[p]; dup {
		c.errorf(path, "give every tunnel its own inside CIDR", "inside CIDR %v is already used by %s", p, first)
		return netip.Prefix{}
	}
	c.insides[p] = path
	return p
}

func (c *checker) insideCIDR6(path, s string) netip.Prefix {
	const fix = "use the tunnel's inside IPv6 /126 from the AWS configuration (within fd00::/8), or remove the key"
	p, ok := c.prefix(path, s, fix)
	if !ok {
		return netip.Prefix{}
	}
	switch {
	case !p.Addr().Is6() || p.Bits() != 126:
		c.errorf(path, fix, "%v is not an IPv6 /126", p)
	case !ula6.Contains(p.Addr()):
		c.errorf(path, fix, "%v is not inside fd00::/8", p)
	default:
		if first, dup := c.insides[p]; dup {
			c.errorf(path, "give every tunnel its own inside CIDR", "inside CIDR %v is already used by %s", p, first)
			return netip.Prefix{}
		}
		c.insides[p] = path
		return p
	}
	return netip.Prefix{}
}

func (c *checker) proposals(path string, r *[]string, def []string, ike bool) []ipsec.Proposal {
	list := def
	if r != nil {
		list = *r
		if len(list) == 0 {
			c.errorf(path, "list at least one proposal, or remove the key for the defaults", "empty proposal list")
			return nil
		}
	}
	aws := ipsec.AWSProposals(ike)
	var out []ipsec.Proposal
	anyUsable := false
	for i, s := range list {
		p := indexPath(path, i)
		prop, err := ipsec.ParseProposal(s, ike)
		if err != nil {
			c.errorf(p, "fix the proposal; see the keywords listed", "%s", strings.TrimPrefix(err.Error(), "ipsec: "))
			continue
		}
		out = append(out, prop)
		if r == nil {
			continue // the defaults are known good
		}
		check := prop
		if !ike && len(prop.DHGroups) == 0 {
			c.warnf(p, "ESP proposal %q has no DH group (no PFS): AWS's CHILD SA rekeys carry one and will fail with NO_PROPOSAL_CHOSEN; add e.g. modp2048", s)
			check.DHGroups = []ipsec.DHGroup{ipsec.DHMODP2048}
		}
		usable := false
		for _, a := range aws {
			if ipsec.Overlaps(check, a) {
				usable = true
			}
		}
		if !usable {
			c.warnf(p, "proposal %q has no algorithm combination AWS accepts (AWS: AES-CBC/GCM 128/256, SHA1/SHA2, DH 2, 14-24%s, no ESN); AWS will never choose it", s, map[bool]string{true: "", false: ", 5"}[ike])
		}
		anyUsable = anyUsable || usable
	}
	if r != nil && len(out) == len(list) && !anyUsable {
		c.warnf(path, "no proposal of this list can meet an AWS tunnel: the tunnel will never come up; remove the key to offer every algorithm AWS accepts, or list the ones the AWS tunnel options allow")
	}
	return out
}

// Lifetime bounds. AWS accepts phase 1 900s-28800s, phase 2 900s-3600s and
// a rekey margin of 60s up to half of phase 2 (aws-vpn-facts 2.2). cgw
// enforces the upper bounds but only warns below AWS's minimums, down to
// minLifetime and minRekeyMargin: rekey soak tests against a simulated AWS
// side need lifetimes of seconds, and such values are otherwise harmless
// (AWS rekeys on its own schedule whatever cgw's lifetimes are).
const (
	minLifetime       = 10 * time.Second
	minRekeyMargin    = time.Second
	awsMinIKELifetime = 900 * time.Second
	awsMinChildLife   = 900 * time.Second
	awsMinRekeyMargin = 60 * time.Second
)

// lifetimes applies AWS's rules (see the bounds above): child_lifetime
// shorter than ike_lifetime, fuzz 0..100 percent, and each lifetime longer
// than margin*(1+fuzz/100) so the earliest rekey moment is in the future
// (the IKE engine refuses anything else).
func (c *checker) lifetimes(path string, t *Tunnel, r *rawTunnel) {
	t.IKELifetime = c.durationRange(path+".ike_lifetime", r.IKELifetime, DefaultIKELifetime, minLifetime, 28800*time.Second,
		"use 900s-28800s (15m-8h) and match the AWS Phase 1 lifetime (default 8h)")
	if r.IKELifetime != nil && t.IKELifetime >= minLifetime && t.IKELifetime < awsMinIKELifetime {
		c.warnf(path+".ike_lifetime", "%v is below AWS's minimum Phase 1 lifetime (900s): AWS cannot be set to match, so only tests against a simulated AWS side should use it", t.IKELifetime)
	}
	t.ChildLifetime = c.durationRange(path+".child_lifetime", r.ChildLifetime, DefaultChildLifetime, minLifetime, 3600*time.Second,
		"use 900s-3600s (15m-1h) and match the AWS Phase 2 lifetime (default 1h)")
	if r.ChildLifetime != nil && t.ChildLifetime >= minLifetime && t.ChildLifetime < awsMinChildLife {
		c.warnf(path+".child_lifetime", "%v is below AWS's minimum Phase 2 lifetime (900s): AWS cannot be set to match, so only tests against a simulated AWS side should use it", t.ChildLifetime)
	}
	if t.IKELifetime != 0 && t.ChildLifetime != 0 && t.ChildLifetime >= t.IKELifetime {
		at := path + ".child_lifetime"
		if r.ChildLifetime == nil {
			at = path + ".ike_lifetime" // point at the key the operator wrote
		}
		c.errorf(at, "make child_lifetime shorter than ike_lifetime, as AWS requires",
			"child_lifetime %v is not shorter than ike_lifetime %v", t.ChildLifetime, t.IKELifetime)
	}
	maxMargin := t.ChildLifetime / 2
	t.RekeyMargin = c.durationRange(path+".rekey_margin", r.RekeyMargin, DefaultRekeyMargin, minRekeyMargin, maxMargin,
		fmt.Sprintf("use 60s up to half of child_lifetime (%v); AWS's default is 270s", maxMargin))
	if r.RekeyMargin != nil && t.RekeyMargin >= minRekeyMargin && t.RekeyMargin < awsMinRekeyMargin {
		c.warnf(path+".rekey_margin", "%v is below AWS's minimum rekey margin (60s): AWS cannot be set to match, so only tests against a simulated AWS side should use it", t.RekeyMargin)
	}
	t.RekeyFuzz = int(c.intRange(path+".rekey_fuzz", r.RekeyFuzz, DefaultRekeyFuzz, 0, 100, "use a percentage of rekey_margin, 0-100 (default 100)"))
	// The earliest rekey is lifetime - margin - margin*fuzz/100.
	window := t.RekeyMargin + t.RekeyMargin*time.Duration(t.RekeyFuzz)/100
	if t.ChildLifetime != 0 && t.ChildLifetime <= window {
		at := path + ".rekey_margin"
		if r.RekeyMargin == nil {
			at = path + ".child_lifetime"
		}
		c.errorf(at, "lower rekey_margin or rekey_fuzz, or raise child_lifetime",
			"child_lifetime %v does not exceed rekey_margin %v plus %d%% fuzz (%v): the rekey would be due before the SA exists", t.ChildLifetime, t.RekeyMargin, t.RekeyFuzz, window)
	}
}

func (c *checker) selectors(path string, t *Tunnel, r *rawTunnel) {
	def := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	if t.InsideIPv6CIDR.IsValid() {
		def = []netip.Prefix{netip.MustParsePrefix("::/0")}
	}
	const fix = "list prefixes, or remove the key for AWS's default 0.0.0.0/0 (::/0 for IPv6 connections)"
	t.TrafficSelectors.Local, t.TrafficSelectors.Remote = def, def
	if r.TrafficSelectors == nil {
		return
	}
	p := path + ".traffic_selectors"
	for _, side := range []struct {
		name string
		raw  *[]string
		out  *[]netip.Prefix
	}{{"local", r.TrafficSelectors.Local, &t.TrafficSelectors.Local}, {"remote", r.TrafficSelectors.Remote, &t.TrafficSelectors.Remote}} {
		if side.raw == nil {
			continue
		}
		if len(*side.raw) == 0 {
			c.errorf(p+"."+side.name, fix, "empty selector list")
			continue
		}
		*side.out = c.prefixList(p+"."+side.name, side.raw, def, fix)
	}
	all := append(append([]netip.Prefix(nil), t.TrafficSelectors.Local...), t.TrafficSelectors.Remote...)
	for _, q := range all[1:] {
		if q.Addr().Is4() != all[0].Addr().Is4() {
			c.errorf(p, "an AWS connection carries IPv4 or IPv6 inside traffic, not both: use one family in all selectors", "mixed IPv4 and IPv6 selectors")
			break
		}
	}
}
