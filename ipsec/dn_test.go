package ipsec

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

func TestParseDN(t *testing.T) {
	der, err := ParseDN("C=US, O=Example\\, Inc., CN=gw1")
	if err != nil {
		t.Fatal(err)
	}
	var got pkix.RDNSequence
	if _, err := asn1.Unmarshal(der, &got); err != nil {
		t.Fatal(err)
	}
	var n pkix.Name
	n.FillFromRDNSequence(&got)
	if n.CommonName != "gw1" || n.Organization[0] != "Example, Inc." || n.Country[0] != "US" {
		t.Fatalf("parsed %+v", n)
	}
	if s := DNString(der); s != "C=US, O=Example\\, Inc., CN=gw1" {
		t.Errorf("DNString = %q", s)
	}
	// The same name as Go's x509 encodes it (PrintableString) renders the same.
	std, _ := asn1.Marshal((pkix.Name{CommonName: "vpn-0a.endpoint-0"}).ToRDNSequence())
	if DNString(std) != "CN=vpn-0a.endpoint-0" {
		t.Errorf("DNString(std) = %q", DNString(std))
	}
	for _, bad := range []string{"", "CN", "XX=1", "CN=a,,O=b", "CN="} {
		if _, err := ParseDN(bad); err == nil {
			t.Errorf("ParseDN(%q) accepted", bad)
		}
	}
}
