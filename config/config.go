// Package config is cgw's configuration file: the YAML schema (version 1),
// strict decoding (unknown keys are errors), defaults equal to AWS
// Site-to-Site VPN's tunnel defaults, validation against AWS's rules, and
// Diff for reloads.
//
// Load and Parse return a fully defaulted and validated *Config or every
// problem found, each as a *FieldError naming the file, line, field path and
// the fix, joined with errors.Join. Doubtful but legal settings come back as
// Warnings. A *Config is plain data: it is never modified by this package
// after it is returned, and it is safe to share between goroutines if the
// caller does not modify it either. Pre-shared keys never appear in errors,
// warnings or in the String/Format output of Secret.
//
// config is the on-disk schema only; the daemon translates it into the
// configuration types of ike, bgp and dataplane, so the file format can
// change without touching the protocol packages. config imports no other cgw
// package except the ipsec vocabulary.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// Version is the schema version this package reads.
const Version = 1

// Config is one validated configuration file.
type Config struct {
	Version     int
	Log         Log
	Control     Control
	Metrics     Metrics
	Routes      Routes
	Connections []Connection
	BGP         GlobalBGP // the top-level bgp section (LAN neighbors)
	// Source is the file name given to Load or Parse.
	Source string
}

// LogFormat is the daemon's log output format.
type LogFormat string

const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Log configures the daemon's logger.
type Log struct {
	Format LogFormat
	Level  slog.Level
}

// Control configures the management socket.
type Control struct {
	Socket string // absolute path of the unix socket
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string // host:port; "" = off
}

// Routes configures the kernel routes cgw installs for learned and static
// prefixes.
//
// cgw's routes live in a table of their own; policy rules (at RulePriority
// and RulePriority+1) let the main table's non-default routes win and keep
// packets carrying FwMark (cgwd's own IKE and ESP sockets) away from cgw's
// table, so no route from AWS can capture the tunnels themselves.
type Routes struct {
	Table        int    // cgw's routing table (not main)
	Protocol     int    // rtnetlink protocol number marking cgw's routes and rules
	Metric       int    // metric of cgw's routes
	FwMark       uint32 // SO_MARK on cgwd's sockets
	RulePriority int    // priority of the first policy rule; the second is +1
}

// Routing is how a connection learns the AWS-side prefixes.
type Routing string

const (
	RoutingBGP    Routing = "bgp"
	RoutingStatic Routing = "static"
)

// Connection is one AWS VPN connection: two tunnels to two AWS endpoints.
type Connection struct {
	Name string
	// LocalAddress is the outside address to use; the zero Addr means any.
	LocalAddress netip.Addr
	// LocalID is our IKE identity (ID_IPV4_ADDR/ID_IPV6_ADDR): the public
	// address registered on the AWS customer gateway. Zero means "the
	// outside address in use".
	LocalID netip.Addr
	// Auth and Cert are the defaults of the tunnels.
	Auth    AuthMethod
	Cert    *Certificate
	Routing Routing
	BGP     *BGP    // non-nil iff Routing == RoutingBGP
	Static  *Static // non-nil iff Routing == RoutingStatic
	// Tunnels holds one or two tunnels; the first is the preferred one.
	Tunnels []Tunnel
}

// BGPMode is how the two tunnels share traffic from the customer side.
type BGPMode string

const (
	// ActivePassive prefers the first tunnel: routes advertised on the
	// second are prepended SecondaryPrepend times.
	ActivePassive BGPMode = "active-passive"
	// ActiveActive advertises equally on both tunnels.
	ActiveActive BGPMode = "active-active"
)

// BGP is a connection's BGP setup; one eBGP session runs per tunnel between
// the inside addresses.
type BGP struct {
	ASN              uint32 // ours (the customer gateway's)
	PeerASN          uint32 // AWS side (VGW or TGW); default 64512
	HoldTime         time.Duration
	Keepalive        time.Duration
	Advertise        []netip.Prefix
	Mode             BGPMode
	SecondaryPrepend int // active-passive only; 0 in active-active
	// SecondaryMED is sent on the routes advertised over the second tunnel
	// (active-passive only; 0 = no MED), an alternative or addition to the
	// prepend for AWS's path choice (it compares MEDs of paths from the
	// same AS).
	SecondaryMED uint32
	// PrefixLimit caps the prefixes installed from AWS (after Import):
	// above it cgw installs no further ones and says so; 0 = off.
	PrefixLimit uint32
	// AdvertiseKernel announces kernel routes (not installed by cgw) whose
	// destination lies inside one of these prefixes, as they come and go.
	AdvertiseKernel []netip.Prefix
	// Password is the optional TCP MD5 key (RFC 2385) of the sessions.
	Password Secret
	// Import filters the prefixes learned from AWS before they become
	// kernel routes.
	Import Import
}

// Import is a connection's import policy for prefixes learned from AWS.
type Import struct {
	// Allow, when not empty, lists the prefixes that may be installed: a
	// learned prefix must lie inside one of them. Empty = all.
	Allow []netip.Prefix
	// Deny lists prefixes never installed: a learned prefix inside one of
	// them is filtered. Deny wins over Allow.
	Deny []netip.Prefix
	// AcceptDefault installs a default route (0.0.0.0/0, ::/0) from AWS.
	// Off by default: it is filtered and shown in status.
	AcceptDefault bool
}

// Static is a connection's static routing: prefixes routed into the tunnels.
type Static struct {
	RemotePrefixes []netip.Prefix
}

// DPDAction is what happens when dead peer detection declares AWS dead.
type DPDAction string

const (
	DPDRestart DPDAction = "restart" // re-establish at once (default)
	DPDClear   DPDAction = "clear"   // tear down and wait for AWS
	DPDNone    DPDAction = "none"    // keep the SAs
)

// Oversize is what happens to an inner packet larger than the tunnel MTU.
type Oversize string

const (
	// OversizeFragment is AWS's advice (clear_df_bit and
	// fragmentation_before_encryption): IPv4 packets get DF cleared and are
	// fragmented before encryption, so every ESP packet fits the path; AWS
	// does not reassemble fragmented ESP. IPv6 packets get ICMPv6 "packet
	// too big". The default.
	OversizeFragment Oversize = "fragment"
	// OversizeICMP honours DF: IPv4 packets with DF get ICMP "fragmentation
	// needed" with the tunnel MTU (path MTU discovery), those without DF are
	// fragmented; IPv6 packets get "packet too big".
	OversizeICMP Oversize = "icmp"
)

// StartupAction says who starts a tunnel.
type StartupAction string

const (
	StartInitiate StartupAction = "initiate" // cgw starts IKE (AWS startup action "add")
	StartRespond  StartupAction = "respond"  // AWS starts IKE (AWS startup action "start")
)

// Encapsulation says how a tunnel's ESP travels.
type Encapsulation string

const (
	// EncapUDP always carries ESP in UDP 4500 (RFC 3948): cgw asks for
	// it whether or not a NAT is in the path. The default.
	EncapUDP Encapsulation = "udp"
	// EncapAuto follows NAT detection (RFC 7296, Section 2.23): ESP in
	// UDP when a NAT is detected or the peer forces it, else raw ESP (IP
	// protocol 50, needs CAP_NET_RAW).
	EncapAuto Encapsulation = "auto"
)

// Tunnel is one IPsec tunnel to one AWS endpoint.
type Tunnel struct {
	Name        string
	PeerAddress netip.Addr
	PeerID      netip.Addr // AWS's IKE identity; defaults to PeerAddress
	PSK         Secret
	PSKFile     string // where PSK was read from; "" when given inline
	// Auth is psk or certificate; with certificate, Cert is set and PeerDN
	// (DER) is AWS's identity when peer_id is a DN (nil: any identity
	// the CA vouches for).
	Auth   AuthMethod
	Cert   *Certificate
	PeerDN []byte
	// InsideCIDR is the /30 in 169.254.0.0/16: AWS uses the first usable
	// address, cgw the second (InsidePeer, InsideLocal).
	InsideCIDR netip.Prefix
	// InsideIPv6CIDR is the optional /126 in fd00::/8 of IPv6-inside
	// (Transit Gateway) connections; the zero Prefix when unset.
	InsideIPv6CIDR netip.Prefix

	IKEProposals []ipsec.Proposal // at least one
	ESPProposals []ipsec.Proposal // at least one

	IKELifetime   time.Duration
	ChildLifetime time.Duration
	RekeyMargin   time.Duration
	RekeyFuzz     int // percent of RekeyMargin, 0..100

	DPD              DPD
	StartupAction    StartupAction
	TrafficSelectors TrafficSelectors
	ForceEncap       bool
	Encapsulation    Encapsulation
	NATKeepalive     time.Duration // 0 = off
	ReplayWindow     int
	MTU              int // 0 = derived from the negotiated algorithms
	MSSClamp         int // 0 = off
	Oversize         Oversize
	Keepalive        Keepalive
	// SourceCheck drops decrypted packets whose source lies outside what
	// the tunnel may carry: the connection's learned or configured
	// prefixes, the inside CIDRs and ExtraSources.
	SourceCheck  SourceCheck
	ExtraSources []netip.Prefix

	// IKEFragmentSize is the largest IP datagram an IKE message goes out
	// in once IKE fragmentation (RFC 7383) is negotiated; 0 = never
	// fragment (and do not offer it).
	IKEFragmentSize int
	// AWS is what the AWS side of the tunnel is configured with, as far as
	// the file records it (aws_tunnel_options); nil when not recorded.
	AWS *AWSTunnelOptions
}

// SourceCheck is the inner source address check after decryption.
type SourceCheck string

const (
	SourceStrict SourceCheck = "strict" // drop and count as drops{reason="source"} (default)
	SourceOff    SourceCheck = "off"
)

// InsideLocal is cgw's inside address: the second usable address of the /30.
func (t *Tunnel) InsideLocal() netip.Addr { return nthAddr(t.InsideCIDR, 2) }

// InsidePeer is AWS's inside address (the BGP neighbor): the first usable
// address of the /30.
func (t *Tunnel) InsidePeer() netip.Addr { return nthAddr(t.InsideCIDR, 1) }

// InsideLocal6 and InsidePeer6 are the IPv6 inside addresses, or the zero
// Addr without an InsideIPv6CIDR.
func (t *Tunnel) InsideLocal6() netip.Addr { return nthAddr(t.InsideIPv6CIDR, 2) }

// InsidePeer6 is AWS's IPv6 inside address (see InsideLocal6).
func (t *Tunnel) InsidePeer6() netip.Addr { return nthAddr(t.InsideIPv6CIDR, 1) }

func nthAddr(p netip.Prefix, n int) netip.Addr {
	if !p.IsValid() {
		return netip.Addr{}
	}
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// DPD configures dead peer detection (RFC 7296, Section 2.4): a liveness
// check after Interval without inbound traffic, the peer declared dead
// after Retries unanswered retransmissions.
type DPD struct {
	Interval time.Duration
	Retries  int
	Action   DPDAction
}

// TrafficSelectors are the CHILD SA selectors, local = the customer side.
// AWS proposes 0.0.0.0/0 on both sides unless its tunnel options narrow them.
type TrafficSelectors struct {
	Local, Remote []netip.Prefix
}

// Keepalive is an optional ICMP echo through the tunnel that keeps it busy
// (AWS recommends one, about every 5 s, for idle tunnels).
type Keepalive struct {
	Target   netip.Addr // zero = off
	Interval time.Duration
}

// Secret is a pre-shared key. Printing it with fmt, encoding/json or a
// text marshaller yields "[redacted]"; convert it to []byte to use it.
type Secret []byte

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Defaults. They equal AWS's tunnel defaults (aws-vpn-facts sections 2.2,
// 2.3, 2.7, 2.10, 4) so that both ends rekey and probe on the same schedule.
const (
	DefaultSocket            = "/run/cgw/cgw.sock"
	DefaultRouteTable        = 199
	DefaultRouteProtocol     = 199
	DefaultRouteMetric       = 100
	DefaultRouteFwMark       = 0xc7 // 199
	DefaultRouteRulePriority = 32000

	DefaultPeerASN          = 64512
	DefaultHoldTime         = 30 * time.Second
	DefaultSecondaryPrepend = 2

	DefaultIKELifetime       = ipsec.AWSIKELifetime
	DefaultChildLifetime     = ipsec.AWSChildLifetime
	DefaultRekeyMargin       = ipsec.AWSRekeyMargin
	DefaultRekeyFuzz         = ipsec.AWSRekeyFuzz
	DefaultDPDInterval       = ipsec.AWSDPDInterval
	DefaultDPDRetries        = ipsec.AWSDPDRetries
	DefaultNATKeepalive      = 20 * time.Second
	DefaultReplayWindow      = ipsec.AWSReplayWindow
	DefaultIKEFragmentSize   = 1280 // IPv6's minimum MTU; strongSwan's charon.fragment_size
	DefaultMSSClamp          = ipsec.AWSMSSClamp
	DefaultKeepaliveInterval = 5 * time.Second
)

// Default returns the global sections with their defaults and no
// connections.
func Default() *Config {
	return &Config{
		Version: Version,
		Log:     Log{Format: LogText, Level: slog.LevelInfo},
		Control: Control{Socket: DefaultSocket},
		Routes: Routes{Table: DefaultRouteTable, Protocol: DefaultRouteProtocol, Metric: DefaultRouteMetric,
			FwMark: DefaultRouteFwMark, RulePriority: DefaultRouteRulePriority},
	}
}

// Load reads, decodes and validates the file at path. psk_file paths are
// relative to the directory of path. On error the *Config is nil; warnings
// are returned either way.
func Load(path string) (*Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		msg := err.Error()
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, nil, &FieldError{File: path, Msg: "cannot read the configuration file: " + msg,
			Fix: "check the path (cgwd --config) and its permissions"}
	}
	cfg, warns, inline, err := parseFile(data, path)
	if fi, serr := os.Stat(path); serr == nil && len(inline) > 0 && fi.Mode().Perm()&0o077 != 0 {
		warns = append(warns, Warning{File: path, Path: inline[0],
			Msg: fmt.Sprintf("the file holds secrets (%s) and is accessible by group or others (mode %04o): run chmod 600 %s, or move the keys to psk_file/password_file",
				strings.Join(inline, ", "), fi.Mode().Perm(), path)})
	}
	return cfg, warns, err
}

// Parse decodes and validates a configuration held in memory; name is used
// in messages and to resolve relative psk_file paths (relative to
// filepath.Dir(name)).
func Parse(data []byte, name string) (*Config, []Warning, error) {
	cfg, warns, _, err := parseFile(data, name)
	return cfg, warns, err
}

// parseFile is Parse that also returns the field paths of the secrets written
// inline (psk, bgp password), for Load's file mode check.
func parseFile(data []byte, name string) (*Config, []Warning, []string, error) {
	raw, ix, bad, errs := decode(data, name)
	if raw == nil {
		return nil, nil, nil, errors.Join(errs...)
	}
	c := &checker{file: name, dir: filepath.Dir(name), ix: ix, bad: bad, errs: errs}
	cfg := c.config(raw)
	if len(c.errs) > 0 {
		return nil, c.warns, c.inline, errors.Join(c.errs...)
	}
	cfg.Source = name
	return cfg, c.warns, c.inline, nil
}
