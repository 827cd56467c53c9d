package main

import (
	"reflect"
	"testing"
)

func TestVerbPaths(t *testing.T) {
	help := `usage: cgwctl <command> [flags]

commands:
  config check [-q] [FILE]       validate a configuration file
  config default                 print a commented configuration
  import-aws --xml FILE [--advertise CIDR]... [--remote-prefix CIDR]...
                                 write a cgw configuration
  tunnel up [--socket PATH] NAME start IKE for the tunnel
  reload [--socket PATH]         re-read cgwd's configuration file

global flags:
  --socket PATH   control socket of cgwd
`
	want := []string{"config check", "config default", "import-aws", "tunnel up", "reload"}
	if got := verbPaths(help); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseVerb(t *testing.T) {
	h := "usage: cgwctl status [--json] [--socket PATH]\n\nshow every tunnel\n\nMore text.\n\nflags:\n  -json\n    \tprint JSON\n  -socket string\n    \tcontrol socket\n"
	v, err := parseVerb("status", h)
	if err != nil {
		t.Fatal(err)
	}
	if v.usage != "[--json] [--socket PATH]" || v.summary != "show every tunnel" || v.help != "More text." {
		t.Errorf("%+v", v)
	}
	want := []flagDoc{{"json", "", "print JSON"}, {"socket", "string", "control socket"}}
	if !reflect.DeepEqual(v.flags, want) {
		t.Errorf("flags %+v, want %+v", v.flags, want)
	}
	// The binaries spell long flags --name (internal/flaghelp).
	v, err = parseVerb("status", "usage: cgwctl status [--json] [--socket PATH]\n\nshow\n\nflags:\n  --json\n    \tprint JSON\n  --socket PATH\n    \tcontrol socket\n  -q\tquiet\n")
	if err != nil {
		t.Fatal(err)
	}
	want = []flagDoc{{"json", "", "print JSON"}, {"socket", "PATH", "control socket"}, {"q", "", "quiet"}}
	if !reflect.DeepEqual(v.flags, want) {
		t.Errorf("--flags: %+v, want %+v", v.flags, want)
	}
	if _, err := parseVerb("status", "something else\n"); err == nil {
		t.Error("a help text without the usage line parsed")
	}
}

func TestParseConfig(t *testing.T) {
	cfg := `# header line
#
# second
version: 1                # required
log:
  level: info             # debug | info
                          # more about level
connections:
  - name: vpn             # required
    # local_address: 203.0.113.10   # optional address
    # static:
    #   remote_prefixes: [10.0.0.0/16]  # VPC CIDRs
    tunnels:
      - name: t1
        psk: "x"          # required
      - name: t2
        psk: "y"
`
	header, keys := parseConfig(cfg)
	if header != "header line\n\nsecond\n" {
		t.Errorf("header %q", header)
	}
	want := []configKey{
		{path: "version", value: "1", doc: "required"},
		{path: "log"},
		{path: "log.level", value: "info", doc: "debug | info more about level"},
		{path: "connections"},
		{path: "connections[].name", value: "vpn", doc: "required"},
		{path: "connections[].local_address", value: "203.0.113.10", doc: "optional address", optional: true},
		{path: "connections[].static", optional: true},
		{path: "connections[].static.remote_prefixes", value: "[10.0.0.0/16]", doc: "VPC CIDRs", optional: true},
		{path: "connections[].tunnels"},
		{path: "connections[].tunnels[].name", value: "t1"},
		{path: "connections[].tunnels[].psk", value: `"x"`, doc: "required"},
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys:\n%+v\nwant\n%+v", keys, want)
	}
}
