package main

import (
	"bytes"
	"fmt"
	"github.com/cgwproject/cgw/internal/human"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/control/client"
)

var statusCmd = &command{
	name:    "status",
	args:    "[--json] [--socket PATH]",
	summary: "show every connection and tunnel: SAs, traffic, DPD, BGP and routes",
	help: `The first table is the overview (one line per tunnel); the details follow
per connection, in the style of swanctl --list-sas: the IKE SA and CHILD SAs
with SPIs (* marks our side), algorithms and rekey/expiry times, endpoints
and NAT, traffic and drops by reason, DPD, the BGP neighbor and the routes
installed. --json prints the control API's v1 status document instead.`,
	run: runStatus,
}

func runStatus(e *env, f *flags, args []string) error {
	return query(e, f, args, "status", (*client.Client).Status, func(st *control.Status) error {
		_, err := e.stdout.Write(renderStatus(st, time.Now()))
		return err
	})
}

// renderStatus formats st for people, with times relative to now.
func renderStatus(st *control.Status, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "cgwd %s", st.Version)
	if !st.Started.IsZero() {
		fmt.Fprintf(&b, ", up %s", human.Duration(now.Sub(st.Started)))
	}
	if st.ConfigFile != "" {
		fmt.Fprintf(&b, ", config %s", st.ConfigFile)
	}
	b.WriteString("\n")
	if drops := nonZeroDrops(st.IKEDrops); drops != "" {
		// Unauthenticated IKE traffic handled before any tunnel: a flood
		// shows up here (cookie_sent, invalid_ke), not as a tunnel error.
		fmt.Fprintf(&b, "ike drops: %s\n", drops)
	}
	if len(st.Connections) == 0 {
		b.WriteString("no connections configured\n")
		return b.Bytes()
	}
	b.WriteString("\n")
	renderOverview(&b, st, now)
	for _, c := range st.Connections {
		b.WriteString("\n")
		renderConnection(&b, c, now)
	}
	renderLAN(&b, st.LAN)
	return b.Bytes()
}

// renderOverview is one line per tunnel, like `gobgp neighbor`.
func renderOverview(w io.Writer, st *control.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TUNNEL\tCONNECTION\tSTATE\tSINCE\tIKE\tCHILD\tBGP\tIN\tOUT\tREMOTE")
	for _, c := range st.Connections {
		for _, t := range c.Tunnels {
			since, bgp := "-", "-"
			if !t.Since.IsZero() {
				since = human.Duration(now.Sub(t.Since))
			}
			if t.BGP != nil {
				bgp = t.BGP.State
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, c.Name, strings.ToUpper(orDash(t.State)), since,
				orDash(t.IKEState), orDash(t.ChildState), bgp, human.Bytes(t.Traffic.BytesIn), human.Bytes(t.Traffic.BytesOut), orDash(t.Remote))
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// detail writes one labelled line of a tunnel's details; continuation lines
// (label "") align under the first.
func detail(w io.Writer, label, format string, args ...any) {
	fmt.Fprintf(w, "    %-9s%s\n", label, fmt.Sprintf(format, args...))
}

func renderConnection(w io.Writer, c *control.Connection, now time.Time) {
	head := c.Name + ": " + c.Routing
	if c.Mode != "" {
		head += ", " + c.Mode
	}
	fmt.Fprintln(w, head)
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return human.Duration(now.Sub(t)) + " ago"
	}
	in := func(t time.Time) string {
		if t.IsZero() {
			return "not scheduled"
		}
		if t.Before(now) {
			return "overdue by " + human.Duration(now.Sub(t))
		}
		return "in " + human.Duration(t.Sub(now))
	}
	for _, t := range c.Tunnels {
		line := fmt.Sprintf("  %s: %s", t.Name, strings.ToUpper(orDash(t.State)))
		if !t.Since.IsZero() {
			line += " for " + human.Duration(now.Sub(t.Since))
		}
		if t.Device != "" {
			line += ", device " + t.Device
		}
		if t.MTU > 0 {
			line += fmt.Sprintf(" mtu %d", t.MTU)
		}
		if t.InsideLocal != "" {
			line += fmt.Sprintf(", inside %s -> %s", t.InsideLocal, t.InsidePeer)
		}
		fmt.Fprintln(w, line)

		nat := "no NAT"
		switch {
		case t.NAT:
			nat = "NAT detected, ESP in UDP 4500"
		case t.Encap:
			nat = "no NAT, ESP in UDP 4500 (forced)"
		case t.IKE != nil:
			nat = "no NAT, raw ESP (IP protocol 50)"
		}
		local := t.Local
		if local == "" {
			local = "-"
		}
		detail(w, "peer", "%s <-> %s, %s", local, orDash(t.Remote), nat)
		renderAuth(w, t.Auth, now)

		if sa := t.IKE; sa != nil {
			mi, mr := "*", ""
			if !sa.Initiator {
				mi, mr = "", "*"
			}
			role := "initiator"
			if !sa.Initiator {
				role = "responder"
			}
			detail(w, "IKE SA", "%s %s, %s, %s", strings.ToUpper(orDash(t.IKEState)), ago(sa.Established), role, orDash(sa.Algorithms))
			detail(w, "", "spi %s_i%s %s_r%s, rekey %s, expires %s", sa.SPIi, mi, sa.SPIr, mr, in(sa.RekeyAt), in(sa.ExpiresAt))
		} else {
			detail(w, "IKE SA", "%s", strings.ToUpper(orDash(t.IKEState)))
		}
		if f := t.IKEFragments; f != nil {
			neg := "not negotiated"
			if f.Negotiated {
				neg = "negotiated"
			}
			detail(w, "IKE frag", "%s; %d sent, %d received, %s reassembled", neg, f.Sent, f.Received, plural(f.Reassembled, "message"))
		}
		if len(t.Children) == 0 {
			detail(w, "CHILD SA", "%s", strings.ToUpper(orDash(t.ChildState)))
		}
		// With several SA pairs (during a rekey) the tunnel's CHILD state
		// applies to none of them alone.
		childState := strings.ToUpper(orDash(t.ChildState))
		if len(t.Children) > 1 {
			detail(w, "CHILD SA", "%s, %d SA pairs installed", childState, len(t.Children))
			childState = "INSTALLED"
		}
		for _, ch := range t.Children {
			alg := orDash(ch.Algorithms)
			if ch.Encap != "" {
				alg += ", encap " + ch.Encap
			}
			detail(w, "CHILD SA", "%s %s, %s, rekey %s, expires %s", childState, ago(ch.Established), alg, in(ch.RekeyAt), in(ch.ExpiresAt))
			detail(w, "", "in  %s, %s, %s", ch.InSPI, human.Bytes(ch.BytesIn), plural(ch.PacketsIn, "packet"))
			detail(w, "", "out %s, %s, %s", ch.OutSPI, human.Bytes(ch.BytesOut), plural(ch.PacketsOut, "packet"))
			if len(ch.TSLocal)+len(ch.TSRemote) > 0 {
				detail(w, "", "%s === %s", strings.Join(ch.TSLocal, ","), strings.Join(ch.TSRemote, ","))
			}
		}

		tr := t.Traffic
		detail(w, "traffic", "in %s, %s; out %s, %s; last inbound %s", human.Bytes(tr.BytesIn), plural(tr.PacketsIn, "packet"),
			human.Bytes(tr.BytesOut), plural(tr.PacketsOut, "packet"), ago(tr.LastInbound))
		if drops := nonZeroDrops(tr.Drops); drops != "" {
			detail(w, "drops", "%s", drops)
		}
		if over := oversize(tr); over != "" {
			detail(w, "oversize", "%s", over)
		}
		misses := fmt.Sprintf("%d misses", t.DPD.Misses)
		if t.DPD.Misses == 1 {
			misses = "1 miss"
		}
		dpd := misses + ", last seen " + ago(t.DPD.LastSeen)
		if t.DPD.Interval() > 0 {
			dpd = "every " + human.Duration(t.DPD.Interval()) + ", " + dpd
		} else {
			dpd = "off, " + dpd
		}
		detail(w, "DPD", "%s", dpd)
		if bg := t.BGP; bg != nil {
			s := fmt.Sprintf("%s AS %d %s", bg.Neighbor, bg.PeerASN, bg.State)
			if bg.State == "Established" && !bg.Since.IsZero() {
				s += " for " + human.Duration(now.Sub(bg.Since))
			}
			s += fmt.Sprintf(", received %d (accepted %d), advertised %d", bg.Received, bg.Accepted, bg.Advertised)
			detail(w, "BGP", "%s", s)
			if bg.LastError != "" {
				detail(w, "", "last error: %s", bg.LastError)
			}
		}
		if t.LastError != "" {
			s := t.LastError
			if !t.LastErrorAt.IsZero() {
				s += " (" + ago(t.LastErrorAt) + ")"
			}
			detail(w, "error", "%s", s)
		}
	}
	if len(c.Routes) == 0 {
		fmt.Fprintln(w, "  routes: none installed")
	} else {
		fmt.Fprintln(w, "  routes:")
		for _, r := range c.Routes {
			fmt.Fprintf(w, "    %s via %s (%s, metric %d)\n", r.Prefix, strings.Join(r.Via, ","), r.Source, r.Metric)
		}
	}
	if len(c.Filtered) > 0 {
		fmt.Fprintf(w, "  filtered: %d not installed (bgp.import, bgp.prefix_limit)\n", len(c.Filtered))
		for _, f := range c.Filtered {
			fmt.Fprintf(w, "    %s (%s)\n", f.Prefix, f.Reason)
		}
	}
}

// oversize describes the non-zero counters of inner packets larger than
// the tunnel MTU.
func oversize(tr control.Traffic) string {
	var parts []string
	if tr.Fragmented > 0 {
		parts = append(parts, fmt.Sprintf("fragmented %d", tr.Fragmented))
	}
	if tr.TooBigSent > 0 {
		parts = append(parts, fmt.Sprintf("too big sent %d", tr.TooBigSent))
	}
	return strings.Join(parts, ", ")
}

// nonZeroDrops lists the drop counters that are not zero, by reason name.
func nonZeroDrops(m map[string]uint64) string {
	var keys []string
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
