// Command docgen writes cgw's man pages and shell completions from the one
// source of truth the binaries already carry: `cgwd -h`, `cgwctl -h`, every
// verb's `cgwctl VERB -h`, and the commented `cgwctl config default`.
//
//	go run ./internal/cmd/docgen -bin ./bin -out ./build/doc
//
// writes cgwd.8, cgwctl.8, cgw.yaml.5, cgwctl.bash, cgwd.bash, _cgwctl and
// _cgwd. It runs the binaries rather than importing their packages, so the
// pages describe exactly what was built, and it fails when the help text
// stops parsing instead of writing an empty page.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding the cgwd and cgwctl binaries")
	out := flag.String("out", "build/doc", "output directory")
	date := flag.String("date", "", "date for the page footers (default: none)")
	version := flag.String("version", "", "version for the page footers (default: cgwctl --version)")
	flag.Parse()
	if err := run(*bin, *out, *date, *version); err != nil {
		fmt.Fprintf(os.Stderr, "docgen: %v\n", err)
		os.Exit(1)
	}
}

func run(bin, out, date, version string) error {
	g := &gen{bin: bin, date: date, version: version}
	if err := g.load(); err != nil {
		return err
	}
	files := map[string]string{
		"cgwd.8":      g.cgwdPage(),
		"cgwctl.8":    g.cgwctlPage(),
		"cgw.yaml.5":  g.yamlPage(),
		"cgwctl.bash": g.bashCgwctl(),
		"cgwd.bash":   g.bashCgwd(),
		"_cgwctl":     g.zshCgwctl(),
		"_cgwd":       g.zshCgwd(),
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(out, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// flagDoc is one flag from a Go flag set's PrintDefaults.
type flagDoc struct {
	name, arg, usage string
}

// verb is one runnable cgwctl command path ("tunnel up") with its help.
type verb struct {
	path    string
	usage   string // the synopsis after "cgwctl PATH"
	summary string
	help    string
	flags   []flagDoc
}

type gen struct {
	bin, date, version string
	cgwdFlags          []flagDoc
	globalHelp         string // cgwctl -h
	verbs              []verb
	config             string // cgwctl config default
}

func (g *gen) exec(name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(g.bin, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	// `cgwd -h` exits 0 or 2 depending on the flag package's handling;
	// both print the help.
	if err != nil && !(errors.As(err, &ee) && len(args) > 0 && args[len(args)-1] == "-h") {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String() + stderr.String(), nil
}

func (g *gen) load() error {
	if g.version == "" {
		v, err := g.exec("cgwctl", "--version")
		if err != nil {
			return err
		}
		g.version = strings.Fields(v)[1]
	}
	h, err := g.exec("cgwd", "-h")
	if err != nil {
		return err
	}
	if g.cgwdFlags = parseFlags(h); len(g.cgwdFlags) == 0 {
		return fmt.Errorf("cgwd -h lists no flags:\n%s", h)
	}
	if g.globalHelp, err = g.exec("cgwctl", "-h"); err != nil {
		return err
	}
	paths := verbPaths(g.globalHelp)
	if len(paths) == 0 {
		return fmt.Errorf("cgwctl -h lists no commands:\n%s", g.globalHelp)
	}
	for _, p := range paths {
		h, err := g.exec("cgwctl", append(strings.Fields(p), "-h")...)
		if err != nil {
			return err
		}
		v, err := parseVerb(p, h)
		if err != nil {
			return err
		}
		g.verbs = append(g.verbs, v)
	}
	if g.config, err = g.exec("cgwctl", "config", "default"); err != nil {
		return err
	}
	return nil
}

var wordRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// verbPaths reads the command list of `cgwctl -h`: entries are indented
// two spaces, with the synopsis in a 30-column field (a longer synopsis
// takes the whole line and the summary moves to the next). The path is the
// synopsis' leading lower-case words.
func verbPaths(help string) []string {
	lines := strings.Split(help, "\n")
	var paths []string
	in := false
	for i, l := range lines {
		switch {
		case strings.HasSuffix(l, "commands:"):
			in = true
			continue
		case !in:
			continue
		case strings.TrimSpace(l) == "":
			in = false
			continue
		case !strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "   "):
			continue // a wrapped summary
		}
		left := l[2:]
		if !(i+1 < len(lines) && strings.HasPrefix(lines[i+1], strings.Repeat(" ", 32))) && len(left) > 30 {
			left = left[:30]
		}
		var words []string
		for _, w := range strings.Fields(left) {
			if !wordRE.MatchString(w) {
				break
			}
			words = append(words, w)
		}
		if len(words) > 0 {
			paths = append(paths, strings.Join(words, " "))
		}
	}
	return paths
}

// parseVerb reads `cgwctl PATH -h`: "usage: cgwctl PATH SYNOPSIS", a blank
// line, the summary, optional paragraphs, and "flags:" with PrintDefaults.
func parseVerb(path, h string) (verb, error) {
	v := verb{path: path}
	first, rest, _ := strings.Cut(h, "\n")
	prefix := "usage: cgwctl " + path
	if !strings.HasPrefix(first, prefix) {
		return v, fmt.Errorf("cgwctl %s -h: first line %q, want %q...", path, first, prefix)
	}
	v.usage = strings.TrimSpace(strings.TrimPrefix(first, prefix))
	body, flags, _ := strings.Cut(rest, "\nflags:\n")
	paras := strings.Split(strings.Trim(body, "\n"), "\n\n")
	v.summary = strings.TrimSpace(paras[0])
	v.help = strings.TrimSpace(strings.Join(paras[1:], "\n\n"))
	v.flags = parseFlags(flags)
	if v.summary == "" {
		return v, fmt.Errorf("cgwctl %s -h: no summary", path)
	}
	return v, nil
}

var flagLineRE = regexp.MustCompile(`^  --?([a-zA-Z0-9][a-zA-Z0-9-]*)(?: (\S+))?(?:\s+(.*))?$`)

// parseFlags reads Go's flag.PrintDefaults output.
func parseFlags(s string) []flagDoc {
	var out []flagDoc
	for _, l := range strings.Split(s, "\n") {
		if m := flagLineRE.FindStringSubmatch(l); m != nil {
			out = append(out, flagDoc{name: m[1], arg: m[2], usage: m[3]})
			continue
		}
		if t := strings.TrimSpace(l); t != "" && len(out) > 0 && strings.HasPrefix(l, "    ") {
			f := &out[len(out)-1]
			f.usage = strings.TrimSpace(f.usage + " " + t)
		}
	}
	return out
}

// dashes spells a flag as the help does: -q, --json.
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// roff escapes text for a man page line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffBlock escapes a block of preformatted lines.
func roffBlock(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(roff(l) + "\n")
	}
	return b.String()
}

// roffText escapes paragraphs separated by blank lines.
func roffText(s string) string {
	var b strings.Builder
	for i, p := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		b.WriteString(roffBlock(p))
	}
	return b.String()
}

func (g *gen) header(name, section, title string) string {
	return fmt.Sprintf(".\\\" Generated by internal/cmd/docgen from the binaries' help; do not edit.\n.TH %s %s %q %q %q\n.SH NAME\n%s \\- %s\n",
		strings.ToUpper(name), section, g.date, "cgw "+g.version, "cgw", roff(name), roff(title))
}

func flagsSection(fs []flagDoc) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(".TP\n\\fB" + roff(dashes(f.name)) + "\\fR")
		if f.arg != "" {
			b.WriteString(" \\fI" + roff(f.arg) + "\\fR")
		}
		b.WriteString("\n" + roff(f.usage) + "\n")
	}
	return b.String()
}

func (g *gen) cgwdPage() string {
	var b strings.Builder
	b.WriteString(g.header("cgwd", "8", "userspace IKEv2/IPsec customer gateway for AWS Site-to-Site VPN"))
	b.WriteString(".SH SYNOPSIS\n\\fBcgwd\\fR")
	for _, f := range g.cgwdFlags {
		b.WriteString(" [\\fB" + roff(dashes(f.name)) + "\\fR")
		if f.arg != "" {
			b.WriteString(" \\fI" + roff(strings.ToUpper(f.arg)) + "\\fR")
		}
		b.WriteString("]")
	}
	b.WriteString("\n")
	b.WriteString(`.SH DESCRIPTION
\fBcgwd\fR reads its configuration (see \fBcgw.yaml\fR(5)), brings up the
configured tunnels to AWS (IKEv2 with a pre-shared key, ESP in UDP 4500 on
one TUN device per tunnel), runs BGP over them and installs the learned
routes. \fBcgwctl\fR(8) talks to it over its control socket.
.PP
SIGINT and SIGTERM stop it cleanly: SAs are deleted and routes removed.
SIGHUP re-reads the configuration and applies only the difference.
Under systemd (Type=notify) it reports READY=1, STATUS= with the number of
tunnels up, RELOADING=1 during a reload and, when WatchdogSec= is set,
WATCHDOG=1 while it answers status requests.
.SH OPTIONS
`)
	b.WriteString(flagsSection(g.cgwdFlags))
	b.WriteString(`.SH CAPABILITIES
cgwd needs no root: CAP_NET_ADMIN (TUN devices, addresses, routes, socket
buffers) and CAP_NET_BIND_SERVICE (UDP 500, TCP 179) are enough for the
tunnels, BGP and routes. CAP_NET_RAW is needed only for ICMP: the MTU probe
of \fBcgwctl diagnose\fR and the tunnel keepalive option.
.SH FILES
.TP
.I /etc/cgw/cgw.yaml
the configuration (directory mode 0700, owned by the service user)
.TP
.I /run/cgw/cgw.sock
the control socket (mode 0600)
.SH EXIT STATUS
0 on a clean stop or a valid \fB\-\-check\fR, 1 on a configuration or
runtime error, 2 on a usage error.
.SH SEE ALSO
\fBcgwctl\fR(8), \fBcgw.yaml\fR(5), \fBsystemd.service\fR(5)
`)
	return b.String()
}

func (g *gen) cgwctlPage() string {
	var b strings.Builder
	b.WriteString(g.header("cgwctl", "8", "control and configure the cgw customer gateway"))
	b.WriteString(".SH SYNOPSIS\n\\fBcgwctl\\fR [\\fB\\-\\-socket\\fR \\fIPATH\\fR] \\fICOMMAND\\fR [\\fIFLAGS\\fR] [\\fIARGS\\fR]\n")
	b.WriteString(`.SH DESCRIPTION
\fBcgwctl\fR validates and generates configuration files and, for the
commands that need a running \fBcgwd\fR(8), talks to it over its control
socket. Flags may follow the arguments; \fB\-\-\fR ends the flags.
.SH COMMANDS
`)
	for _, v := range g.verbs {
		b.WriteString(".SS \"" + roff(strings.TrimSpace("cgwctl "+v.path+" "+v.usage)) + "\"\n")
		b.WriteString(roffText(v.summary) + "\n")
		if v.help != "" {
			b.WriteString(".PP\n.nf\n" + roffBlock(v.help) + ".fi\n")
		}
		if len(v.flags) > 0 {
			b.WriteString(".RS\n" + flagsSection(v.flags) + ".RE\n")
		}
	}
	b.WriteString(".SH GLOBAL OPTIONS\n.nf\n")
	if _, after, ok := strings.Cut(g.globalHelp, "global flags:\n"); ok {
		opts, _, _ := strings.Cut(after, "\n\n")
		b.WriteString(roffBlock(opts))
	}
	b.WriteString(".fi\n.SH ENVIRONMENT\n.TP\n.B CGW_SOCKET\nthe control socket when \\fB\\-\\-socket\\fR is not given\n")
	b.WriteString(".SH EXIT STATUS\n")
	for _, l := range strings.Split(g.globalHelp, "\n") {
		if strings.HasPrefix(l, "exit status:") {
			b.WriteString(roff(strings.TrimSpace(strings.TrimPrefix(l, "exit status:"))) + "\n")
		}
	}
	b.WriteString(".SH SEE ALSO\n\\fBcgwd\\fR(8), \\fBcgw.yaml\\fR(5)\n")
	return b.String()
}

// configKey is one key of the commented default configuration.
type configKey struct {
	path, value, doc string
	optional         bool // commented out in the default
}

var keyRE = regexp.MustCompile(`^(\s*)(?:- )?(#\s*)?([a-z_0-9]+):(?:\s+([^#]*?))?\s*(?:#\s?(.*))?$`)

// parseConfig turns the commented default configuration into its header
// prose and a list of keys with paths ("connections[].tunnels[].psk"),
// example values and the comments beside them (continuation comments
// aligned under a key's comment belong to it).
func parseConfig(s string) (header string, keys []configKey) {
	type level struct {
		indent int
		name   string
	}
	var stack []level
	seen := map[string]bool{}
	var last *configKey
	inHeader := true
	commentCol := -1
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if inHeader {
			if strings.HasPrefix(t, "#") {
				header += strings.TrimPrefix(strings.TrimPrefix(t, "#"), " ") + "\n"
				continue
			}
			inHeader = false
		}
		if t == "" {
			last = nil
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		if strings.HasPrefix(t, "#") && last != nil && indent == commentCol {
			last.doc = strings.TrimSpace(last.doc + " " + strings.TrimSpace(strings.TrimPrefix(t, "#")))
			continue
		}
		m := keyRE.FindStringSubmatch(l)
		if m == nil {
			last = nil
			continue
		}
		ind := len(m[1])
		if strings.HasPrefix(strings.TrimSpace(l), "- ") {
			ind += 2
		}
		if m[2] != "" {
			// "# key:" sits where the key would; "#   key:" is nested.
			ind += len(m[2]) - 2
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= ind {
			stack = stack[:len(stack)-1]
		}
		if strings.HasPrefix(strings.TrimSpace(l), "- ") && len(stack) > 0 && !strings.HasSuffix(stack[len(stack)-1].name, "[]") {
			stack[len(stack)-1].name += "[]"
		}
		var parts []string
		for _, e := range stack {
			parts = append(parts, e.name)
		}
		path := strings.Join(append(parts, m[3]), ".")
		stack = append(stack, level{indent: ind, name: m[3]})
		if i := strings.Index(l, "#"); i >= 0 && m[5] != "" {
			commentCol = strings.LastIndex(l, "# "+m[5])
		}
		if seen[path] {
			last = nil
			continue
		}
		seen[path] = true
		keys = append(keys, configKey{path: path, value: strings.TrimSpace(m[4]), doc: m[5], optional: m[2] != ""})
		last = &keys[len(keys)-1]
	}
	return header, keys
}

func (g *gen) yamlPage() string {
	var b strings.Builder
	b.WriteString(g.header("cgw.yaml", "5", "configuration file of the cgw customer gateway"))
	b.WriteString(".SH SYNOPSIS\n.I /etc/cgw/cgw.yaml\n.SH DESCRIPTION\n")
	header, keys := parseConfig(g.config)
	b.WriteString(".nf\n" + roffBlock(strings.TrimSpace(header)) + ".fi\n")
	b.WriteString(".SH KEYS\nEach key with the value \\fBcgwctl config default\\fR shows (the default, or an example for required keys).\n")
	for _, k := range keys {
		b.WriteString(".TP\n\\fB" + roff(k.path) + "\\fR")
		if k.value != "" {
			b.WriteString(": " + roff(k.value))
		}
		b.WriteString("\n")
		doc := k.doc
		if k.optional {
			doc = strings.TrimSpace("Optional, not set by default. " + doc)
		}
		if doc != "" {
			b.WriteString(roff(doc) + "\n")
		}
	}
	b.WriteString(".SH EXAMPLE\nThe output of \\fBcgwctl config default\\fR:\n.PP\n.nf\n" + roffBlock(g.config) + ".fi\n")
	b.WriteString(".SH SEE ALSO\n\\fBcgwd\\fR(8), \\fBcgwctl\\fR(8)\n")
	return b.String()
}

// tree maps a command prefix ("" for the top, "tunnel") to the words that
// may follow it, and a verb path to its flags.
func (g *gen) tree() (next map[string][]string, flags map[string][]string) {
	next, flags = map[string][]string{}, map[string][]string{}
	add := func(k, w string) {
		for _, x := range next[k] {
			if x == w {
				return
			}
		}
		next[k] = append(next[k], w)
	}
	for _, v := range g.verbs {
		words := strings.Fields(v.path)
		for i, w := range words {
			add(strings.Join(words[:i], " "), w)
		}
		for _, f := range v.flags {
			flags[v.path] = append(flags[v.path], dashes(f.name))
		}
		flags[v.path] = append(flags[v.path], "-h")
	}
	add("", "help")
	return next, flags
}

func sortedKeys(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (g *gen) bashCgwctl() string {
	next, flags := g.tree()
	var b strings.Builder
	b.WriteString("# bash completion for cgwctl; generated by internal/cmd/docgen, do not edit.\n")
	b.WriteString("_cgwctl() {\n\tlocal cur=${COMP_WORDS[COMP_CWORD]} path=\"\" w i\n")
	b.WriteString("\tfor ((i = 1; i < COMP_CWORD; i++)); do\n\t\tw=${COMP_WORDS[i]}\n")
	b.WriteString("\t\tcase $w in --socket) ((i++)); continue ;; -*) continue ;; esac\n")
	b.WriteString("\t\tpath=${path:+$path }$w\n\tdone\n")
	b.WriteString("\tcase ${COMP_WORDS[COMP_CWORD-1]} in\n\t--socket) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n\t--xml|--config) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n\tesac\n")
	b.WriteString("\tlocal words=\"\"\n\tcase $path in\n")
	for _, k := range sortedKeys(next) {
		b.WriteString(fmt.Sprintf("\t%q) words=%q ;;\n", k, strings.Join(next[k], " ")))
	}
	for _, k := range sortedKeys(flags) {
		if _, isPrefix := next[k]; isPrefix {
			continue
		}
		b.WriteString(fmt.Sprintf("\t%q) words=%q ;;\n", k, strings.Join(flags[k], " ")))
	}
	b.WriteString("\tesac\n\tif [[ -z $path ]]; then words=\"$words --socket --version -h\"; fi\n")
	b.WriteString("\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n")
	b.WriteString("\tif [[ ${#COMPREPLY[@]} -eq 0 && $cur != -* ]]; then COMPREPLY=($(compgen -f -- \"$cur\")); fi\n}\n")
	b.WriteString("complete -F _cgwctl cgwctl\n")
	return b.String()
}

func (g *gen) bashCgwd() string {
	var fl []string
	for _, f := range g.cgwdFlags {
		fl = append(fl, "--"+f.name)
	}
	return "# bash completion for cgwd; generated by internal/cmd/docgen, do not edit.\n" +
		"_cgwd() {\n\tlocal cur=${COMP_WORDS[COMP_CWORD]}\n" +
		"\tif [[ ${COMP_WORDS[COMP_CWORD-1]} == --config ]]; then COMPREPLY=($(compgen -f -- \"$cur\")); return; fi\n" +
		"\tCOMPREPLY=($(compgen -W \"" + strings.Join(fl, " ") + "\" -- \"$cur\"))\n}\ncomplete -F _cgwd cgwd\n"
}

func zshQuote(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "'", "'\\''"), ":", "\\:")
}

func (g *gen) zshCgwctl() string {
	next, flags := g.tree()
	summary := map[string]string{}
	for _, v := range g.verbs {
		summary[v.path] = v.summary
	}
	var b strings.Builder
	b.WriteString("#compdef cgwctl\n# zsh completion for cgwctl; generated by internal/cmd/docgen, do not edit.\n")
	b.WriteString("local -a path_words\nlocal i w\nfor ((i = 2; i < CURRENT; i++)); do\n\tw=${words[i]}\n")
	b.WriteString("\tcase $w in --socket) ((i++)); continue ;; -*) continue ;; esac\n\tpath_words+=($w)\ndone\n")
	b.WriteString("case ${words[CURRENT-1]} in --socket|--xml|--config) _files; return ;; esac\n")
	b.WriteString("local -a cands\ncase \"${(j: :)path_words}\" in\n")
	for _, k := range sortedKeys(next) {
		var items []string
		for _, w := range next[k] {
			p := strings.TrimSpace(k + " " + w)
			d := summary[p]
			if d == "" {
				d = p + " commands"
			}
			items = append(items, "'"+zshQuote(w)+":"+zshQuote(d)+"'")
		}
		b.WriteString(fmt.Sprintf("\t%q) cands=(%s) ; _describe command cands ;;\n", k, strings.Join(items, " ")))
	}
	for _, k := range sortedKeys(flags) {
		if _, isPrefix := next[k]; isPrefix {
			continue
		}
		b.WriteString(fmt.Sprintf("\t%q) compadd -- %s ; _files ;;\n", k, strings.Join(flags[k], " ")))
	}
	b.WriteString("esac\n")
	return b.String()
}

func (g *gen) zshCgwd() string {
	var specs []string
	for _, f := range g.cgwdFlags {
		spec := "'--" + f.name + "[" + zshQuote(strings.ReplaceAll(strings.ReplaceAll(f.usage, "[", "("), "]", ")")) + "]"
		if f.arg != "" {
			spec += ":" + f.arg + ":_files"
		}
		specs = append(specs, spec+"'")
	}
	return "#compdef cgwd\n# zsh completion for cgwd; generated by internal/cmd/docgen, do not edit.\n_arguments " + strings.Join(specs, " ") + "\n"
}
