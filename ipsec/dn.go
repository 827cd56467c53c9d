package ipsec

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// Distinguished names as IKE identities (ID_DER_ASN1_DN, RFC 7296
// Section 3.5) are written as strongSwan and AWS write them: RDNs in
// encoding order, separated by commas, e.g. "CN=vpn-0a1b.endpoint-0" or
// "C=US, O=Example, CN=gw1".

var dnTypes = map[string]asn1.ObjectIdentifier{
	"C": {2, 5, 4, 6}, "O": {2, 5, 4, 10}, "OU": {2, 5, 4, 11}, "CN": {2, 5, 4, 3},
	"L": {2, 5, 4, 7}, "ST": {2, 5, 4, 8}, "SERIALNUMBER": {2, 5, 4, 5}, "STREET": {2, 5, 4, 9},
	"POSTALCODE": {2, 5, 4, 17}, "DC": {0, 9, 2342, 19200300, 100, 1, 25}, "E": {1, 2, 840, 113549, 1, 9, 1},
}

// ParseDN parses a distinguished name into DER. Attribute types: C, O,
// OU, CN, L, ST, SERIALNUMBER, STREET, POSTALCODE, DC, E (emailAddress);
// a comma inside a value is escaped as "\,".
func ParseDN(s string) ([]byte, error) {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ',':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	parts = append(parts, cur.String())
	var rdns pkix.RDNSequence
	for _, p := range parts {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, fmt.Errorf("%q is not TYPE=value (e.g. CN=vpn-0123456789abcdef0.endpoint-0)", strings.TrimSpace(p))
		}
		oid, ok := dnTypes[k]
		if !ok {
			return nil, fmt.Errorf("unknown attribute type %q in the DN (use C, O, OU, CN, L, ST, DC, E, SERIALNUMBER)", k)
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}})
	}
	return asn1.Marshal(rdns)
}

// DNString renders a DER DN in encoding order, as ParseDN reads it.
func DNString(der []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) != 0 {
		return fmt.Sprintf("DN:%x", der)
	}
	var parts []string
	for _, rdn := range rdns {
		for _, atv := range rdn {
			k := atv.Type.String()
			for name, oid := range dnTypes {
				if oid.Equal(atv.Type) {
					k = name
				}
			}
			v := strings.ReplaceAll(fmt.Sprint(atv.Value), ",", "\\,")
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ", ")
}
