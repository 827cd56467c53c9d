package flaghelp

import (
	"flag"
	"strings"
	"testing"
)

func TestPrintDefaults(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Bool("q", false, "quiet")
	fs.String("config", "/etc/cgw/cgw.yaml", "configuration `FILE`")
	fs.Int("count", 0, "exit after `N` events")
	fs.Bool("json", false, "print JSON")
	var b strings.Builder
	PrintDefaults(&b, fs)
	want := "  --config FILE\n    \tconfiguration FILE (default \"/etc/cgw/cgw.yaml\")\n" +
		"  --count N\n    \texit after N events\n" +
		"  --json\n    \tprint JSON\n" +
		"  -q\tquiet\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
