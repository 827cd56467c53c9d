//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A failed lifecycle test must be diagnosable from the CI log alone: the
// 4 KiB tails DumpLogs prints end at teardown, long after an outage in the
// middle of the run. dumpRekeyWindows prints, per tunnel, cgwd's IKE lines
// and the matching charon's lines (without the per-packet NET lines) in a
// window around every sign of trouble in cgwd's log, so both ends' view of
// the rekeys that led to it is in the test output.

// lcTroubleMarks are cgwd log texts that anchor a window.
var lcTroubleMarks = []string{
	"reached its hard lifetime",
	"rekey failed",
	`msg="peer is dead"`,
	`msg="IKE phase 2 Down"`,
	"retransmitting request",
	"TEMPORARY_FAILURE",
	"CHILD_SA_NOT_FOUND",
	"did not delete",
}

const (
	lcDiagBefore   = 25 * time.Second // the rekey that led to a hard expiry is a margin (15 s) earlier
	lcDiagAfter    = 5 * time.Second
	lcDiagMaxLines = 250 // per log and tunnel
)

// lcDiagTrim removes what every printed cgwd line repeats: the date and
// the tunnel's attributes (the window's header names the tunnel).
var lcDiagTrim = regexp.MustCompile(`^time=\d{4}-\d\d-\d\dT| component=ike| peer=\S+ remote=\S+`)

// lcWindow is a span of wall-clock time to print.
type lcWindow struct{ from, to time.Time }

// dumpRekeyWindows is registered by startLifecycleOpts; it prints only when
// the test failed.
func (l *lifecycle) dumpRekeyWindows() {
	if !l.t.Failed() {
		return
	}
	for i := 1; i <= 2; i++ {
		peer := lcPeerAttr(l.tunnel(i))
		all := l.cgwdLog(peer)
		var marks []time.Time
		for _, ll := range all {
			for _, m := range lcTroubleMarks {
				if strings.Contains(ll.Text, m) && !strings.Contains(ll.Text, "the tunnel was removed") {
					marks = append(marks, ll.At)
					break
				}
			}
		}
		if len(marks) == 0 {
			continue
		}
		wins := lcMergeWindows(marks)
		charon := l.charonLines(i, all)
		for _, w := range wins {
			l.t.Logf("--- tunnel %d, %s to %s: cgwd (IKE) and charon-aws%d (without NET lines)",
				i, w.from.UTC().Format("15:04:05.000"), w.to.UTC().Format("15:04:05.000"), i)
			l.t.Logf("cgwd:\n%s", lcLinesIn(all, w, func(s string) bool { return !strings.Contains(s, "component=bgp") }))
			l.t.Logf("charon-aws%d:\n%s", i, lcLinesIn(charon, w, func(s string) bool { return !strings.Contains(s, "[NET]") }))
		}
	}
}

// lcMergeWindows turns anchor times into merged [t-before, t+after] spans.
func lcMergeWindows(marks []time.Time) []lcWindow {
	slices.SortFunc(marks, func(a, b time.Time) int { return a.Compare(b) })
	var out []lcWindow
	for _, m := range marks {
		w := lcWindow{m.Add(-lcDiagBefore), m.Add(lcDiagAfter)}
		if n := len(out); n > 0 && !w.from.After(out[n-1].to) {
			out[n-1].to = w.to
			continue
		}
		out = append(out, w)
	}
	return out
}

// lcLinesIn joins the lines of ls inside w that keep accepts, at most
// lcDiagMaxLines of them.
func lcLinesIn(ls []lcLogLine, w lcWindow, keep func(string) bool) string {
	var b strings.Builder
	n := 0
	for _, ll := range ls {
		if ll.At.Before(w.from) || ll.At.After(w.to) || !keep(ll.Text) {
			continue
		}
		if n++; n > lcDiagMaxLines {
			b.WriteString("  ... (more lines in the kept log)\n")
			break
		}
		fmt.Fprintf(&b, "  %s\n", lcDiagTrim.ReplaceAllString(ll.Text, ""))
	}
	if n == 0 {
		return "  (none)\n"
	}
	return b.String()
}

// charonLines reads charon-aws<i>.log. Its lines carry only the time of
// day (HH:MM:SS.mmm, local time); the date is taken from cgwd's first
// line.
func (l *lifecycle) charonLines(i int, cgwd []lcLogLine) []lcLogLine {
	b, err := os.ReadFile(filepath.Join(l.s.Dir(), "logs", fmt.Sprintf("charon-aws%d.log", i)))
	if err != nil || len(cgwd) == 0 {
		return nil
	}
	day := cgwd[0].At.Local()
	var out []lcLogLine
	for _, line := range strings.Split(string(b), "\n") {
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		tod, err := time.ParseInLocation("15:04:05.000", line[:sp], time.Local)
		if err != nil {
			if tod, err = time.ParseInLocation("15:04:05", line[:sp], time.Local); err != nil {
				continue
			}
		}
		at := time.Date(day.Year(), day.Month(), day.Day(), tod.Hour(), tod.Minute(), tod.Second(), tod.Nanosecond(), time.Local)
		out = append(out, lcLogLine{At: at, Text: line})
	}
	return out
}

// charonRekeys counts the rekeys AWS endpoint i's charon completed, from
// its log: a CHILD SA whose outbound half it installed after the tunnel's
// first one (as rekey initiator, or as responder when the initiator
// deleted the old SA), and an IKE SA it moved to ("rekeyed between"). This
// is exact where the SPI changes sampled from both ends' SA lists miss
// rekeys less than a sampling interval apart.
func (l *lifecycle) charonRekeys(i int) (child, ikeSA int) {
	b, err := os.ReadFile(filepath.Join(l.s.Dir(), "logs", fmt.Sprintf("charon-aws%d.log", i)))
	if err != nil {
		return -1, -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, "> outbound CHILD_SA "):
			child++
		case strings.Contains(line, "> IKE_SA ") && strings.Contains(line, " rekeyed between "):
			ikeSA++
		}
	}
	return child, ikeSA
}
