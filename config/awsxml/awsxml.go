// Package awsxml turns the CustomerGatewayConfiguration XML of an AWS
// Site-to-Site VPN connection (the field of that name in
// DescribeVpnConnections) into a cgw configuration file.
//
// The XML carries per tunnel the outside addresses, the inside /30, the
// pre-shared key, the BGP ASNs and hold time (absent for static routing,
// vpn_connection_attributes = NoBGPVPNConnection), and a sample IKE/IPsec
// algorithm set. That sample is AWS's minimum (aes128/sha1/group2, or
// sha2-256/group14 in GovCloud), not what the tunnel accepts, so the
// generated proposals offer strong algorithms first and keep the sample's
// as the last resort.
//
// Tunnels keep the order of the XML (first = t1, the preferred tunnel).
// AWS does not promise that this order matches Tunnel 1/Tunnel 2 of the
// console or of Options.TunnelOptions; the generated file names each
// tunnel's AWS outside address so they can be matched.
//
// The package is pure: no I/O, no global state.
package awsxml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cgwproject/cgw/ipsec"
)

// VPNConnection is the decoded <vpn_connection> document. Every leaf is
// kept as text (trimmed) and interpreted by Generate.
type VPNConnection struct {
	XMLName           xml.Name `xml:"vpn_connection"`
	ID                string   `xml:"id,attr"`
	CustomerGatewayID string   `xml:"customer_gateway_id"`
	// VPNGatewayID is empty for Transit Gateway attachments.
	VPNGatewayID string `xml:"vpn_gateway_id"`
	Type         string `xml:"vpn_connection_type"`
	// Attributes is "NoBGPVPNConnection" for static routing, else empty.
	Attributes string   `xml:"vpn_connection_attributes"`
	Tunnels    []Tunnel `xml:"ipsec_tunnel"`
	// Certificate is set when the document says the connection
	// authenticates with certificates (the Generic download's
	// authentication method, the JSON's endpoint certificate ARNs).
	Certificate bool `xml:"-"`
}

// StaticRouting is the vpn_connection_attributes value of static connections.
const StaticRouting = "NoBGPVPNConnection"

// IsStatic reports whether the connection uses static routing.
func (v *VPNConnection) IsStatic() bool { return v.Attributes == StaticRouting }

// IsTransitGateway reports whether the connection ends on a Transit Gateway.
func (v *VPNConnection) IsTransitGateway() bool { return v.VPNGatewayID == "" }

// Tunnel is one <ipsec_tunnel>.
type Tunnel struct {
	Customer Gateway `xml:"customer_gateway"`
	AWS      Gateway `xml:"vpn_gateway"`
	IKE      IKE     `xml:"ike"`
	IPsec    IPsec   `xml:"ipsec"`
}

// Gateway is one side (<customer_gateway> or <vpn_gateway>) of a tunnel.
type Gateway struct {
	OutsideAddress string `xml:"tunnel_outside_address>ip_address"`
	InsideAddress  string `xml:"tunnel_inside_address>ip_address"`
	InsideMask     string `xml:"tunnel_inside_address>network_mask"`
	InsideCIDR     string `xml:"tunnel_inside_address>network_cidr"`
	InsideIPv6     string `xml:"tunnel_inside_ipv6_address>ip_address"`
	InsideIPv6Len  string `xml:"tunnel_inside_ipv6_address>prefix_length"`
	BGP            *BGP   `xml:"bgp"`
}

// BGP is a side's <bgp> block.
type BGP struct {
	ASN      string `xml:"asn"`
	HoldTime string `xml:"hold_time"`
}

// IKE is the <ike> block: AWS's sample phase-1 settings and the PSK.
type IKE struct {
	AuthenticationProtocol string `xml:"authentication_protocol"`
	EncryptionProtocol     string `xml:"encryption_protocol"`
	Lifetime               string `xml:"lifetime"`
	PFS                    string `xml:"perfect_forward_secrecy"`
	Mode                   string `xml:"mode"`
	PreSharedKey           string `xml:"pre_shared_key"`
}

// IPsec is the <ipsec> block: AWS's sample phase-2 settings.
type IPsec struct {
	Protocol                      string `xml:"protocol"`
	AuthenticationProtocol        string `xml:"authentication_protocol"`
	EncryptionProtocol            string `xml:"encryption_protocol"`
	Lifetime                      string `xml:"lifetime"`
	PFS                           string `xml:"perfect_forward_secrecy"`
	Mode                          string `xml:"mode"`
	ClearDFBit                    string `xml:"clear_df_bit"`
	FragmentationBeforeEncryption string `xml:"fragmentation_before_encryption"`
	TCPMSSAdjustment              string `xml:"tcp_mss_adjustment"`
	DPDInterval                   string `xml:"dead_peer_detection>interval"`
	DPDRetries                    string `xml:"dead_peer_detection>retries"`
}

// maxDocument bounds the input; a real document is about 5 KB.
const maxDocument = 1 << 20

// maxDescribe bounds a describe-vpn-connections JSON: each connection
// carries its XML and TunnelOptions (5 to 15 KB), and a hub imports up to
// 128 connections (cgwd's 256 tunnels) from one document.
const maxDescribe = 4 << 20

// Parse decodes a CustomerGatewayConfiguration document. It checks only
// that the document is one <vpn_connection>; Generate checks the values.
func Parse(data []byte) (*VPNConnection, error) {
	if len(data) > maxDocument {
		return nil, fmt.Errorf("awsxml: document is %d bytes, larger than any AWS configuration (limit %d); is this the right file?", len(data), maxDocument)
	}
	var v VPNConnection
	if err := xml.Unmarshal(data, &v); err != nil {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("awsxml: invalid XML at line %d: %s; pass the CustomerGatewayConfiguration document of the VPN connection", se.Line, se.Msg)
		}
		return nil, fmt.Errorf("awsxml: %v; pass the CustomerGatewayConfiguration document (<vpn_connection>) of the VPN connection", err)
	}
	trim(&v)
	return &v, nil
}

func trim(v *VPNConnection) {
	s := func(p *string) { *p = strings.TrimSpace(*p) }
	s(&v.ID)
	s(&v.CustomerGatewayID)
	s(&v.VPNGatewayID)
	s(&v.Type)
	s(&v.Attributes)
	for i := range v.Tunnels {
		t := &v.Tunnels[i]
		for _, g := range []*Gateway{&t.Customer, &t.AWS} {
			for _, p := range []*string{&g.OutsideAddress, &g.InsideAddress, &g.InsideMask, &g.InsideCIDR, &g.InsideIPv6, &g.InsideIPv6Len} {
				s(p)
			}
			if g.BGP != nil {
				s(&g.BGP.ASN)
				s(&g.BGP.HoldTime)
			}
		}
		for _, p := range []*string{&t.IKE.AuthenticationProtocol, &t.IKE.EncryptionProtocol, &t.IKE.Lifetime, &t.IKE.PFS, &t.IKE.Mode, &t.IKE.PreSharedKey,
			&t.IPsec.Protocol, &t.IPsec.AuthenticationProtocol, &t.IPsec.EncryptionProtocol, &t.IPsec.Lifetime, &t.IPsec.PFS, &t.IPsec.Mode,
			&t.IPsec.ClearDFBit, &t.IPsec.FragmentationBeforeEncryption, &t.IPsec.TCPMSSAdjustment, &t.IPsec.DPDInterval, &t.IPsec.DPDRetries} {
			s(p)
		}
	}
}

// Algorithm names as the XML writes them (and as the AWS API spells
// them), mapped to strongSwan keywords.
var (
	xmlCiphers = map[string]string{
		"aes-128-cbc": "aes128", "aes128": "aes128",
		"aes-256-cbc": "aes256", "aes256": "aes256",
		"aes-128-gcm-16": "aes128gcm16", "aes128-gcm-16": "aes128gcm16",
		"aes-256-gcm-16": "aes256gcm16", "aes256-gcm-16": "aes256gcm16",
	}
	xmlIntegs = map[string]string{
		"sha1": "sha1", "sha-1": "sha1", "hmac-sha1-96": "sha1", "sha1-96": "sha1",
		"sha2-256": "sha256", "sha256": "sha256", "sha-256": "sha256", "hmac-sha256-128": "sha256", "hmac-sha2-256-128": "sha256",
		"sha2-384": "sha384", "sha384": "sha384", "sha-384": "sha384", "hmac-sha384-192": "sha384", "hmac-sha2-384-192": "sha384",
		"sha2-512": "sha512", "sha512": "sha512", "sha-512": "sha512", "hmac-sha512-256": "sha512", "hmac-sha2-512-256": "sha512",
	}
)

// sampleProposal converts the XML's algorithm triple into a proposal in
// strongSwan syntax, parsed to prove it valid.
func sampleProposal(encr, integ, pfs string, ike bool) (ipsec.Proposal, error) {
	e, ok := xmlCiphers[strings.ToLower(encr)]
	if !ok {
		return ipsec.Proposal{}, fmt.Errorf("unknown encryption_protocol %q", encr)
	}
	parts := []string{e}
	aead := strings.Contains(e, "gcm")
	if integ != "" && (ike || !aead) {
		i, ok := xmlIntegs[strings.ToLower(integ)]
		if !ok {
			return ipsec.Proposal{}, fmt.Errorf("unknown authentication_protocol %q", integ)
		}
		parts = append(parts, i)
	}
	if pfs != "" {
		g, ok := groupKeyword(pfs)
		if !ok {
			return ipsec.Proposal{}, fmt.Errorf("unknown perfect_forward_secrecy %q", pfs)
		}
		parts = append(parts, g)
	}
	return ipsec.ParseProposal(strings.Join(parts, "-"), ike)
}

// groupKeyword maps "group14" (or "14") to "modp2048".
func groupKeyword(s string) (string, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "group"), 10, 16)
	if err != nil {
		return "", false
	}
	kw := ipsec.DHGroup(n).Keyword()
	return kw, kw != ""
}
