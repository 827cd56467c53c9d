package awsxml

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file reads the console's "Download configuration" for vendor
// Generic: an XSL rendering of the XML (aws-vpn-facts 5.2). It is parsed by
// meaning, line by line: "  - Key : value" lines, with tabs and runs of
// spaces inside keys, are read in the context of the last heading seen
// ("IPSec Tunnel #N", "#1: Internet Key Exchange", "Outside IP Addresses",
// "#4: Static Routing"...). Older templates say "VPN Gateway" instead of
// "Virtual Private Gateway" and "Perfect Forward Secrecy" instead of
// "Diffie-Hellman" in the IKE section; Transit Gateway downloads leave the
// gateway ID blank. The result is the VPNConnection the XML would give.

// genericSection is where a key/value line sits.
type genericSection int

const (
	secHeader genericSection = iota
	secIKE
	secIPsec
	secInterface
	secOutside
	secInside
	secBGP
	secStatic
)

// normKey lowercases a key and collapses tabs and spaces to one space.
func normKey(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// ParseGeneric reads the Generic text download. Like Parse, it checks the
// structure only; Generate checks the values.
func ParseGeneric(data []byte) (*VPNConnection, error) {
	if len(data) > maxDocument {
		return nil, fmt.Errorf("awsxml: file is %d bytes, larger than any AWS configuration (limit %d); is this the right file?", len(data), maxDocument)
	}
	v := &VPNConnection{Type: "ipsec.1"}
	sec := secHeader
	var t *Tunnel
	staticSeen, bgpSeen := false, false
	// fields tracks what each tunnel gave, to name what a truncated file lacks.
	var seen []map[string]bool
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxDocument)
	line := 0
	for sc.Scan() {
		line++
		raw := strings.TrimSpace(sc.Text())
		lower := normKey(raw)
		switch {
		case strings.HasPrefix(lower, "ipsec tunnel #"):
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(lower, "ipsec tunnel #")))
			if err != nil || n != len(v.Tunnels)+1 {
				return nil, fmt.Errorf("awsxml: generic text line %d: %q out of order; pass the unmodified download", line, raw)
			}
			v.Tunnels = append(v.Tunnels, Tunnel{})
			seen = append(seen, map[string]bool{})
			t = &v.Tunnels[len(v.Tunnels)-1]
			sec = secHeader
			continue
		case strings.HasPrefix(lower, "#1:") && strings.Contains(lower, "key exchange"):
			sec = secIKE
			continue
		case strings.HasPrefix(lower, "#2:") && strings.Contains(lower, "ipsec"):
			sec = secIPsec
			continue
		case strings.HasPrefix(lower, "#3:"):
			sec = secInterface
			continue
		case strings.HasPrefix(lower, "#4:") && strings.Contains(lower, "static"):
			sec, staticSeen = secStatic, true
			continue
		case strings.HasPrefix(lower, "#4:"):
			sec, bgpSeen = secBGP, true
			continue
		case strings.HasPrefix(lower, "outside ip address"):
			sec = secOutside
			continue
		case strings.HasPrefix(lower, "inside ip address"):
			sec = secInside
			continue
		}
		key, val, ok := genericKV(raw)
		if !ok && t == nil && strings.HasPrefix(lower, "your ") {
			// Header lines: "Your VPN Connection ID : vpn-...", no dash.
			k, v, found := strings.Cut(raw, ":")
			key, val, ok = normKey(k), strings.TrimSpace(v), found
		}
		if !ok {
			continue
		}
		if sec == secHeader && t == nil {
			switch {
			case key == "your vpn connection id":
				v.ID = val
			case key == "your customer gateway id":
				v.CustomerGatewayID = val
			case strings.HasPrefix(key, "your") && strings.HasSuffix(key, "gateway id"):
				// "Virtual Private Gateway ID" (blank on Transit Gateway
				// connections), "VPN Gateway ID" in older templates.
				if !strings.HasPrefix(val, "tgw-") {
					v.VPNGatewayID = val
				}
			}
			continue
		}
		if t == nil {
			continue
		}
		seen[len(seen)-1][genericField(sec, key)] = true
		switch sec {
		case secIKE:
			switch key {
			case "ike version":
				if !strings.Contains(strings.ToLower(val), "ikev2") && !strings.Contains(strings.ToLower(val), "ikev1") {
					return nil, fmt.Errorf("awsxml: generic text line %d: unknown IKE version %q", line, val)
				}
			case "authentication method":
				if !strings.Contains(strings.ToLower(val), "pre-shared") {
					v.Certificate = true
				}
			case "pre-shared key":
				t.IKE.PreSharedKey = val
			case "authentication algorithm":
				t.IKE.AuthenticationProtocol = val
			case "encryption algorithm":
				t.IKE.EncryptionProtocol = val
			case "lifetime":
				t.IKE.Lifetime = firstWord(val)
			case "phase 1 negotiation mode":
				t.IKE.Mode = val
			case "diffie-hellman", "perfect forward secrecy":
				t.IKE.PFS = groupOf(val)
			}
		case secIPsec:
			switch key {
			case "protocol":
				t.IPsec.Protocol = val
			case "authentication algorithm":
				t.IPsec.AuthenticationProtocol = val
			case "encryption algorithm":
				t.IPsec.EncryptionProtocol = val
			case "lifetime":
				t.IPsec.Lifetime = firstWord(val)
			case "mode":
				t.IPsec.Mode = val
			case "perfect forward secrecy":
				t.IPsec.PFS = groupOf(val)
			case "dpd interval":
				t.IPsec.DPDInterval = val
			case "dpd retries":
				t.IPsec.DPDRetries = val
			case "tcp mss adjustment":
				t.IPsec.TCPMSSAdjustment = firstWord(val)
			}
		case secOutside, secInside:
			if !strings.Contains(key, "gateway") {
				break // "Tunnel interface MTU" and the like
			}
			g := &t.AWS
			if strings.HasPrefix(key, "customer gateway") {
				g = &t.Customer
			}
			if sec == secOutside {
				g.OutsideAddress = val
				break
			}
			p, err := netip.ParsePrefix(val)
			if err != nil {
				g.InsideAddress = val // Generate names the bad value
				break
			}
			if p.Addr().Is6() {
				g.InsideIPv6, g.InsideIPv6Len = p.Addr().String(), strconv.Itoa(p.Bits())
			} else {
				g.InsideAddress, g.InsideCIDR = p.Addr().String(), strconv.Itoa(p.Bits())
			}
		case secBGP:
			switch {
			case strings.HasPrefix(key, "customer gateway asn"):
				bgpOf(&t.Customer).ASN = val
			case strings.HasSuffix(key, "gateway asn"):
				bgpOf(&t.AWS).ASN = val
			case key == "neighbor hold time":
				bgpOf(&t.AWS).HoldTime = val
				bgpOf(&t.Customer).HoldTime = val
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("awsxml: generic text: %v", err)
	}
	if len(v.Tunnels) == 0 {
		return nil, fmt.Errorf("awsxml: the text has no \"IPSec Tunnel #1\" section: it is not a complete Generic download; download the configuration again (vendor Generic)")
	}
	if staticSeen && !bgpSeen {
		v.Attributes = StaticRouting
	}
	for i, s := range seen {
		var missing []string
		for _, f := range []string{"ike/pre-shared key", "outside/customer gateway", "outside/gateway", "inside/customer gateway", "inside/gateway"} {
			if !s[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("awsxml: IPSec Tunnel #%d lacks %s: the file is truncated or edited; download the configuration again (vendor Generic)", i+1, strings.Join(missing, ", "))
		}
	}
	return v, nil
}

// genericField names a key for the completeness check.
func genericField(sec genericSection, key string) string {
	switch sec {
	case secIKE:
		return "ike/" + key
	case secOutside, secInside:
		side := "gateway"
		if strings.HasPrefix(key, "customer gateway") {
			side = "customer gateway"
		}
		if sec == secOutside {
			return "outside/" + side
		}
		return "inside/" + side
	}
	return key
}

// genericKV splits "- Key : value" (the dash is required: prose lines with
// a colon are not settings). Values may contain colons (IPv6 addresses).
func genericKV(line string) (key, val string, ok bool) {
	if !strings.HasPrefix(line, "-") {
		return "", "", false
	}
	k, v, ok := strings.Cut(line[1:], ":")
	if !ok {
		return "", "", false
	}
	return normKey(k), strings.TrimSpace(v), true
}

// groupOf turns "Group 2" or "Diffie-Hellman Group 14" into "group2".
func groupOf(s string) string {
	f := strings.Fields(strings.ToLower(s))
	for i, w := range f {
		if w == "group" && i+1 < len(f) {
			return "group" + f[i+1]
		}
	}
	return s
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func bgpOf(g *Gateway) *BGP {
	if g.BGP == nil {
		g.BGP = &BGP{}
	}
	return g.BGP
}

func orDash(s string) string {
	if s == "" {
		return "the connection"
	}
	return s
}
