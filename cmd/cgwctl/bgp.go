package main

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/cgwproject/cgw/control"
)

var bgpCmd = &command{
	name:    "bgp",
	summary: "BGP sessions with AWS",
	sub:     []*command{bgpRoutesCmd},
}

var bgpRoutesCmd = &command{
	name:    "routes",
	args:    "[received|advertised|installed] [TUNNEL] [--json] [--socket PATH]",
	summary: "show the routes learned from, sent to or installed for AWS (and the LAN neighbors)",
	help: `received (the default) lists the paths each tunnel's neighbor sent: prefix,
AS path, MED, whether it is BGP's best path, whether a kernel route goes
through this tunnel for it, and if not why not: default_route (no
bgp.import.accept_default), deny (bgp.import.deny), not_allowed (outside
bgp.import.allow), prefix_limit (above bgp.prefix_limit), tunnel_down (no
CHILD SA), not_best (another path was preferred) or pending (accepted, not
yet installed by the route sync).
advertised lists the paths sent to each neighbor, after the prepends and
MED of the tunnel's export policy.
installed lists the kernel routes cgw installed from BGP, with the path
behind each next hop.
LAN neighbors (bgp.lan_neighbors) follow as lan:NAME in received (what the
router sent and cgw accepted for AWS; never installed: from_lan) and
advertised (the AWS prefixes sent to it, next hop self, MED or local
preference by tunnel state).
TUNNEL limits the table to that tunnel or LAN neighbor. --json prints the
control API's v1 document instead (LAN rows have connection "lan").`,
	run: runBGPRoutes,
}

func runBGPRoutes(e *env, f *flags, args []string) error {
	asJSON := f.Bool("json", false, "print the table as JSON (control API v1 format)")
	sock := socketFlag(f)
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	table, tunnel := control.TableReceived, ""
	if len(pos) > 0 && slices.Contains(control.RouteTables, pos[0]) {
		table, pos = pos[0], pos[1:]
	}
	if len(pos) > 0 {
		tunnel, pos = strings.TrimPrefix(pos[0], "lan:"), pos[1:]
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	ctx, cancel := requestContext(requestTimeout)
	defer cancel()
	res, err := e.daemon(*sock).BGPRoutes(ctx, table, tunnel)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, res)
	}
	_, err = e.stdout.Write(renderBGPRoutes(res))
	return err
}

// renderBGPRoutes is one line per path, like `gobgp neighbor X adj-in`.
func renderBGPRoutes(r *control.BGPRoutes) []byte {
	var b bytes.Buffer
	if len(r.Routes) == 0 {
		fmt.Fprintf(&b, "no %s routes\n", r.Table)
		return b.Bytes()
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	switch r.Table {
	case control.TableAdvertised:
		fmt.Fprintln(tw, "TUNNEL\tPREFIX\tNEXT HOP\tAS PATH\tMED")
		for _, rt := range r.Routes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", routeSide(rt), rt.Prefix, dash(rt.NextHop), asPath(rt.ASPath), rt.MED)
		}
	default:
		fmt.Fprintln(tw, "TUNNEL\tPREFIX\tNEXT HOP\tAS PATH\tMED\tBEST\tINSTALLED")
		for _, rt := range r.Routes {
			inst := "yes"
			if !rt.Installed {
				inst = "no"
				if rt.Reason != "" {
					inst += " (" + rt.Reason + ")"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", routeSide(rt), rt.Prefix, dash(rt.NextHop), asPath(rt.ASPath), rt.MED, yesNo(rt.Best), inst)
		}
	}
	tw.Flush()
	return b.Bytes()
}

// routeSide names the session of a row: the tunnel, or lan:NAME.
func routeSide(rt control.BGPRoute) string {
	if rt.Connection == "lan" {
		return "lan:" + rt.Tunnel
	}
	return rt.Tunnel
}

func asPath(as []uint32) string {
	if len(as) == 0 {
		return "-"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(s, " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
