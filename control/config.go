package control

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Redacted replaces every secret (PSKs, the BGP TCP MD5 password) in
// ConfigDoc: the control socket never carries key material.
const Redacted = "<redacted>"

// ConfigDoc is the daemon's effective configuration: the file's schema
// (same keys, every default filled in), as running. Secrets are Redacted;
// a key given by file shows the file name next to it.
type ConfigDoc struct {
	File        string       `json:"file" yaml:"-"`
	Version     int          `json:"version" yaml:"version"`
	Log         ConfigLog    `json:"log" yaml:"log"`
	Control     ConfigCtl    `json:"control" yaml:"control"`
	Metrics     ConfigMetric `json:"metrics" yaml:"metrics"`
	Routes      ConfigRoutes `json:"routes" yaml:"routes"`
	Connections []ConfigConn `json:"connections" yaml:"connections"`

	// BGP is the top-level bgp section (LAN neighbors); nil without one.
	BGP *ConfigGlobalBGP `json:"bgp,omitempty" yaml:"bgp,omitempty"`
}

type ConfigLog struct {
	Format string `json:"format" yaml:"format"`
	Level  string `json:"level" yaml:"level"`
}

type ConfigCtl struct {
	Socket string `json:"socket" yaml:"socket"`
}

type ConfigMetric struct {
	Listen string `json:"listen" yaml:"listen"` // "" = off
}

type ConfigRoutes struct {
	Table        int    `json:"table" yaml:"table"`
	Protocol     int    `json:"protocol" yaml:"protocol"`
	Metric       int    `json:"metric" yaml:"metric"`
	FwMark       uint32 `json:"fwmark" yaml:"fwmark"`
	RulePriority int    `json:"rule_priority" yaml:"rule_priority"`
}

type ConfigConn struct {
	Name         string         `json:"name" yaml:"name"`
	LocalAddress string         `json:"local_address,omitempty" yaml:"local_address,omitempty"`
	LocalID      string         `json:"local_id,omitempty" yaml:"local_id,omitempty"`
	Routing      string         `json:"routing" yaml:"routing"`
	BGP          *ConfigBGP     `json:"bgp,omitempty" yaml:"bgp,omitempty"`
	Static       *ConfigStatic  `json:"static,omitempty" yaml:"static,omitempty"`
	Tunnels      []ConfigTunnel `json:"tunnels" yaml:"tunnels"`
}

type ConfigBGP struct {
	ASN              uint32       `json:"asn" yaml:"asn"`
	PeerASN          uint32       `json:"peer_asn" yaml:"peer_asn"`
	HoldTime         Seconds      `json:"hold_time" yaml:"hold_time"`
	Keepalive        Seconds      `json:"keepalive" yaml:"keepalive"`
	Advertise        []string     `json:"advertise" yaml:"advertise"`
	Mode             string       `json:"mode" yaml:"mode"`
	SecondaryPrepend int          `json:"secondary_prepend" yaml:"secondary_prepend"`
	SecondaryMED     uint32       `json:"secondary_med" yaml:"secondary_med"`
	PrefixLimit      uint32       `json:"prefix_limit" yaml:"prefix_limit"`
	AdvertiseKernel  []string     `json:"advertise_kernel,omitempty" yaml:"advertise_kernel,omitempty"`
	Password         string       `json:"password,omitempty" yaml:"password,omitempty"` // Redacted when set
	Import           ConfigImport `json:"import" yaml:"import"`
}

type ConfigImport struct {
	Allow         []string `json:"allow" yaml:"allow"`
	Deny          []string `json:"deny" yaml:"deny"`
	AcceptDefault bool     `json:"accept_default" yaml:"accept_default"`
}

type ConfigStatic struct {
	RemotePrefixes []string `json:"remote_prefixes" yaml:"remote_prefixes"`
}

type ConfigTunnel struct {
	Name             string             `json:"name" yaml:"name"`
	PeerAddress      string             `json:"peer_address" yaml:"peer_address"`
	PeerID           string             `json:"peer_id" yaml:"peer_id"`
	PSK              string             `json:"psk,omitempty" yaml:"psk,omitempty"` // Redacted; empty with psk_file
	PSKFile          string             `json:"psk_file,omitempty" yaml:"psk_file,omitempty"`
	Auth             string             `json:"auth,omitempty" yaml:"auth,omitempty"` // certificate; empty for psk
	Certificate      *ConfigCertificate `json:"certificate,omitempty" yaml:"certificate,omitempty"`
	InsideCIDR       string             `json:"inside_cidr" yaml:"inside_cidr"`
	InsideIPv6CIDR   string             `json:"inside_ipv6_cidr,omitempty" yaml:"inside_ipv6_cidr,omitempty"`
	IKEProposals     []string           `json:"ike_proposals" yaml:"ike_proposals"`
	ESPProposals     []string           `json:"esp_proposals" yaml:"esp_proposals"`
	IKELifetime      Seconds            `json:"ike_lifetime" yaml:"ike_lifetime"`
	ChildLifetime    Seconds            `json:"child_lifetime" yaml:"child_lifetime"`
	RekeyMargin      Seconds            `json:"rekey_margin" yaml:"rekey_margin"`
	RekeyFuzz        int                `json:"rekey_fuzz" yaml:"rekey_fuzz"`
	DPD              ConfigDPD          `json:"dpd" yaml:"dpd"`
	StartupAction    string             `json:"startup_action" yaml:"startup_action"`
	TrafficSelectors ConfigTS           `json:"traffic_selectors" yaml:"traffic_selectors"`
	ForceEncap       bool               `json:"force_encap" yaml:"force_encap"`
	Encapsulation    string             `json:"encapsulation" yaml:"encapsulation"`
	NATKeepalive     Seconds            `json:"nat_keepalive" yaml:"nat_keepalive"`
	ReplayWindow     int                `json:"replay_window" yaml:"replay_window"`
	IKEFragmentSize  int                `json:"ike_fragment_size" yaml:"ike_fragment_size"`
	MTU              int                `json:"mtu" yaml:"mtu"`
	MSSClamp         int                `json:"mss_clamp" yaml:"mss_clamp"`
	Oversize         string             `json:"oversize" yaml:"oversize"`
	Keepalive        *ConfigKeepalive   `json:"keepalive,omitempty" yaml:"keepalive,omitempty"`
	SourceCheck      string             `json:"source_check" yaml:"source_check"`
	ExtraSources     []string           `json:"extra_sources,omitempty" yaml:"extra_sources,omitempty"`
	AWSTunnelOptions *ConfigAWSTunnel   `json:"aws_tunnel_options,omitempty" yaml:"aws_tunnel_options,omitempty"`
}

// ConfigAWSTunnel is a tunnel's aws_tunnel_options: the AWS side as the
// file records it (zero values: not recorded).
type ConfigAWSTunnel struct {
	Phase1           *ConfigAWSPhase `json:"phase1,omitempty" yaml:"phase1,omitempty"`
	Phase2           *ConfigAWSPhase `json:"phase2,omitempty" yaml:"phase2,omitempty"`
	RekeyMargin      Seconds         `json:"rekey_margin,omitempty" yaml:"rekey_margin,omitempty"`
	DPDTimeout       Seconds         `json:"dpd_timeout,omitempty" yaml:"dpd_timeout,omitempty"`
	DPDTimeoutAction string          `json:"dpd_timeout_action,omitempty" yaml:"dpd_timeout_action,omitempty"`
	StartupAction    string          `json:"startup_action,omitempty" yaml:"startup_action,omitempty"`
}

type ConfigAWSPhase struct {
	Encryption []string `json:"encryption,omitempty" yaml:"encryption,omitempty"`
	Integrity  []string `json:"integrity,omitempty" yaml:"integrity,omitempty"`
	DHGroups   []int    `json:"dh_groups,omitempty" yaml:"dh_groups,omitempty"`
	Lifetime   Seconds  `json:"lifetime,omitempty" yaml:"lifetime,omitempty"`
}

type ConfigDPD struct {
	Interval Seconds `json:"interval" yaml:"interval"`
	Retries  int     `json:"retries" yaml:"retries"`
	Action   string  `json:"action" yaml:"action"`
}

type ConfigTS struct {
	Local  []string `json:"local" yaml:"local"`
	Remote []string `json:"remote" yaml:"remote"`
}

type ConfigKeepalive struct {
	Target   string  `json:"target" yaml:"target"`
	Interval Seconds `json:"interval" yaml:"interval"`
}

// Seconds is a duration on the wire: a number of seconds in JSON (like
// every duration of the API), and Go's "8h0m0s" form shortened ("8h",
// "30s") in YAML, which the configuration file reads back.
type Seconds float64

// SecondsOf converts a duration.
func SecondsOf(d time.Duration) Seconds { return Seconds(d.Seconds()) }

// Duration converts back, to the nearest nanosecond.
func (s Seconds) Duration() time.Duration { return time.Duration(math.Round(float64(s) * 1e9)) }

func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(s), 'f', -1, 64), nil
}

func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("duration: want a number of seconds: %w", err)
	}
	*s = Seconds(f)
	return nil
}

// MarshalYAML writes "8h", "1h30m", "30s", "0s".
func (s Seconds) MarshalYAML() (any, error) {
	return ShortDuration(s.Duration()), nil
}

// ShortDuration is d.String() without zero minutes and seconds ("8h0m0s"
// is "8h").
func ShortDuration(d time.Duration) string {
	out := d.String()
	if d%time.Minute == 0 && strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if d%time.Hour == 0 && strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}
