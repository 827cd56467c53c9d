package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file renders what `aws ec2 describe-vpn-connections` would print for
// a Multi's connections, so a test builds cgwd's side the way a user does:
// `cgwctl import-aws` of that JSON. The format follows the real samples
// (config/testdata/aws-samples, describe-batfish-tunneloptions.json): each
// connection carries its CustomerGatewayConfiguration XML as a string and
// Options.TunnelOptions with the tunnel's outside address, inside CIDR, PSK
// and the options that differ from AWS's defaults.

// awsDHKeyword maps AWS's DH group numbers to strongSwan keywords
// (aws-vpn-facts 2.1); group 5 is allowed in phase 2 only.
var awsDHKeyword = map[int]string{
	2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096",
	17: "modp6144", 18: "modp8192", 19: "ecp256", 20: "ecp384", 21: "ecp521",
	22: "modp1024s160", 23: "modp2048s224", 24: "modp2048s256",
}

// awsGroupProposals returns AWS's default proposals narrowed to the DH
// groups, lowest group first (AWS picks the lowest configured value, and
// charon as responder its first configured match).
func awsGroupProposals(groups []int) (ike, esp []string, err error) {
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	var kw1, kw2 []string
	for _, g := range slices.Compact(sorted) {
		kw, ok := awsDHKeyword[g]
		if !ok {
			return nil, nil, fmt.Errorf("sim: DH group %d is not one AWS offers (2, 5, 14-24)", g)
		}
		kw2 = append(kw2, kw)
		if g != 5 {
			kw1 = append(kw1, kw)
		}
	}
	if len(kw1) == 0 {
		return nil, nil, fmt.Errorf("sim: DH groups %v leave phase 1 without a group (5 is phase 2 only)", groups)
	}
	dh1, dh2 := strings.Join(kw1, "-"), strings.Join(kw2, "-")
	ike = []string{
		"aes128-aes256-sha1-sha256-sha384-sha512-" + dh1,
		"aes128gcm16-aes256gcm16-prfsha1-prfsha256-prfsha384-prfsha512-" + dh1,
	}
	esp = []string{
		"aes128-aes256-sha1-sha256-sha384-sha512-" + dh2,
		"aes128gcm16-aes256gcm16-" + dh2,
	}
	return ike, esp, nil
}

// multiConnectionID is connection k's VPN connection ID: "vpn-" and 17 hex
// digits as AWS writes new ones, derived from the Sim id so parallel runs
// differ, with k in the last three digits.
func (s *Sim) multiConnectionID(k int) string {
	h := sha256.Sum256([]byte("multi/" + s.id))
	return fmt.Sprintf("vpn-%s%03x", hex.EncodeToString(h[:7]), k)
}

// The members of describe-vpn-connections this renders (AWS CLI output
// names; config/awsxml reads them case-insensitively).
type describeJSON struct {
	VpnConnections []describeJSONConn
}

type describeJSONConn struct {
	Category                     string
	CustomerGatewayConfiguration string
	CustomerGatewayId            string
	Options                      describeJSONOptions
	Routes                       []struct{}
	State                        string
	Tags                         []describeJSONTag
	Type                         string
	VgwTelemetry                 []describeJSONTelemetry
	VpnConnectionId              string
	VpnGatewayId                 string
}

type describeJSONOptions struct {
	EnableAcceleration    bool
	StaticRoutesOnly      bool
	LocalIpv4NetworkCidr  string
	RemoteIpv4NetworkCidr string
	TunnelInsideIpVersion string
	TunnelOptions         []describeJSONTunnel
}

type describeJSONTunnel struct {
	OutsideIpAddress       string
	TunnelInsideCidr       string
	PreSharedKey           string
	Phase1LifetimeSeconds  *int            `json:",omitempty"`
	Phase2LifetimeSeconds  *int            `json:",omitempty"`
	RekeyMarginTimeSeconds *int            `json:",omitempty"`
	RekeyFuzzPercentage    *int            `json:",omitempty"`
	Phase1DHGroupNumbers   []describeValue `json:",omitempty"`
	Phase2DHGroupNumbers   []describeValue `json:",omitempty"`
	IkeVersions            []describeValue `json:",omitempty"`
}

type describeValue struct{ Value any }

type describeJSONTag struct{ Key, Value string }

type describeJSONTelemetry struct {
	AcceptedRouteCount int
	LastStatusChange   string
	OutsideIpAddress   string
	Status             string
	StatusMessage      string
}

// DescribeJSON returns the describe-vpn-connections JSON of every
// connection: its XML (as AWSXML renders one: addresses, inside /30s, PSKs,
// ASNs, the sample-minimum ike/ipsec blocks) and its TunnelOptions. The
// phase 2 lifetime, rekey margin and fuzz are stated when they are values
// AWS allows (900-3600 s, 60 s to half the lifetime); the short lifetimes a
// rekey storm uses are the simulator's own, so the document then shows
// AWS's defaults, as cgwd's side had before. The PSKs are in it: write it
// with mode 0600.
func (m *Multi) DescribeJSON() []byte {
	s, o := m.s, m.opts
	var groups []describeValue
	if len(o.DHGroups) > 0 {
		sorted := slices.Clone(o.DHGroups)
		slices.Sort(sorted)
		for _, g := range slices.Compact(sorted) {
			groups = append(groups, describeValue{g})
		}
	}
	var p1Groups []describeValue
	for _, g := range groups {
		if g.Value != 5 {
			p1Groups = append(p1Groups, g)
		}
	}
	childLife, margin, fuzz := int(o.ChildLifetime/time.Second), int(o.RekeyMargin/time.Second), o.RekeyFuzz
	awsTimes := childLife >= 900 && childLife <= 3600 && margin >= 60 && margin <= childLife/2
	xmlChildLife := 3600
	if awsTimes {
		xmlChildLife = childLife
	}
	var out describeJSON
	for _, c := range m.Conns {
		doc := xmlVPNConnection{
			ID:                c.ID,
			CustomerGatewayID: "cgw-" + c.ID[4:],
			VPNGatewayID:      "vgw-" + c.ID[4:],
			Type:              "ipsec.1",
		}
		jc := describeJSONConn{
			Category:          "VPN",
			CustomerGatewayId: doc.CustomerGatewayID,
			Options: describeJSONOptions{
				LocalIpv4NetworkCidr:  "0.0.0.0/0",
				RemoteIpv4NetworkCidr: "0.0.0.0/0",
				TunnelInsideIpVersion: "ipv4",
			},
			Routes:          []struct{}{},
			State:           "available",
			Tags:            []describeJSONTag{{Key: "Name", Value: c.Name}},
			Type:            "ipsec.1",
			VpnConnectionId: c.ID,
			VpnGatewayId:    doc.VPNGatewayID,
		}
		for _, t := range c.Tunnels {
			var xt xmlIPsecTunnel
			side := func(g *xmlGatewaySide, outside, inside string, asn uint32) {
				g.Outside.IP = outside
				g.Inside.IP = inside
				g.Inside.Mask = "255.255.255.252"
				g.Inside.CIDR = 30
				g.BGP = &xmlBGP{ASN: asn, HoldTime: 30}
			}
			side(&xt.CustomerGateway, CustPublicAddr.String(), t.CustInside.String(), c.ASN)
			side(&xt.VPNGateway, t.Outside.String(), t.AWSInside.String(), s.opts.AWSASN)
			xt.IKE = xmlIKE{Auth: "sha1", Encr: "aes-128-cbc", Lifetime: 28800, PFS: "group2", Mode: "main", PSK: t.PSK}
			xt.IPsec = xmlIPsec{
				Protocol: "esp", Auth: "hmac-sha1-96", Encr: "aes-128-cbc", Lifetime: xmlChildLife,
				PFS: "group2", Mode: "tunnel", ClearDF: true, FragBefore: true, TCPMSS: 1379,
				DPDInterval: 10, DPDRetries: 3,
			}
			doc.Tunnels = append(doc.Tunnels, xt)
			to := describeJSONTunnel{
				OutsideIpAddress:     t.Outside.String(),
				TunnelInsideCidr:     t.Inside.String(),
				PreSharedKey:         t.PSK,
				Phase1DHGroupNumbers: p1Groups,
				Phase2DHGroupNumbers: groups,
				IkeVersions:          []describeValue{{"ikev2"}},
			}
			if awsTimes {
				to.Phase2LifetimeSeconds, to.RekeyMarginTimeSeconds, to.RekeyFuzzPercentage = &childLife, &margin, &fuzz
			}
			jc.Options.TunnelOptions = append(jc.Options.TunnelOptions, to)
			jc.VgwTelemetry = append(jc.VgwTelemetry, describeJSONTelemetry{
				LastStatusChange: "2026-01-01T00:00:00.000Z", OutsideIpAddress: t.Outside.String(),
				Status: "DOWN", StatusMessage: "IPSEC IS DOWN",
			})
		}
		x, err := xml.MarshalIndent(doc, "", "  ")
		if err != nil {
			// Only plain strings and ints: cannot fail.
			panic(fmt.Sprintf("sim: marshal AWS XML: %v", err))
		}
		jc.CustomerGatewayConfiguration = xml.Header + string(x)
		out.VpnConnections = append(out.VpnConnections, jc)
	}
	// The AWS CLI prints < and > of the XML as they are.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(out); err != nil {
		panic(fmt.Sprintf("sim: marshal describe-vpn-connections: %v", err))
	}
	return b.Bytes()
}
