package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/netip"
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
	BGP *xmlBGP `xml:"bgp,omitempty"`
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
		side(&t.CustomerGateway, CustPublicAddr, e.CustInside, o.CustomerASN)
		side(&t.VPNGateway, e.Outside, e.AWSInside, s.opts.AWSASN)
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
