package awsxml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// This file reads the JSON of `aws ec2 describe-vpn-connections` (and of
// create-/modify-vpn-connection, which wrap one connection in
// "VpnConnection"). Each connection carries its CustomerGatewayConfiguration
// XML as a string, and often Options.TunnelOptions: what the tunnel really
// accepts, which the XML does not say (aws-vpn-facts 5.1). Every member is
// optional; encoding/json matches keys case-insensitively, so both the SDK
// spelling (DpdTimeoutSeconds) and the API's (DPDTimeoutSeconds) are read.

// Connection is one VPN connection to import: its parsed XML and, when it
// came from the JSON, the options the XML lacks.
type Connection struct {
	Doc *VPNConnection
	// Options are the JSON's Options; nil for a bare XML or Generic text.
	Options *ConnectionOptions
}

// ConnectionOptions is a connection's Options member.
type ConnectionOptions struct {
	StaticRoutesOnly      *bool
	LocalIpv4NetworkCidr  string
	RemoteIpv4NetworkCidr string
	LocalIpv6NetworkCidr  string
	RemoteIpv6NetworkCidr string
	TunnelInsideIpVersion string
	TunnelOptions         []TunnelOptions
}

// TunnelOptions is one element of Options.TunnelOptions. Absent members
// (nil, empty) mean AWS's default.
type TunnelOptions struct {
	OutsideIpAddress           string
	TunnelInsideCidr           string
	TunnelInsideIpv6Cidr       string
	PreSharedKey               string
	Phase1LifetimeSeconds      *int
	Phase2LifetimeSeconds      *int
	RekeyMarginTimeSeconds     *int
	RekeyFuzzPercentage        *int
	ReplayWindowSize           *int
	DpdTimeoutSeconds          *int
	DpdTimeoutAction           string
	StartupAction              string
	Phase1EncryptionAlgorithms []stringValue
	Phase2EncryptionAlgorithms []stringValue
	Phase1IntegrityAlgorithms  []stringValue
	Phase2IntegrityAlgorithms  []stringValue
	Phase1DHGroupNumbers       []intValue
	Phase2DHGroupNumbers       []intValue
	IkeVersions                []stringValue
}

type stringValue struct{ Value string }
type intValue struct{ Value int }

func strs(vs []stringValue) []string {
	var out []string
	for _, v := range vs {
		out = append(out, strings.TrimSpace(v.Value))
	}
	return out
}

func ints(vs []intValue) []int {
	var out []int
	for _, v := range vs {
		out = append(out, v.Value)
	}
	return out
}

type describeConnection struct {
	VpnConnectionId              string
	State                        string
	Type                         string
	CustomerGatewayConfiguration *string
	Options                      *ConnectionOptions
	VgwTelemetry                 []struct {
		OutsideIpAddress string
		CertificateArn   string
	}
}

type describeOutput struct {
	VpnConnections *[]describeConnection
	VpnConnection  *describeConnection
}

// ParseDescribe reads the JSON of describe-vpn-connections (one or more
// connections) or of create-/modify-vpn-connection (one). Each connection's
// XML is parsed with Parse; errors name the connection.
func ParseDescribe(data []byte) ([]Connection, error) {
	if len(data) > maxDescribe {
		return nil, fmt.Errorf("awsxml: JSON is %d bytes, larger than describe-vpn-connections output should be (limit %d); filter it with --vpn-connection-ids", len(data), maxDescribe)
	}
	var out describeOutput
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&out); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return nil, fmt.Errorf("awsxml: the JSON ends early: the file is truncated; run aws ec2 describe-vpn-connections again and save its whole output")
		case errors.As(err, &se):
			return nil, fmt.Errorf("awsxml: invalid JSON at byte %d: %v; pass the unmodified output of aws ec2 describe-vpn-connections --output json", se.Offset, se)
		case errors.As(err, &te):
			return nil, fmt.Errorf("awsxml: JSON member %s has the wrong type (%s, want %s); is this the output of aws ec2 describe-vpn-connections?", te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("awsxml: %v; pass the output of aws ec2 describe-vpn-connections --output json", err)
	}
	var conns []describeConnection
	switch {
	case out.VpnConnections != nil:
		conns = *out.VpnConnections
	case out.VpnConnection != nil:
		conns = []describeConnection{*out.VpnConnection}
	default:
		return nil, fmt.Errorf("awsxml: the JSON has no VpnConnections member: it is not the output of aws ec2 describe-vpn-connections; run that command (--output json) and pass its output")
	}
	if len(conns) == 0 {
		return nil, fmt.Errorf("awsxml: the JSON lists no VPN connections (VpnConnections is empty): check the AWS region (--region) and the --vpn-connection-ids or --filters of describe-vpn-connections")
	}
	var res []Connection
	var errs []error
	for i, c := range conns {
		id := c.VpnConnectionId
		if id == "" {
			id = fmt.Sprintf("VpnConnections[%d]", i)
		}
		cert := false
		for _, tel := range c.VgwTelemetry {
			cert = cert || tel.CertificateArn != ""
		}
		switch {
		case c.State == "deleted" || c.State == "deleting":
			errs = append(errs, fmt.Errorf("awsxml: %s is %s; pick another connection (--connection) or create a new one", id, c.State))
			continue
		case c.CustomerGatewayConfiguration == nil || strings.TrimSpace(*c.CustomerGatewayConfiguration) == "":
			errs = append(errs, fmt.Errorf("awsxml: %s has no CustomerGatewayConfiguration (state %q); AWS adds it once the connection is available: wait and run describe-vpn-connections again", id, c.State))
			continue
		}
		xmlText := strings.TrimSpace(*c.CustomerGatewayConfiguration)
		if !strings.HasPrefix(xmlText, "<") {
			errs = append(errs, fmt.Errorf("awsxml: %s: CustomerGatewayConfiguration is not an XML document (%q); it is a placeholder or was edited: pass the real output of aws ec2 describe-vpn-connections", id, clip(xmlText, 40)))
			continue
		}
		doc, err := Parse([]byte(xmlText))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: CustomerGatewayConfiguration: %w", id, err))
			continue
		}
		if doc.ID == "" {
			doc.ID = c.VpnConnectionId
		}
		if doc.ID != c.VpnConnectionId && c.VpnConnectionId != "" {
			errs = append(errs, fmt.Errorf("awsxml: %s: its CustomerGatewayConfiguration names connection %q; the JSON was edited", id, doc.ID))
			continue
		}
		doc.Certificate = doc.Certificate || cert
		res = append(res, Connection{Doc: doc, Options: c.Options})
	}
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	return res, nil
}

// clip shortens s to n runes for a message.
func clip(s string, n int) string {
	r := []rune(oneLine(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n]) + "…"
}
