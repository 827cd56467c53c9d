package awsxml

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hubDescribe is a describe-vpn-connections JSON of n copies of the real
// sample's connection (describe-batfish-tunneloptions.json), as a hub's
// output of many connections.
func hubDescribe(t *testing.T, n int) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "aws-samples", "describe-batfish-tunneloptions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ VpnConnections []json.RawMessage }
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.VpnConnections) != 1 {
		t.Fatalf("sample: %v (%d connections)", err, len(doc.VpnConnections))
	}
	var b bytes.Buffer
	b.WriteString("{\n    \"VpnConnections\": [\n")
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(doc.VpnConnections[0])
	}
	b.WriteString("\n    ]\n}\n")
	return b.Bytes()
}

// A hub's describe JSON is larger than one XML document's 1 MiB bound:
// 150 connections of the real sample (about 1.2 MB) are read, and only a
// JSON above 4 MiB is refused, with a message naming the filter.
func TestReadDescribeHubSize(t *testing.T) {
	data := hubDescribe(t, 150)
	if len(data) <= maxDocument {
		t.Fatalf("test JSON is %d bytes, want more than %d", len(data), maxDocument)
	}
	f, conns, err := Read(data)
	if err != nil || f != FormatJSON || len(conns) != 150 {
		t.Fatalf("Read of %d bytes: format %q, %d connections, %v", len(data), f, len(conns), err)
	}
	big := hubDescribe(t, maxDescribe/(len(data)/150)+10)
	if len(big) <= maxDescribe {
		t.Fatalf("test JSON is %d bytes, want more than %d", len(big), maxDescribe)
	}
	if _, _, err := Read(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Read of %d bytes: %v, want a size error", len(big), err)
	}
	if _, err := ParseDescribe(big); err == nil || !strings.Contains(err.Error(), "--vpn-connection-ids") {
		t.Errorf("ParseDescribe of %d bytes: %v, want a size error naming --vpn-connection-ids", len(big), err)
	}
}
