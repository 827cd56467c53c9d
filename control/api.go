// Package control is cgwd's local management API: versioned JSON over HTTP
// on a unix socket (mode 0600). The server calls a Backend, which the daemon
// implements; the types here are the wire format shared with control/client
// and therefore with cgwctl. Adding fields is compatible; renaming is not.
package control

import (
	"context"
	"math"
	"time"
)

// APIVersion is the path prefix of every endpoint.
const APIVersion = "v1"

// Backend is what the daemon exposes to operators.
type Backend interface {
	Status(ctx context.Context) (*Status, error)
	TunnelUp(ctx context.Context, name string) error
	TunnelDown(ctx context.Context, name string) error
	Rekey(ctx context.Context, name string, ike bool) error
	Reload(ctx context.Context) (*ReloadResult, error)
	// ReloadDryRun reports what Reload would change without applying it.
	ReloadDryRun(ctx context.Context) (*ReloadResult, error)
	// EffectiveConfig returns the running configuration, secrets redacted.
	EffectiveConfig(ctx context.Context) (*ConfigDoc, error)
	// Events calls send with every state change from now on, until ctx is
	// done (nil) or send fails (its error). It must not block the daemon:
	// a subscriber that falls behind loses events and gets an
	// EventDropped saying how many.
	Events(ctx context.Context, send func(Event) error) error
	Diagnose(ctx context.Context, tunnel string) (*Diagnosis, error)
	// BGPRoutes lists one table (RouteTables) of every BGP tunnel, or of
	// the named one.
	BGPRoutes(ctx context.Context, table, tunnel string) (*BGPRoutes, error)
}

// The tables of BGPRoutes.
const (
	TableReceived   = "received"   // paths learned from AWS, with what became of them
	TableAdvertised = "advertised" // paths sent to AWS (after prepend and MED)
	TableInstalled  = "installed"  // kernel routes from BGP, with the path behind each
)

// RouteTables lists the valid tables, the default first.
var RouteTables = []string{TableReceived, TableAdvertised, TableInstalled}

// BGPRoutes is one table of `cgwctl bgp routes`.
type BGPRoutes struct {
	Table  string     `json:"table"`
	Routes []BGPRoute `json:"routes"`
}

// BGPRoute is one path on one tunnel's BGP session.
type BGPRoute struct {
	Connection string   `json:"connection"`
	Tunnel     string   `json:"tunnel"` // the tunnel whose neighbor sent or gets the path
	Prefix     string   `json:"prefix"`
	NextHop    string   `json:"next_hop,omitempty"`
	ASPath     []uint32 `json:"as_path"`
	MED        uint32   `json:"med"`
	LocalPref  uint32   `json:"local_pref,omitempty"`
	// Best is BGP's best path for the prefix (received, installed).
	Best bool `json:"best"`
	// Installed: a kernel route for the prefix goes through this tunnel.
	Installed bool `json:"installed"`
	// Reason says why a received path is not installed: default_route,
	// deny, not_allowed, prefix_limit (import policy), tunnel_down (no
	// CHILD SA), not_best (another path was preferred) or pending (the
	// route sync has not installed it yet).
	Reason string `json:"reason,omitempty"`
}

// Status is the whole daemon state at one instant.
type Status struct {
	Version     string        `json:"version"`
	Started     time.Time     `json:"started"`
	ConfigFile  string        `json:"config_file"`
	Connections []*Connection `json:"connections"`
	// IKEDrops counts IKE packets on UDP 500/4500 that were dropped or
	// answered without touching any tunnel, by reason: malformed,
	// unknown_spi, overflow (a peer's queue was full), resend_limited (a
	// retransmitted or replayed request whose cached response was not
	// re-sent), cookie_sent (IKE_SA_INIT answered with a COOKIE), invalid_ke
	// (IKE_SA_INIT dropped before any Diffie-Hellman: unusable KE value) and
	// init_failed (an IKE SA the peer started failed before
	// authenticating). Only reasons that occurred are listed.
	IKEDrops map[string]uint64 `json:"ike_drops,omitempty"`
	// LAN is present when bgp.lan_neighbors are configured.
	LAN *LAN `json:"lan,omitempty"`
}

// Connection is one AWS VPN connection (two tunnels).
type Connection struct {
	Name    string    `json:"name"`
	Routing string    `json:"routing"` // bgp | static
	Mode    string    `json:"mode,omitempty"`
	Tunnels []*Tunnel `json:"tunnels"`
	// Routes installed in the kernel for this connection.
	Routes []Route `json:"routes,omitempty"`
	// Filtered are the prefixes learned from AWS that the import policy
	// (bgp.import, bgp.prefix_limit) kept out of the kernel.
	Filtered []FilteredRoute `json:"filtered,omitempty"`
}

// FilteredRoute is a learned prefix that was not installed, and why:
// default_route (no import.accept_default), deny, not_allowed or
// prefix_limit.
type FilteredRoute struct {
	Prefix string `json:"prefix"`
	Reason string `json:"reason"`
}

// Tunnel is one IPsec tunnel to one AWS endpoint.
type Tunnel struct {
	Name        string    `json:"name"`
	State       string    `json:"state"` // up | negotiating | down (TunnelState: BGP established, or CHILD up for static)
	IKEState    string    `json:"ike_state"`
	ChildState  string    `json:"child_state"`
	Since       time.Time `json:"since,omitzero"`
	Device      string    `json:"device"`
	InsideLocal string    `json:"inside_local"`
	InsidePeer  string    `json:"inside_peer"`
	Local       string    `json:"local_endpoint,omitempty"`
	Remote      string    `json:"remote_endpoint"`
	NAT         bool      `json:"nat_detected"`
	Encap       bool      `json:"udp_encap"`
	MTU         int       `json:"mtu"`
	IKE         *IKESA    `json:"ike_sa,omitempty"`
	Children    []*Child  `json:"child_sas,omitempty"`
	Traffic     Traffic   `json:"traffic"`
	DPD         DPD       `json:"dpd"`
	BGP         *BGP      `json:"bgp,omitempty"`
	Auth        *Auth     `json:"auth,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	// IKEFragments is IKE fragmentation (RFC 7383) on this tunnel; nil
	// while the current IKE SA did not negotiate it and no fragment was
	// ever sent or received.
	IKEFragments *IKEFragments `json:"ike_fragments,omitempty"`
}

// IKEFragments describes a tunnel's IKE fragmentation. The counters cover
// the tunnel's life, all its IKE SAs.
type IKEFragments struct {
	Negotiated  bool   `json:"negotiated"`  // by the current IKE SA
	Sent        uint64 `json:"sent"`        // fragments, retransmissions included
	Received    uint64 `json:"received"`    // authentic fragments accepted
	Reassembled uint64 `json:"reassembled"` // messages completed from fragments
}

// IKESA describes the established IKE SA.
type IKESA struct {
	SPIi        string    `json:"spi_i"`
	SPIr        string    `json:"spi_r"`
	Initiator   bool      `json:"initiator"`
	Algorithms  string    `json:"algorithms"`
	Established time.Time `json:"established"`
	RekeyAt     time.Time `json:"rekey_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
}

// Child describes one CHILD SA pair.
type Child struct {
	InSPI      string `json:"in_spi"`
	OutSPI     string `json:"out_spi"`
	Algorithms string `json:"algorithms"`
	// Encap is how the outbound SA carries ESP: "udp" (RFC 3948, UDP
	// 4500) or "none" (raw ESP, IP protocol 50); "" when not installed.
	Encap       string    `json:"encap,omitempty"`
	Established time.Time `json:"established"`
	RekeyAt     time.Time `json:"rekey_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	BytesIn     uint64    `json:"bytes_in"`
	BytesOut    uint64    `json:"bytes_out"`
	PacketsIn   uint64    `json:"packets_in"`
	PacketsOut  uint64    `json:"packets_out"`
	TSLocal     []string  `json:"ts_local"`
	TSRemote    []string  `json:"ts_remote"`
}

// Traffic is the tunnel's inner traffic (CloudWatch TunnelDataIn/Out), which
// survives rekeys.
type Traffic struct {
	BytesIn     uint64            `json:"bytes_in"`
	BytesOut    uint64            `json:"bytes_out"`
	PacketsIn   uint64            `json:"packets_in"`
	PacketsOut  uint64            `json:"packets_out"`
	Drops       map[string]uint64 `json:"drops,omitempty"`
	LastInbound time.Time         `json:"last_inbound,omitzero"`
	// Oversize inner packets: IPv4 packets fragmented before encryption,
	// and ICMP "fragmentation needed"/ICMPv6 "packet too big" sent back.
	Fragmented uint64 `json:"fragmented"`
	TooBigSent uint64 `json:"too_big_sent"`
}

// DPD is dead peer detection state.
type DPD struct {
	// IntervalSeconds is the probe interval in seconds, like every other
	// duration of the API (never Go nanoseconds).
	IntervalSeconds float64   `json:"interval_seconds"`
	Misses          int       `json:"misses"`
	LastSeen        time.Time `json:"last_seen,omitzero"`
}

// Interval is IntervalSeconds as a time.Duration.
func (d DPD) Interval() time.Duration {
	return time.Duration(math.Round(d.IntervalSeconds * float64(time.Second)))
}

// BGP is the tunnel's BGP neighbor.
type BGP struct {
	Neighbor   string    `json:"neighbor"`
	PeerASN    uint32    `json:"peer_asn"`
	State      string    `json:"state"`
	Since      time.Time `json:"since,omitzero"`
	Received   int       `json:"received"`
	Accepted   int       `json:"accepted"`
	Advertised int       `json:"advertised"`
	LastError  string    `json:"last_error,omitempty"`
}

// Route is one kernel route cgw installed.
type Route struct {
	Prefix string   `json:"prefix"`
	Via    []string `json:"via"` // tunnel names
	Source string   `json:"source"`
	Metric int      `json:"metric"`
}

// ReloadResult lists what a reload changed, or with DryRun what it would
// change.
type ReloadResult struct {
	DryRun   bool     `json:"dry_run,omitempty"`
	Changes  []string `json:"changes"` // one line per change, as logged
	Warnings []string `json:"warnings,omitempty"`
	// Details is Changes in structured form, in the same order.
	Details []ReloadChange `json:"details,omitempty"`
}

// ReloadChange is one difference between the running and the new
// configuration, and what applying it does.
type ReloadChange struct {
	Kind       string   `json:"kind"`    // added | removed | changed
	Section    string   `json:"section"` // log, control, metrics, routes, connection or tunnel
	Connection string   `json:"connection,omitempty"`
	Tunnel     string   `json:"tunnel,omitempty"`
	Fields     []string `json:"fields,omitempty"` // the keys that differ (never their values)
	// Effect: in_place (nothing renegotiated), start, stop, restart (the
	// SAs are renegotiated and the BGP session restarts), routes_moved
	// (routes and rules move to the new table, mark or metric) or
	// restart_cgwd (takes effect only when cgwd restarts).
	Effect string `json:"effect"`
}

// Severity of a diagnose finding.
type Severity string

const (
	SeverityOK    Severity = "ok"
	SeverityInfo  Severity = "info"
	SeverityWarn  Severity = "warn"
	SeverityError Severity = "error"
)

// Finding is one checklist item: what was checked, what was seen, what to do.
type Finding struct {
	Tunnel   string   `json:"tunnel"`
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence,omitempty"`
	Fix      string   `json:"fix,omitempty"`
}

// Diagnosis is the result of cgwctl diagnose.
type Diagnosis struct {
	Findings []Finding `json:"findings"`
}

// Error is the JSON body of a failed request.
type Error struct {
	Error string `json:"error"`
}

// Event types.
const (
	EventTunnel  = "tunnel"  // the tunnel's CHILD SA came up or went away: up, down
	EventIKE     = "ike"     // up, down, rekeyed, peer_dead, failed, dpd_miss, nat_detected
	EventChild   = "child"   // up, down, rekeyed
	EventBGP     = "bgp"     // the neighbor's FSM state: idle, connect, active, opensent, openconfirm, established
	EventRoute   = "route"   // a kernel route was added, changed (next hops) or removed
	EventDropped = "dropped" // this subscriber fell behind and lost Dropped events
)

// Event is one state change, as streamed by GET /v1/events: one JSON
// object per line.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Tunnel  string    `json:"tunnel,omitempty"`
	Prefix  string    `json:"prefix,omitempty"` // route events
	Event   string    `json:"event"`
	Detail  string    `json:"detail,omitempty"` // why, in one sentence; next hops for routes
	Dropped uint64    `json:"dropped,omitempty"`
}
