// Package flaghelp prints a flag set's flags the way cgwd's and cgwctl's
// help spell them: --name for long flags, -q for one-letter ones, in the
// layout of flag.PrintDefaults (which internal/cmd/docgen parses).
package flaghelp

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Dashes spells a flag name as the help does: -q, --json.
func Dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// PrintDefaults writes one entry per flag of fs, sorted by name.
func PrintDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  " + Dashes(f.Name)
		if arg != "" {
			line += " " + arg
		}
		if len(line) <= 4 {
			line += "\t"
		} else {
			line += "\n    \t"
		}
		line += strings.ReplaceAll(usage, "\n", "\n    \t")
		switch {
		case f.DefValue == "" || f.DefValue == "false" || f.DefValue == "0":
		case isString(f):
			line += fmt.Sprintf(" (default %q)", f.DefValue)
		default:
			line += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintln(w, line)
	})
}

func isString(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(string)
	return ok
}
