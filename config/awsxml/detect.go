package awsxml

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Format is the kind of document Read recognised.
type Format string

const (
	FormatXML     Format = "CustomerGatewayConfiguration XML"
	FormatGeneric Format = "console download (vendor Generic)"
	FormatJSON    Format = "aws ec2 describe-vpn-connections JSON"
)

// Read recognises what AWS handed out by its content, not its file name,
// and parses it: the XML, the console's Generic text or the JSON of
// describe-vpn-connections (one or more connections). Anything else is an
// error that says what the input looks like and what to pass instead.
func Read(data []byte) (Format, []Connection, error) {
	if len(data) > maxDescribe {
		return "", nil, fmt.Errorf("awsxml: input is %d bytes, larger than any AWS configuration (limit %d); is this the right file?", len(data), maxDescribe)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM (Windows editors)
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return "", nil, fmt.Errorf("awsxml: the input is empty; pass the file downloaded from the AWS console (vendor Generic), the output of aws ec2 describe-vpn-connections, or its CustomerGatewayConfiguration XML")
	}
	text := string(trimmed)
	if what, fix, ok := wrongInput(text); ok {
		return "", nil, fmt.Errorf("awsxml: this is %s, not a configuration cgw reads; %s", what, fix)
	}
	switch trimmed[0] {
	case '<':
		v, err := Parse(trimmed)
		if err != nil {
			return FormatXML, nil, err
		}
		return FormatXML, []Connection{{Doc: v}}, nil
	case '{', '[':
		cs, err := ParseDescribe(trimmed)
		return FormatJSON, cs, err
	}
	if genericRE.MatchString(text) {
		v, err := ParseGeneric(data)
		if err != nil {
			return FormatGeneric, nil, err
		}
		return FormatGeneric, []Connection{{Doc: v}}, nil
	}
	return "", nil, fmt.Errorf("awsxml: the input (starting %q) is none of the formats AWS hands out that cgw reads; pass the console download for vendor Generic, the output of aws ec2 describe-vpn-connections (JSON), or its CustomerGatewayConfiguration XML", clip(text, 40))
}

// genericRE recognises the Generic download, old and new templates.
var genericRE = regexp.MustCompile(`(?im)^\s*IPSec Tunnel #1\s*$`)

// wrongInputs recognise the other downloads of the same AWS dialog and the
// other outputs of the AWS CLI by content.
var wrongInputs = []struct {
	re        *regexp.Regexp
	what, fix string
}{
	{regexp.MustCompile(`(?m)^\s*crypto (isakmp|ikev1|ikev2|ipsec|keyring|map)\b`), "a Cisco configuration (IOS/ASA) from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?m)^\s*set security (ike|ipsec)\b`), "a Juniper configuration (SRX/J-Series) from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?m)^\s*set (ike gateway|vpn [^\n]*gateway)\b`), "a Juniper ScreenOS configuration from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?m)^\s*config vpn ipsec phase1-interface\b`), "a Fortinet FortiGate configuration from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?m)^\s*set vpn ipsec\b`), "a Vyatta/VyOS configuration from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?m)^\s*set network (ike|tunnel)\b`), "a Palo Alto configuration from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?m)^\s*/ip ipsec\b`), "a MikroTik configuration from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?im)(Add|New)-VpnS2SInterface|Install-RemoteAccess`), "a Microsoft Windows Server configuration from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?m)^\s*conn Tunnel\d|(?m)^\s*leftid\s*=|ipsec\.secrets`), "a strongSwan (ipsec.conf) configuration from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?i)<pfsense\b|<opnsense\b`), "a pfSense/OPNsense configuration from the AWS download dialog", "download the configuration again with vendor Generic"},
	{regexp.MustCompile(`(?m)^\s*\|+\s*DescribeVpnConnections\s*\|`), "the AWS CLI's --output table", "run aws ec2 describe-vpn-connections with --output json (the default) and pass that"},
	{regexp.MustCompile(`(?m)^VPNCONNECTIONS\t`), "the AWS CLI's --output text", "run aws ec2 describe-vpn-connections with --output json (the default) and pass that"},
	{regexp.MustCompile(`(?m)^VpnConnections:\s*$`), "the AWS CLI's --output yaml", "run aws ec2 describe-vpn-connections with --output json (the default) and pass that"},
	{regexp.MustCompile(`(?m)^-----BEGIN [A-Z ]*(CERTIFICATE|PRIVATE KEY)-----`), "a PEM certificate or key", "pass the VPN connection's configuration instead, and the certificate files with --cert, --key and --ca"},
}

func wrongInput(text string) (what, fix string, ok bool) {
	// Only the head: the Generic download's prose never contains these,
	// and a vendor file shows its syntax early.
	head := text
	if len(head) > 64<<10 {
		head = head[:64<<10]
	}
	if strings.HasPrefix(head, "<") || strings.HasPrefix(head, "{") {
		// XML and JSON are judged by their parsers; a PEM block or
		// vendor syntax cannot start with these.
		if !strings.Contains(head[:min(len(head), 200)], "pfsense") && !strings.Contains(head[:min(len(head), 200)], "opnsense") {
			return "", "", false
		}
	}
	for _, w := range wrongInputs {
		if w.re.MatchString(head) {
			return w.what, w.fix, true
		}
	}
	return "", "", false
}
