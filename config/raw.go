package config

// The raw schema mirrors the YAML file one to one. Every scalar is a pointer
// so that validation can tell "absent" (take the default) from "set to the
// zero value". Durations are strings ("30s", "8h", or a bare number of
// seconds, as AWS writes them). Integers are int64 so that range checks, not
// the decoder, report out-of-range values with a useful message.

type rawFile struct {
	Version     *int64          `yaml:"version"`
	Log         *rawLog         `yaml:"log"`
	Control     *rawControl     `yaml:"control"`
	Metrics     *rawMetrics     `yaml:"metrics"`
	Routes      *rawRoutes      `yaml:"routes"`
	Connections []rawConnection `yaml:"connections"`
	BGP         *rawGlobalBGP   `yaml:"bgp"`
}

type rawLog struct {
	Format *string `yaml:"format"`
	Level  *string `yaml:"level"`
}

type rawControl struct {
	Socket *string `yaml:"socket"`
}

type rawMetrics struct {
	Listen *string `yaml:"listen"`
}

type rawRoutes struct {
	Table        *int64 `yaml:"table"`
	Protocol     *int64 `yaml:"protocol"`
	Metric       *int64 `yaml:"metric"`
	FwMark       *int64 `yaml:"fwmark"`
	RulePriority *int64 `yaml:"rule_priority"`
}

type rawConnection struct {
	Name         *string         `yaml:"name"`
	LocalAddress *string         `yaml:"local_address"`
	LocalID      *string         `yaml:"local_id"`
	Auth         *string         `yaml:"auth"`
	Certificate  *rawCertificate `yaml:"certificate"`
	Routing      *string         `yaml:"routing"`
	BGP          *rawBGP         `yaml:"bgp"`
	Static       *rawStatic      `yaml:"static"`
	Tunnels      *[]rawTunnel    `yaml:"tunnels"`
}

type rawBGP struct {
	ASN              *int64     `yaml:"asn"`
	PeerASN          *int64     `yaml:"peer_asn"`
	HoldTime         *string    `yaml:"hold_time"`
	Keepalive        *string    `yaml:"keepalive"`
	Advertise        *[]string  `yaml:"advertise"`
	Mode             *string    `yaml:"mode"`
	SecondaryPrepend *int64     `yaml:"secondary_prepend"`
	SecondaryMED     *int64     `yaml:"secondary_med"`
	PrefixLimit      *int64     `yaml:"prefix_limit"`
	AdvertiseKernel  *[]string  `yaml:"advertise_kernel"`
	Password         *string    `yaml:"password"`
	PasswordFile     *string    `yaml:"password_file"`
	Import           *rawImport `yaml:"import"`
}

type rawImport struct {
	Allow         *[]string `yaml:"allow"`
	Deny          *[]string `yaml:"deny"`
	AcceptDefault *bool     `yaml:"accept_default"`
}

type rawStatic struct {
	RemotePrefixes *[]string `yaml:"remote_prefixes"`
}

type rawTunnel struct {
	Name             *string              `yaml:"name"`
	PeerAddress      *string              `yaml:"peer_address"`
	PeerID           *string              `yaml:"peer_id"`
	PSK              *string              `yaml:"psk"`
	PSKFile          *string              `yaml:"psk_file"`
	Auth             *string              `yaml:"auth"`
	Certificate      *rawCertificate      `yaml:"certificate"`
	InsideCIDR       *string              `yaml:"inside_cidr"`
	InsideIPv6CIDR   *string              `yaml:"inside_ipv6_cidr"`
	IKEProposals     *[]string            `yaml:"ike_proposals"`
	ESPProposals     *[]string            `yaml:"esp_proposals"`
	IKELifetime      *string              `yaml:"ike_lifetime"`
	ChildLifetime    *string              `yaml:"child_lifetime"`
	RekeyMargin      *string              `yaml:"rekey_margin"`
	RekeyFuzz        *int64               `yaml:"rekey_fuzz"`
	DPD              *rawDPD              `yaml:"dpd"`
	StartupAction    *string              `yaml:"startup_action"`
	TrafficSelectors *rawTrafficSelectors `yaml:"traffic_selectors"`
	ForceEncap       *bool                `yaml:"force_encap"`
	Encapsulation    *string              `yaml:"encapsulation"`
	NATKeepalive     *string              `yaml:"nat_keepalive"`
	ReplayWindow     *int64               `yaml:"replay_window"`
	IKEFragmentSize  *int64               `yaml:"ike_fragment_size"`
	MTU              *int64               `yaml:"mtu"`
	MSSClamp         *int64               `yaml:"mss_clamp"`
	Oversize         *string              `yaml:"oversize"`
	Keepalive        *rawKeepalive        `yaml:"keepalive"`
	SourceCheck      *string              `yaml:"source_check"`
	ExtraSources     *[]string            `yaml:"extra_sources"`
	AWSTunnelOptions *rawAWSTunnelOptions `yaml:"aws_tunnel_options"`
}

type rawDPD struct {
	Interval *string `yaml:"interval"`
	Retries  *int64  `yaml:"retries"`
	Action   *string `yaml:"action"`
}

type rawTrafficSelectors struct {
	Local  *[]string `yaml:"local"`
	Remote *[]string `yaml:"remote"`
}

type rawKeepalive struct {
	Target   *string `yaml:"target"`
	Interval *string `yaml:"interval"`
}
