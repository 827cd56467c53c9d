package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/netip"
	"strings"
)

// The CustomerGatewayConfiguration document of DescribeVpnConnections,
// element for element as in aws-vpn-facts §5.1.
type xmlVPNConnection struct {
	XMLName           xml.Name         `xml:"vpn_connection"`
	ID                string           `xml:"id,attr"`
	CustomerGatewayID string           `xml:"customer_gateway_id"`
	VPNGatewayID      string           `xml:"vpn_gateway_id"`
	Type              string           `xml:"vpn_connection_type"`
	Attributes        string           `xml:"vpn_connection_attributes,omitempty"`
	Tunnels           []xmlIPsecTunnel `xml:"ipsec_tunnel"`
}

type xmlIPsecTunnel struct {
	CustomerGateway xmlGatewaySide `xml:"customer_gateway"`
	VPNGateway      xmlGatewaySide `xml:"vpn_gateway"`
	IKE             xmlIKE         `xml:"ike"`
	IPsec           xmlIPsec       `xml:"ipsec"`
}

type xmlGatewaySide struct {
	Outside struct {
		IP string `xml:"ip_address"`
	} `xml:"tunnel_outside_address"`
	Inside struct {
		IP   string `xml:"ip_address"`
		Mask string `xml:"network_mask"`
		CIDR int    `xml:"network_cidr"`
	} `xml:"tunnel_inside_address"`
	Inside6 *xmlInside6 `xml:"tunnel_inside_ipv6_address,omitempty"`
	BGP     *xmlBGP     `xml:"bgp,omitempty"`
}

// xmlInside6 is an IPv6-inside tunnel's address in its /126 (aws-vpn-facts
// §5.1, tunnel_inside_ipv6_address).
type xmlInside6 struct {
	IP  string `xml:"ip_address"`
	Len int    `xml:"prefix_length"`
}

type xmlBGP struct {
	ASN      uint32 `xml:"asn"`
	HoldTime int    `xml:"hold_time"`
}

type xmlIKE struct {
	Auth     string `xml:"authentication_protocol"`
	Encr     string `xml:"encryption_protocol"`
	Lifetime int    `xml:"lifetime"`
	PFS      string `xml:"perfect_forward_secrecy"`
	Mode     string `xml:"mode"`
	PSK      string `xml:"pre_shared_key"`
}

type xmlIPsec struct {
	Protocol    string `xml:"protocol"`
	Auth        string `xml:"authentication_protocol"`
	Encr        string `xml:"encryption_protocol"`
	Lifetime    int    `xml:"lifetime"`
	PFS         string `xml:"perfect_forward_secrecy"`
	Mode        string `xml:"mode"`
	ClearDF     bool   `xml:"clear_df_bit"`
	FragBefore  bool   `xml:"fragmentation_before_encryption"`
	TCPMSS      int    `xml:"tcp_mss_adjustment"`
	DPDInterval int    `xml:"dead_peer_detection>interval"`
	DPDRetries  int    `xml:"dead_peer_detection>retries"`
}

// ConnectionID is the simulated VPN connection id ("vpn-" + 8 hex digits,
// derived from the Sim id so parallel runs differ).
func (s *Sim) ConnectionID() string {
	h := sha256.Sum256([]byte(s.id))
	return "vpn-" + hex.EncodeToString(h[:4])
}

// AWSXML returns the CustomerGatewayConfiguration XML AWS would hand out for
// this simulation: every enabled tunnel with its outside and inside
// addresses, PSK and ASNs (or NoBGPVPNConnection for static routing). As in
// real downloads the ike/ipsec blocks show the sample minimum
// (aes-128-cbc/sha1/group2), not the configured proposal set (§2.1).
func (s *Sim) AWSXML() []byte {
	id := s.ConnectionID()
	doc := xmlVPNConnection{
		ID:                id,
		CustomerGatewayID: "cgw-" + id[4:],
		VPNGatewayID:      "vgw-" + id[4:],
		Type:              "ipsec.1",
	}
	if s.opts.Routing == RoutingStatic {
		doc.Attributes = "NoBGPVPNConnection"
	}
	for i, e := range Endpoints {
		o := s.opts.Endpoint[i]
		if o.Disabled {
			continue
		}
		var t xmlIPsecTunnel
		side := func(g *xmlGatewaySide, outside, inside netip.Addr, asn uint32) {
			g.Outside.IP = outside.String()
			g.Inside.IP = inside.String()
			g.Inside.Mask = "255.255.255.252"
			g.Inside.CIDR = 30
			if s.opts.Routing == RoutingBGP {
				g.BGP = &xmlBGP{ASN: asn, HoldTime: 30}
			}
		}
		side(&t.CustomerGateway, s.CustPublic(), e.CustInside, o.CustomerASN)
		side(&t.VPNGateway, s.AWSOutside(i+1), e.AWSInside, s.opts.AWSASN)
		if s.opts.IPv6Inside {
			t.CustomerGateway.Inside6 = &xmlInside6{CustInside6(i + 1).String(), 126}
			t.VPNGateway.Inside6 = &xmlInside6{AWSInside6(i + 1).String(), 126}
		}
		t.IKE = xmlIKE{Auth: "sha1", Encr: "aes-128-cbc", Lifetime: int(o.IKELifetime.Seconds()), PFS: "group2", Mode: "main", PSK: o.PSK}
		t.IPsec = xmlIPsec{
			Protocol: "esp", Auth: "hmac-sha1-96", Encr: "aes-128-cbc", Lifetime: int(o.ChildLifetime.Seconds()),
			PFS: "group2", Mode: "tunnel", ClearDF: true, FragBefore: true, TCPMSS: 1379,
			DPDInterval: 10, DPDRetries: 3,
		}
		doc.Tunnels = append(doc.Tunnels, t)
	}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		// Only plain strings and ints: cannot fail.
		panic(fmt.Sprintf("sim: marshal AWS XML: %v", err))
	}
	return append([]byte(xml.Header), append(b, '\n')...)
}

// AWSGenericText returns the console's "Download configuration" for vendor
// Generic that AWS would hand out for this simulation: the XSL rendering of
// AWSXML (aws-vpn-facts §5.2), with the tabs, trailing blanks and the
// double space of the real downloads (config/testdata/aws-samples), so the
// console path can be tested end to end.
func (s *Sim) AWSGenericText() []byte {
	var doc xmlVPNConnection
	if err := xml.Unmarshal(s.AWSXML(), &doc); err != nil {
		panic(fmt.Sprintf("sim: re-read AWS XML: %v", err))
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("Amazon Web Services\nVirtual Private Cloud\n\nVPN Connection Configuration\n%s\n", strings.Repeat("=", 80))
	w("AWS utilizes unique identifiers to manipulate the configuration of \na VPN Connection. Each VPN Connection is assigned a VPN Connection Identifier \n")
	w("and is associated with two other identifiers, namely the \nCustomer Gateway Identifier and the Virtual Private Gateway Identifier.\n\n")
	w("Your VPN Connection ID\t\t         : %s\n", doc.ID)
	w("Your Virtual Private Gateway ID          : %s\n", doc.VPNGatewayID)
	w("Your Customer Gateway ID    \t\t : %s\n\t\t\n", doc.CustomerGatewayID)
	w("A VPN Connection consists of a pair of IPSec tunnel security associations (SAs). \nIt is important that both tunnel security associations be configured. \n\n")
	for i, t := range doc.Tunnels {
		w("\t\t\t\t\nIPSec Tunnel #%d\n%s\n", i+1, strings.Repeat("=", 80))
		w("#1: Internet Key Exchange Configuration\n\t\t\nConfigure the IKE SA as follows:\n")
		w("Please note, these sample configurations are for the minimum requirement of AES128, SHA1, and DH Group 2.\n")
		w("To ensure that NAT traversal (NAT-T) can function, you must adjust your firewall !rules to unblock UDP port 4500. If not behind NAT, we recommend disabling NAT-T.\n")
		w("  - IKE version              : IKEv1 \n")
		w("  - Authentication Method    : Pre-Shared Key \n")
		w("  - Pre-Shared Key           : %s\n", t.IKE.PSK)
		w("  - Authentication Algorithm : %s\n", t.IKE.Auth)
		w("  - Encryption Algorithm     : %s\n", t.IKE.Encr)
		w("  - Lifetime                 : %d seconds\n", t.IKE.Lifetime)
		w("  - Phase 1 Negotiation Mode : %s\n", t.IKE.Mode)
		w("  - Diffie-Hellman           : Group %s\n\n", strings.TrimPrefix(t.IKE.PFS, "group"))
		w("#2: IPSec Configuration\n\nConfigure the IPSec SA as follows:\n")
		w("  - Protocol                 : %s\n", t.IPsec.Protocol)
		w("  - Authentication Algorithm : %s\n", t.IPsec.Auth)
		w("  - Encryption Algorithm     : %s\n", t.IPsec.Encr)
		w("  - Lifetime                 : %d seconds\n", t.IPsec.Lifetime)
		w("  - Mode                     : %s\n", t.IPsec.Mode)
		w("  - Perfect Forward Secrecy  : Diffie-Hellman Group %s\n\t\n", strings.TrimPrefix(t.IPsec.PFS, "group"))
		w("IPSec Dead Peer Detection (DPD) will be enabled on the AWS Endpoint. We\nrecommend configuring DPD on your endpoint as follows:\n")
		w("  - DPD Interval             : %d\n  - DPD Retries              : %d\n\n", t.IPsec.DPDInterval, t.IPsec.DPDRetries)
		w("  - TCP MSS Adjustment       : %d bytes\n  - Clear Don't Fragment Bit : enabled\n  - Fragmentation            : Before encryption\n\n", t.IPsec.TCPMSS)
		w("#3: Tunnel Interface Configuration\n\n")
		w("Outside IP Addresses:\n")
		w("  - Customer Gateway \t\t        : %s \n", t.CustomerGateway.Outside.IP)
		w("  - Virtual Private Gateway\t        : %s\n\t\t\n", t.VPNGateway.Outside.IP)
		w("Inside IP Addresses\n")
		w("  - Customer Gateway         \t\t: %s/%d\n", t.CustomerGateway.Inside.IP, t.CustomerGateway.Inside.CIDR)
		w("  - Virtual Private Gateway             : %s/%d\n\n", t.VPNGateway.Inside.IP, t.VPNGateway.Inside.CIDR)
		w("Configure your tunnel to fragment at the optimal size:\n  - Tunnel interface MTU     : 1436 bytes\n    \n")
		if t.CustomerGateway.BGP != nil {
			w("#4: Border Gateway Protocol (BGP) Configuration:\n\nBGP Configuration Options:\n")
			w("  - Customer Gateway ASN\t          : %d \n", t.CustomerGateway.BGP.ASN)
			w("  - Virtual Private  Gateway ASN          : %d\n", t.VPNGateway.BGP.ASN)
			w("  - Neighbor IP Address     \t\t  : %s\n", t.VPNGateway.Inside.IP)
			w("  - Neighbor Hold Time       : %d\n\n", t.VPNGateway.BGP.HoldTime)
		} else {
			w("#4: Static Routing Configuration:\n\nStatic Route Configuration Options:\n")
			w("  - Next hop       : %s\n  \n", t.VPNGateway.Inside.IP)
		}
	}
	w("\n\nAdditional Notes and Questions\n  - Amazon Virtual Private Cloud Getting Started Guide: \n\nXSL Version: 2009-07-15-1119716\n")
	return []byte(b.String())
}
