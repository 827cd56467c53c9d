package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/cgwproject/cgw/control"
)

var diagnoseCmd = &command{
	name:    "diagnose",
	args:    "[--json] [--socket PATH] [TUNNEL]",
	summary: "walk AWS's troubleshooting checklist and explain what is wrong and how to fix it",
	help: `cgwd samples the tunnel's counters twice a few seconds apart and probes the
MTU through tunnels that are up, then checks, for each tunnel (or only
TUNNEL): the SAs, whether AWS answers on UDP 500/4500, NAT and the IKE
identity, the last IKE failure (proposals, PSK, traffic selectors), lifetimes
against AWS's, DPD and idle time, BGP, the routes installed, which direction
traffic flows, drops by reason, and the MTU. Every finding has the evidence
seen and, when something is wrong, the fix.

Exit status: 0 no error found (warnings allowed), 3 at least one finding of
error severity, 1 cgwd could not be asked, 2 usage error.`,
	run: runDiagnose,
}

func runDiagnose(e *env, f *flags, args []string) error {
	asJSON := f.Bool("json", false, "print the findings as JSON (control API v1 format)")
	sock := socketFlag(f)
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	tunnel := ""
	switch len(pos) {
	case 0:
	case 1:
		tunnel = pos[0]
	default:
		return usagef("one tunnel at a time, or none for all; got %d names", len(pos))
	}
	ctx, cancel := requestContext(diagnoseTimeout)
	defer cancel()
	d, err := e.daemon(*sock).Diagnose(ctx, tunnel)
	if err != nil {
		return err
	}
	if *asJSON {
		err = writeJSON(e.stdout, d)
	} else {
		_, err = e.stdout.Write(renderDiagnosis(d))
	}
	if err != nil {
		return err
	}
	for _, fd := range d.Findings {
		if fd.Severity == control.SeverityError {
			return &statusError{code: exitFindings}
		}
	}
	return nil
}

// severityMarks are the fixed-width markers in front of each finding.
var severityMarks = map[control.Severity]string{
	control.SeverityOK:    "[ OK ]",
	control.SeverityInfo:  "[INFO]",
	control.SeverityWarn:  "[WARN]",
	control.SeverityError: "[FAIL]",
}

// wrapWidth is where finding text wraps.
const wrapWidth = 100

// renderDiagnosis prints the findings grouped per tunnel, in the order the
// daemon sent them, with a count per severity in each tunnel's heading.
func renderDiagnosis(d *control.Diagnosis) []byte {
	var b bytes.Buffer
	if len(d.Findings) == 0 {
		b.WriteString("no findings: no tunnel matched\n")
		return b.Bytes()
	}
	var order []string
	groups := map[string][]control.Finding{}
	for _, f := range d.Findings {
		if _, ok := groups[f.Tunnel]; !ok {
			order = append(order, f.Tunnel)
		}
		groups[f.Tunnel] = append(groups[f.Tunnel], f)
	}
	for i, name := range order {
		if i > 0 {
			b.WriteString("\n")
		}
		fs := groups[name]
		if name == "" {
			name = "(no tunnel)"
		}
		fmt.Fprintf(&b, "%s: %s\n", name, severityCounts(fs))
		for _, f := range fs {
			mark, ok := severityMarks[f.Severity]
			if !ok {
				mark = "[" + strings.ToUpper(string(f.Severity)) + "]"
			}
			wrap(&b, mark+" "+f.Check+": ", "       ", f.Summary)
			for _, ev := range f.Evidence {
				wrap(&b, "       - ", "         ", ev)
			}
			if f.Fix != "" {
				wrap(&b, "       fix: ", "            ", f.Fix)
			}
		}
	}
	return b.Bytes()
}

// severityCounts summarises findings as "1 error, 2 warnings, 8 ok".
func severityCounts(fs []control.Finding) string {
	n := map[control.Severity]uint64{}
	for _, f := range fs {
		n[f.Severity]++
	}
	var parts []string
	if c := n[control.SeverityError]; c > 0 {
		parts = append(parts, plural(c, "error"))
	}
	if c := n[control.SeverityWarn]; c > 0 {
		parts = append(parts, plural(c, "warning"))
	}
	if c := n[control.SeverityInfo]; c > 0 {
		parts = append(parts, fmt.Sprintf("%d info", c))
	}
	if c := n[control.SeverityOK]; c > 0 {
		parts = append(parts, fmt.Sprintf("%d ok", c))
	}
	return strings.Join(parts, ", ")
}

// wrap writes text after first, word-wrapped at wrapWidth, continuation
// lines starting with indent. Words longer than a line are not broken.
func wrap(b *bytes.Buffer, first, indent, text string) {
	b.WriteString(first)
	col := len(first)
	start := true
	for _, w := range strings.Fields(text) {
		if !start && col+1+len(w) > wrapWidth {
			b.WriteString("\n")
			b.WriteString(indent)
			col = len(indent)
			start = true
		}
		if !start {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
		start = false
	}
	b.WriteString("\n")
}
