// Package sim builds a network-namespace simulation of an AWS Site-to-Site VPN
// connection for end-to-end tests, the demo and the benchmark.
//
// Topology (every namespace is named "cgw-<id>-<role>"):
//
//	lan 10.1.0.10/24
//	 └─ cust: lan0 10.1.0.1/24, wan0 203.0.113.10/24 (customer gateway; cgwd or strongSwan runs here)
//	     └─ inet: cust0 203.0.113.1/24, br0 198.51.100.1/24 ("the internet"; NAT and fault injection)
//	         ├─ aws1: wan0 198.51.100.10, vpc0 10.0.255.249/30   (AWS tunnel 1: charon + BIRD)
//	         └─ aws2: wan0 198.51.100.20, vpc0 10.0.255.253/30   (AWS tunnel 2: charon + BIRD)
//	             └─ vpc: aws1 10.0.255.250/30, aws2 10.0.255.254/30, host0 10.0.0.1/16 (BIRD, iBGP to both endpoints)
//	                 └─ vpchost 10.0.0.10/16
//
// With Options.NAT the customer's outside address becomes 192.168.100.10/24
// and inet source-NATs it to 203.0.113.10 (with new source ports), so the
// customer is behind a NAT while its public address stays 203.0.113.10.
//
// Each AWS endpoint runs its own charon (strongSwan 5.9 with kernel-libipsec,
// userspace ESP on the TUN "ipsec0") in its own network namespace and its own
// mount namespace (private tmpfs on /run, private strongswan.conf and vici
// socket), configured with swanctl following aws-vpn-facts §9.4, and its own
// BIRD 2 (ASN 64512, hold 30 s, keepalive 10 s, VPC CIDR advertised with a
// lower MED on tunnel 1, import limit 100, AWS's next-hop and AS-path
// refusals; §9.5). Each endpoint also speaks iBGP to the vpc namespace, which
// therefore routes return traffic to the LAN through whichever endpoint has a
// working tunnel (BGP mode: the routes the customer advertised; static mode:
// the LAN prefix, announced while the CHILD_SA is up via a swanctl updown
// script).
//
// A Sim is not safe for concurrent use except where a method says so. Close
// tears everything down (processes, namespaces, temporary files) and is safe
// to call more than once; tests should register it with t.Cleanup right after
// New. Namespaces, nftables rules and processes exist only inside the
// namespaces a Sim creates; no traffic leaves them.
package sim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cgwproject/cgw/internal/certtest"
)

// Role names one namespace of the topology.
type Role string

const (
	LAN     Role = "lan"
	Cust    Role = "cust"
	Inet    Role = "inet"
	AWS1    Role = "aws1"
	AWS2    Role = "aws2"
	VPC     Role = "vpc"
	VPCHost Role = "vpchost"
)

// Roles lists every namespace role in creation order.
var Roles = []Role{LAN, Cust, Inet, AWS1, AWS2, VPC, VPCHost}

// Fixed addresses of the topology.
var (
	LANHostAddr    = netip.MustParseAddr("10.1.0.10")
	CustLANAddr    = netip.MustParseAddr("10.1.0.1")
	CustPublicAddr = netip.MustParseAddr("203.0.113.10") // outside address (or NAT public address)
	CustNATAddr    = netip.MustParseAddr("192.168.100.10")
	InetCustAddr   = netip.MustParseAddr("203.0.113.1")
	InetNATAddr    = netip.MustParseAddr("192.168.100.1")
	InetAWSAddr    = netip.MustParseAddr("198.51.100.1")
	VPCHostAddr    = netip.MustParseAddr("10.0.0.10")
	VPCRouterAddr  = netip.MustParseAddr("10.0.0.1")
	DefaultLAN     = netip.MustParsePrefix("10.1.0.0/24")
	DefaultVPC     = netip.MustParsePrefix("10.0.0.0/16")
)

// Endpoint is the fixed per-tunnel data of the simulated AWS side.
type Endpoint struct {
	Index      int        // 1 or 2
	Role       Role       // AWS1 or AWS2
	Outside    netip.Addr // AWS outside address
	Inside     netip.Prefix
	AWSInside  netip.Addr // first usable of the /30
	CustInside netip.Addr // second usable of the /30
	DefaultPSK string
}

// Endpoints holds tunnel 1 and tunnel 2 (index 0 and 1).
var Endpoints = [2]Endpoint{
	{
		Index: 1, Role: AWS1,
		Outside:    netip.MustParseAddr("198.51.100.10"),
		Inside:     netip.MustParsePrefix("169.254.15.192/30"),
		AWSInside:  netip.MustParseAddr("169.254.15.193"),
		CustInside: netip.MustParseAddr("169.254.15.194"),
		DefaultPSK: "EXAMPLEpsk1_abcdefghij.klmnopqrs",
	},
	{
		Index: 2, Role: AWS2,
		Outside:    netip.MustParseAddr("198.51.100.20"),
		Inside:     netip.MustParsePrefix("169.254.13.236/30"),
		AWSInside:  netip.MustParseAddr("169.254.13.237"),
		CustInside: netip.MustParseAddr("169.254.13.238"),
		DefaultPSK: "EXAMPLEpsk2_tuvwxyzABC.DEFGHIJKL",
	},
}

// AWSMode selects what runs on the AWS side.
type AWSMode string

const (
	AWSStrongSwan AWSMode = ""     // charon + BIRD per endpoint, BIRD in vpc (default)
	AWSNone       AWSMode = "none" // bare topology; the caller configures aws1/aws2/vpc itself
)

// CustomerMode selects what the Sim runs in the cust namespace.
type CustomerMode string

const (
	CustomerNone       CustomerMode = ""           // nothing: the test runs cgwd (or anything else) there
	CustomerStrongSwan CustomerMode = "strongswan" // charon + libipsec (+ BIRD ASN 65000 in BGP mode)
)

// Routing selects how the LAN and VPC prefixes are exchanged.
type Routing string

const (
	RoutingBGP    Routing = "bgp"
	RoutingStatic Routing = "static"
)

// EndpointOptions configure one simulated AWS tunnel endpoint. Zero values
// take the AWS defaults (aws-vpn-facts §2.2).
type EndpointOptions struct {
	Disabled     bool     // do not start this endpoint at all
	PSK          string   // [0-9A-Za-z._], 8..64 chars; default Endpoints[i].DefaultPSK
	IKEProposals []string // strongSwan syntax; default DefaultIKEProposals (lowest first)
	ESPProposals []string // default DefaultESPProposals
	Version      int      // 0 = IKEv1+IKEv2, 1, 2; default 2 (see VersionAny)
	VersionAny   bool     // set Version 0 (accept IKEv1 and IKEv2)

	IKELifetime   time.Duration // default 8h
	ChildLifetime time.Duration // default 1h
	RekeyMargin   time.Duration // default 270s
	RekeyFuzz     int           // percent, default 100; -1 = 0 %
	DPDDelay      time.Duration // default 10s; negative = DPD off
	DPDAction     string        // clear (default) | restart | none (DPD off)
	StartAction   string        // none (default, AWS "add") | start (AWS initiates)
	ReplayWindow  int           // default 1024

	// NoEncap sets encap = no. By default the simulator sets encap = yes:
	// kernel-libipsec always sends ESP inside UDP (RFC 3948) and cannot do
	// raw ESP (IP proto 50), so NAT detection is forced (a faked
	// NAT_DETECTION hash) to make both peers agree on UDP encapsulation and
	// float IKE to port 4500. Without it a peer that sees no NAT would expect
	// raw ESP while libipsec sends ESP-in-UDP, and no traffic would pass.
	NoEncap bool

	MED          uint32 // MED on the VPC CIDR advertised to the customer; default 100 (t1) / 200 (t2)
	ImportLimit  int    // BGP prefix limit from the customer; default 100
	BGPPassword  string // TCP MD5 key (RFC 2385) of the BGP session; "" = none
	CustomerASN  uint32 // expected customer ASN; default Options.CustomerASN
	ExtraSwanctl string // appended verbatim inside the connection block (advanced tests)
	// AdvertiseDefault makes BIRD also advertise 0.0.0.0/0 to the customer,
	// as a Transit Gateway route table with a default route to an egress
	// VPC does (MED as for the VPC CIDR).
	AdvertiseDefault bool
}

// Options configure a Sim. The zero value is two AWS endpoints with AWS
// defaults, BGP routing, no NAT, nothing in the cust namespace.
type Options struct {
	ID        string // namespace suffix; default 4 random hex digits
	Tunnels   int    // 1 or 2 (default 2); 1 disables endpoint 2
	AWS       AWSMode
	Customer  CustomerMode
	Routing   Routing // default bgp
	NAT       bool    // customer behind NAT (see package doc)
	AWSASN    uint32  // default 64512
	Endpoint  [2]EndpointOptions
	LANPrefix netip.Prefix // default 10.1.0.0/24
	VPCPrefix netip.Prefix // default 10.0.0.0/16

	// IPv6Outside puts both tunnels on IPv6 outside addresses
	// (2001:db8::/32, see ipv6.go): AWS's OutsideIpAddressType=Ipv6.
	IPv6Outside bool
	// IPv6Inside makes the connection IPv6-inside (see ipv6inside.go):
	// AWS's TunnelInsideIpVersion=ipv6. BGP routing, cgwd customer.
	IPv6Inside bool

	CustomerASN uint32 // default 65000
	// CustomerIKEProposals/CustomerESPProposals are the strongSwan
	// customer's proposals (CustomerStrongSwan only); default
	// aes128gcm16-prfsha256-ecp256 / aes128gcm16-ecp256.
	CustomerIKEProposals []string
	CustomerESPProposals []string

	// Cert, when set, authenticates with certificates (AWS strongSwan
	// endpoints only; see CertOptions).
	Cert *CertOptions

	// Dir is where configs, sockets and logs go; default a new temp dir
	// that Close removes (unless KeepDir).
	Dir     string
	KeepDir bool
	// Logf receives progress lines (e.g. t.Logf); nil = silent.
	Logf func(format string, args ...any) `json:"-"`
	// Timeout bounds start-up waits (charon, TUN, BIRD sockets); default 15s.
	Timeout time.Duration

	// CharonFragmentSize sets charon.fragment_size (the largest IP
	// datagram of an IKE fragment) in every charon; 0 = strongSwan's
	// default, 1280. The endpoints have fragmentation = yes.
	CharonFragmentSize int
}

// Sim is a running simulation.
type Sim struct {
	opts   Options
	id     string
	dir    string
	ownDir bool

	mu      sync.Mutex
	procs   []*Process
	closed  bool
	charons map[Role]*Process
	birds   map[Role]*Process
	iperfOn map[netip.Addr]*Process
	pki     *certtest.PKI
	// custAddr is the customer's outside address after
	// ChangeCustomerAddress (zero: the original one).
	custAddr netip.Addr
}

func (o *Options) setDefaults() error {
	if o.ID == "" {
		id, err := RandomID()
		if err != nil {
			return err
		}
		o.ID = id
	}
	for _, c := range o.ID {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Errorf("sim: ID %q: use lowercase letters and digits only", o.ID)
		}
	}
	if len(o.ID) > 12 {
		return fmt.Errorf("sim: ID %q: at most 12 characters", o.ID)
	}
	if err := o.checkIPv6(); err != nil {
		return err
	}
	if err := o.checkIPv6Inside(); err != nil {
		return err
	}
	if o.Tunnels == 0 {
		o.Tunnels = 2
	}
	if o.Tunnels != 1 && o.Tunnels != 2 {
		return fmt.Errorf("sim: Tunnels = %d: want 1 or 2", o.Tunnels)
	}
	if o.Tunnels == 1 {
		o.Endpoint[1].Disabled = true
	}
	if o.Routing == "" {
		o.Routing = RoutingBGP
	}
	if o.Routing != RoutingBGP && o.Routing != RoutingStatic {
		return fmt.Errorf("sim: Routing %q: want bgp or static", o.Routing)
	}
	switch o.AWS {
	case AWSStrongSwan, AWSNone:
	default:
		return fmt.Errorf("sim: AWS mode %q: want \"\" (strongswan) or none", o.AWS)
	}
	switch o.Customer {
	case CustomerNone, CustomerStrongSwan:
	default:
		return fmt.Errorf("sim: Customer %q: want \"\" or strongswan", o.Customer)
	}
	if o.AWSASN == 0 {
		o.AWSASN = 64512
	}
	if o.CustomerASN == 0 {
		o.CustomerASN = 65000
	}
	if !o.LANPrefix.IsValid() {
		o.LANPrefix = DefaultLAN
	}
	if !o.VPCPrefix.IsValid() {
		o.VPCPrefix = DefaultVPC
	}
	if !o.VPCPrefix.Addr().Is4() || o.VPCPrefix.Bits() > 24 || !o.LANPrefix.Addr().Is4() {
		return fmt.Errorf("sim: LANPrefix %v and VPCPrefix %v must be IPv4, VPCPrefix at most /24", o.LANPrefix, o.VPCPrefix)
	}
	if !o.LANPrefix.Contains(LANHostAddr) || !o.VPCPrefix.Contains(VPCHostAddr) {
		return fmt.Errorf("sim: LANPrefix %v must contain %v and VPCPrefix %v must contain %v", o.LANPrefix, LANHostAddr, o.VPCPrefix, VPCHostAddr)
	}
	if len(o.CustomerIKEProposals) == 0 {
		o.CustomerIKEProposals = []string{"aes128gcm16-prfsha256-ecp256"}
	}
	if len(o.CustomerESPProposals) == 0 {
		o.CustomerESPProposals = []string{"aes128gcm16-ecp256"}
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	for i := range o.Endpoint {
		if err := o.Endpoint[i].setDefaults(i, o); err != nil {
			return err
		}
	}
	return nil
}

// RandomID returns a fresh 4-hex-digit simulation id.
func RandomID() (string, error) {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sim: random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func (e *EndpointOptions) setDefaults(i int, o *Options) error {
	if e.PSK == "" {
		e.PSK = Endpoints[i].DefaultPSK
	}
	if err := checkPSK(e.PSK); err != nil {
		return fmt.Errorf("sim: endpoint %d: %w", i+1, err)
	}
	if len(e.IKEProposals) == 0 {
		e.IKEProposals = DefaultIKEProposals
	}
	if len(e.ESPProposals) == 0 {
		e.ESPProposals = DefaultESPProposals
	}
	for _, p := range append(append([]string{}, e.IKEProposals...), e.ESPProposals...) {
		if err := checkToken(p); err != nil {
			return fmt.Errorf("sim: endpoint %d: proposal %q: %w", i+1, p, err)
		}
	}
	if e.VersionAny {
		e.Version = 0
	} else if e.Version == 0 {
		e.Version = 2
	}
	if e.IKELifetime == 0 {
		e.IKELifetime = 8 * time.Hour
	}
	if e.ChildLifetime == 0 {
		e.ChildLifetime = time.Hour
	}
	if e.RekeyMargin == 0 {
		e.RekeyMargin = 270 * time.Second
	}
	if e.RekeyFuzz == 0 {
		e.RekeyFuzz = 100
	} else if e.RekeyFuzz < 0 {
		e.RekeyFuzz = 0
	}
	if e.RekeyMargin >= e.ChildLifetime || e.RekeyMargin >= e.IKELifetime {
		return fmt.Errorf("sim: endpoint %d: RekeyMargin %v must be below both lifetimes", i+1, e.RekeyMargin)
	}
	if e.DPDDelay == 0 {
		e.DPDDelay = 10 * time.Second
	}
	if e.DPDAction == "" {
		e.DPDAction = "clear"
	}
	switch e.DPDAction {
	case "clear", "restart":
	case "none":
		e.DPDDelay = -1 // §9.3: no exact equivalent; dpd_delay = 0s
	default:
		return fmt.Errorf("sim: endpoint %d: DPDAction %q: want clear, restart or none", i+1, e.DPDAction)
	}
	if e.StartAction == "" {
		e.StartAction = "none"
	}
	if e.StartAction != "none" && e.StartAction != "start" {
		return fmt.Errorf("sim: endpoint %d: StartAction %q: want none or start", i+1, e.StartAction)
	}
	if e.ReplayWindow == 0 {
		e.ReplayWindow = 1024
	}
	if e.MED == 0 {
		e.MED = uint32(100 * (i + 1))
	}
	if e.ImportLimit == 0 {
		e.ImportLimit = 100
	}
	if e.CustomerASN == 0 {
		e.CustomerASN = o.CustomerASN
	}
	return nil
}

// checkPSK enforces AWS's PSK rules (aws-vpn-facts §2.5), which also keeps
// the key safe to embed in a quoted swanctl string.
func checkPSK(psk string) error {
	if len(psk) < 8 || len(psk) > 64 {
		return errors.New("PSK must be 8 to 64 characters")
	}
	if psk[0] == '0' {
		return errors.New("PSK must not start with 0")
	}
	for _, c := range psk {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_') {
			return errors.New("PSK may contain only [0-9A-Za-z._]")
		}
	}
	return nil
}

// checkToken rejects characters that would break the generated configs.
func checkToken(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\n\"{}#;,") {
		return errors.New("empty or contains whitespace, quotes, braces or separators")
	}
	return nil
}

// New builds the topology and starts what the options ask for. On error
// everything already created is torn down.
func New(opts Options) (*Sim, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("sim: must run as root (network namespaces)")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := CheckTools(opts); err != nil {
		return nil, err
	}
	// Refuse to touch namespaces of another run with the same id (Close
	// would otherwise tear them down).
	for _, r := range Roles {
		if ns := NSName(opts.ID, r); fileExists("/run/netns/" + ns) {
			return nil, fmt.Errorf("sim: namespace %s already exists (another run with id %q? `simctl down -id %s`)", ns, opts.ID, opts.ID)
		}
	}
	s := &Sim{
		opts:    opts,
		id:      opts.ID,
		charons: map[Role]*Process{},
		birds:   map[Role]*Process{},
		iperfOn: map[netip.Addr]*Process{},
	}
	if opts.Dir != "" {
		s.dir = opts.Dir
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	} else {
		d, err := os.MkdirTemp("", "cgw-sim-"+s.id+"-")
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		s.dir, s.ownDir = d, true
	}
	// BIRD and charon run as root but the sockets live here; keep it private.
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if err := s.start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sim) start() error {
	if err := s.saveState(); err != nil {
		return err
	}
	if err := s.buildTopology(); err != nil {
		return err
	}
	if s.opts.Cert != nil {
		if err := s.makePKI(); err != nil {
			return err
		}
	}
	if s.opts.AWS == AWSStrongSwan {
		if err := s.startAWS(); err != nil {
			return err
		}
	}
	if s.opts.Customer == CustomerStrongSwan {
		if err := s.startCustomer(); err != nil {
			return err
		}
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

const stateFile = "sim.json"

func (s *Sim) saveState() error {
	b, err := json.MarshalIndent(s.opts, "", "  ")
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return os.WriteFile(s.path(stateFile), b, 0o600)
}

// Attach returns a handle on a simulation another process started with
// Options.Dir = dir (e.g. `simctl up`), for status queries and fault
// injection. Close on the handle tears the simulation down; processes
// started by the other process are killed through their namespaces.
func Attach(dir string) (*Sim, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("sim: attach: %w", err)
	}
	var o Options
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("sim: attach %s: %w", dir, err)
	}
	o.Dir = dir
	return &Sim{
		opts: o, id: o.ID, dir: dir,
		charons: map[Role]*Process{}, birds: map[Role]*Process{}, iperfOn: map[netip.Addr]*Process{},
	}, nil
}

// ID returns the unique suffix of this simulation.
func (s *Sim) ID() string { return s.id }

// Dir returns the directory holding configs, sockets and logs.
func (s *Sim) Dir() string { return s.dir }

// Options returns the effective options (defaults filled in).
func (s *Sim) Options() Options { return s.opts }

// NS returns the network namespace name for a role.
func (s *Sim) NS(r Role) string { return NSName(s.id, r) }

// NSName returns the namespace name a Sim with that id uses for a role.
func NSName(id string, r Role) string { return "cgw-" + id + "-" + string(r) }

// Transit returns the addresses of endpoint i's (1 or 2) link to the vpc
// router: the endpoint's and vpc's. They sit at the top of the VPC CIDR
// (the last /29, split in two /30s) because libipsec can only install a
// CHILD_SA whose local selector covers one of the endpoint's own
// addresses; a real VGW also owns addresses inside the VPC.
func (s *Sim) Transit(i int) (aws, vpc netip.Addr) {
	p := s.opts.VPCPrefix.Masked()
	a := p.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	last := n | (1<<(32-p.Bits()) - 1)
	base := last - 7
	if i == 2 {
		base = last - 3
	}
	mk := func(v uint32) netip.Addr {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return mk(base + 1), mk(base + 2)
}

// CustOutsideAddr is the address configured on the customer's outside
// interface: CustPublicAddr, or CustNATAddr behind NAT.
func (s *Sim) CustOutsideAddr() netip.Addr {
	if s.opts.NAT {
		return CustNATAddr
	}
	return CustPublicAddr
}

// EndpointEnabled reports whether endpoint i (1 or 2) is part of the run.
func (s *Sim) EndpointEnabled(i int) bool {
	return i >= 1 && i <= 2 && !s.opts.Endpoint[i-1].Disabled
}

func (s *Sim) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("sim[%s]: "+format, append([]any{s.id}, args...)...)
	}
}

func (s *Sim) path(name ...string) string {
	return filepath.Join(append([]string{s.dir}, name...)...)
}

// Close kills every process started in the simulation's namespaces, deletes
// the namespaces and removes the temporary directory. Safe to call twice.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
	if err := Teardown(s.id); err != nil {
		errs = append(errs, err)
	}
	if s.ownDir && !s.opts.KeepDir {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
