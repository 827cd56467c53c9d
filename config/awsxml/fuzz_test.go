package awsxml

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/config"
)

// FuzzImport: Parse and Generate never panic on any document; whatever
// Generate accepts is a configuration config.Parse accepts too, and no
// error repeats a tunnel's pre-shared key.
func FuzzImport(f *testing.F) {
	xmls, _ := filepath.Glob(filepath.Join("..", "testdata", "*.xml"))
	for _, p := range xmls {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte("<vpn_connection id=\"x\"></vpn_connection>"), false)
	f.Add([]byte("<vpn_connection><ipsec_tunnel><ike><pre_shared_key>EXAMPLEpsk1_abc</pre_shared_key></ike></ipsec_tunnel></vpn_connection>"), true)
	f.Fuzz(func(t *testing.T, data []byte, static bool) {
		v, err := Parse(data)
		if err != nil {
			return
		}
		opt := Options{Advertise: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
		if static {
			opt = Options{RemotePrefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}
		}
		out, _, err := Generate(v, opt)
		if err != nil {
			for _, tn := range v.Tunnels {
				if psk := tn.IKE.PreSharedKey; len(psk) >= 8 && strings.Contains(err.Error(), psk) {
					t.Fatalf("error repeats a PSK: %v", err)
				}
			}
			return
		}
		if _, _, err := config.Parse(out, GeneratedFile); err != nil {
			t.Fatalf("Generate's output does not parse: %v\n%s", err, out)
		}
	})
}
