package sim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// IKESA is one IKE_SA as charon reports it (swanctl --list-sas).
type IKESA struct {
	Name            string
	UniqueID        int
	Version         int
	State           string // CREATED, CONNECTING, ESTABLISHED, REKEYING, DELETING, ...
	LocalHost       string
	LocalPort       int
	LocalID         string
	RemoteHost      string
	RemotePort      int
	RemoteID        string
	Initiator       bool
	SPIInit         string
	SPIResp         string
	NATLocal        bool // our side is behind NAT (or faked: encap = yes)
	NATRemote       bool
	NATAny          bool
	EncrAlg         string
	EncrKeySize     int
	IntegAlg        string
	PRFAlg          string
	DHGroup         string
	EstablishedSecs int // seconds since established
	RekeyTime       int // seconds until rekey
	Children        []ChildSA
}

// ChildSA is one CHILD_SA of an IKESA.
type ChildSA struct {
	Name        string
	UniqueID    int
	ReqID       int
	State       string // INSTALLED, REKEYING, REKEYED, DELETING, ...
	Mode        string
	Protocol    string
	Encap       bool
	SPIIn       string
	SPIOut      string
	EncrAlg     string
	EncrKeySize int
	IntegAlg    string
	DHGroup     string
	BytesIn     uint64
	PacketsIn   uint64
	BytesOut    uint64
	PacketsOut  uint64
	RekeyTime   int
	LifeTime    int
	InstallTime int
	LocalTS     []string
	RemoteTS    []string
}

// Established reports whether the IKE_SA is ESTABLISHED.
func (sa IKESA) Established() bool { return sa.State == "ESTABLISHED" }

// Installed returns the INSTALLED CHILD_SAs.
func (sa IKESA) Installed() []ChildSA {
	var out []ChildSA
	for _, c := range sa.Children {
		if c.State == "INSTALLED" {
			out = append(out, c)
		}
	}
	return out
}

// ListSAs returns the IKE_SAs of AWS endpoint i (1 or 2).
func (s *Sim) ListSAs(endpoint int) ([]IKESA, error) {
	if !s.EndpointEnabled(endpoint) {
		return nil, fmt.Errorf("sim: endpoint %d not running", endpoint)
	}
	return s.ListSAsOf(Endpoints[endpoint-1].Role)
}

// ListSAsOf returns the IKE_SAs of the charon in role (AWS1, AWS2, Cust).
func (s *Sim) ListSAsOf(role Role) ([]IKESA, error) {
	out, err := s.Swanctl(role, "--list-sas", "--pretty")
	if err != nil {
		return nil, err
	}
	return parseListSAs(out)
}

// vici node of a parsed `--pretty` dump.
type viciNode struct {
	name  string
	kv    map[string]string
	lists map[string][]string
	subs  []*viciNode
}

func (n *viciNode) sub(name string) *viciNode {
	for _, c := range n.subs {
		if c.name == name {
			return c
		}
	}
	return nil
}

// parseVici parses swanctl's --pretty output: "name {", "key = value",
// "key [", list items, "]" and "}" one per line.
func parseVici(out string) (*viciNode, error) {
	root := &viciNode{kv: map[string]string{}, lists: map[string][]string{}}
	stack := []*viciNode{root}
	var list *[]string
	var listKey string
	for _, raw := range strings.Split(out, "\n") {
		l := strings.TrimSpace(raw)
		if l == "" {
			continue
		}
		top := stack[len(stack)-1]
		switch {
		case list != nil && l == "]":
			top.lists[listKey] = *list
			list = nil
		case list != nil:
			*list = append(*list, l)
		case l == "}":
			if len(stack) == 1 {
				return nil, errors.New("sim: unbalanced } in swanctl output")
			}
			stack = stack[:len(stack)-1]
		case strings.HasSuffix(l, " {"):
			n := &viciNode{name: strings.TrimSuffix(l, " {"), kv: map[string]string{}, lists: map[string][]string{}}
			top.subs = append(top.subs, n)
			stack = append(stack, n)
		case strings.HasSuffix(l, " ["):
			listKey = strings.TrimSuffix(strings.TrimSuffix(l, " ["), " =")
			list = &[]string{}
		default:
			k, v, ok := strings.Cut(l, " = ")
			if !ok {
				// Some swanctl versions print "key [item item]" inline.
				continue
			}
			top.kv[k] = v
		}
	}
	if len(stack) != 1 || list != nil {
		return nil, errors.New("sim: truncated swanctl output")
	}
	return root, nil
}

func parseListSAs(out string) ([]IKESA, error) {
	root, err := parseVici(out)
	if err != nil {
		return nil, err
	}
	var sas []IKESA
	for _, ev := range root.subs { // "list-sa event"
		for _, n := range ev.subs {
			sas = append(sas, ikeFromNode(n))
		}
	}
	return sas, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func atou(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

func ikeFromNode(n *viciNode) IKESA {
	kv := n.kv
	sa := IKESA{
		Name: n.name, UniqueID: atoi(kv["uniqueid"]), Version: atoi(kv["version"]), State: kv["state"],
		LocalHost: kv["local-host"], LocalPort: atoi(kv["local-port"]), LocalID: kv["local-id"],
		RemoteHost: kv["remote-host"], RemotePort: atoi(kv["remote-port"]), RemoteID: kv["remote-id"],
		Initiator: kv["initiator"] == "yes", SPIInit: kv["initiator-spi"], SPIResp: kv["responder-spi"],
		NATLocal: kv["nat-local"] == "yes", NATRemote: kv["nat-remote"] == "yes", NATAny: kv["nat-any"] == "yes",
		EncrAlg: kv["encr-alg"], EncrKeySize: atoi(kv["encr-keysize"]), IntegAlg: kv["integ-alg"],
		PRFAlg: kv["prf-alg"], DHGroup: kv["dh-group"], EstablishedSecs: atoi(kv["established"]), RekeyTime: atoi(kv["rekey-time"]),
	}
	if cs := n.sub("child-sas"); cs != nil {
		for _, c := range cs.subs {
			k := c.kv
			sa.Children = append(sa.Children, ChildSA{
				Name: k["name"], UniqueID: atoi(k["uniqueid"]), ReqID: atoi(k["reqid"]), State: k["state"],
				Mode: k["mode"], Protocol: k["protocol"], Encap: k["encap"] == "yes",
				SPIIn: k["spi-in"], SPIOut: k["spi-out"], EncrAlg: k["encr-alg"], EncrKeySize: atoi(k["encr-keysize"]),
				IntegAlg: k["integ-alg"], DHGroup: k["dh-group"],
				BytesIn: atou(k["bytes-in"]), PacketsIn: atou(k["packets-in"]),
				BytesOut: atou(k["bytes-out"]), PacketsOut: atou(k["packets-out"]),
				RekeyTime: atoi(k["rekey-time"]), LifeTime: atoi(k["life-time"]), InstallTime: atoi(k["install-time"]),
				LocalTS: c.lists["local-ts"], RemoteTS: c.lists["remote-ts"],
			})
		}
	}
	return sa
}

// WaitTunnel waits until endpoint i has an ESTABLISHED IKE_SA with an
// INSTALLED CHILD_SA and returns it.
func (s *Sim) WaitTunnel(endpoint int, timeout time.Duration) (IKESA, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		sas, err := s.ListSAs(endpoint)
		last = err
		for _, sa := range sas {
			if sa.Established() && len(sa.Installed()) > 0 {
				return sa, nil
			}
		}
		if err == nil {
			last = fmt.Errorf("%d IKE_SAs, none established with an installed CHILD_SA", len(sas))
		}
		if time.Now().After(deadline) {
			return IKESA{}, fmt.Errorf("sim: endpoint %d: no tunnel within %v: %v", endpoint, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
