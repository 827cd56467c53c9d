package main

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/control/client"
)

// defaultConfigPath is where cgwd reads its configuration by default.
const defaultConfigPath = "/etc/cgw/cgw.yaml"

var configCmd = &command{
	name:    "config",
	summary: "check or print configuration files",
	sub:     []*command{configCheckCmd, configDefaultCmd, configShowCmd},
}

var configShowCmd = &command{
	name:    "show",
	args:    "[--json] [--socket PATH]",
	summary: "print the configuration cgwd is running, every default filled in, secrets redacted",
	help: `Asks the running cgwd, not the file: after an edit without a reload the two
differ (cgwctl reload --dry-run shows how). The output is YAML in the file's
schema; PSKs and the BGP password print as ` + control.Redacted + ` and never leave the
daemon. --json prints the control API's v1 document, durations in seconds.`,
	run: runConfigShow,
}

var configCheckCmd = &command{
	name:    "check",
	args:    "[-q] [--json] [FILE]",
	summary: "validate a configuration file (default " + defaultConfigPath + "); errors and warnings go to stderr",
	run:     runConfigCheck,
}

var configDefaultCmd = &command{
	name:    "default",
	summary: "print a commented configuration with every key and its default",
	run:     runConfigDefault,
}

// checkResult is config check --json.
type checkResult struct {
	File        string   `json:"file"`
	Valid       bool     `json:"valid"`
	Connections int      `json:"connections"`
	Tunnels     int      `json:"tunnels"`
	Warnings    []string `json:"warnings"`
	Errors      []string `json:"errors"` // one per problem, naming file, line and field
}

func runConfigCheck(e *env, f *flags, args []string) error {
	quiet := f.Bool("q", false, "print nothing on success")
	asJSON := f.Bool("json", false, "print the result as JSON on stdout (exit status as without it)")
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	path := defaultConfigPath
	switch len(pos) {
	case 0:
	case 1:
		path = pos[0]
	default:
		return usagef("one file at a time; got %d", len(pos))
	}
	cfg, warns, err := config.Load(path)
	if *asJSON {
		r := checkResult{File: path, Valid: err == nil, Warnings: []string{}, Errors: []string{}}
		for _, w := range warns {
			r.Warnings = append(r.Warnings, w.String())
		}
		if err != nil {
			r.Errors = strings.Split(strings.TrimSpace(err.Error()), "\n")
		} else {
			r.Connections = len(cfg.Connections)
			for _, c := range cfg.Connections {
				r.Tunnels += len(c.Tunnels)
			}
		}
		if werr := writeJSON(e.stdout, r); werr != nil {
			return werr
		}
		if err != nil {
			return &statusError{code: exitError}
		}
		return nil
	}
	for _, w := range warns {
		fmt.Fprintln(e.stderr, w.String())
	}
	if err != nil {
		// One problem per line, each naming file, line and field.
		fmt.Fprintln(e.stderr, err)
		return fmt.Errorf("%s is not valid", path)
	}
	if !*quiet {
		tunnels := 0
		for _, c := range cfg.Connections {
			tunnels += len(c.Tunnels)
		}
		fmt.Fprintf(e.stdout, "%s: valid (%d connection(s), %d tunnel(s), %d warning(s))\n", path, len(cfg.Connections), tunnels, len(warns))
	}
	return nil
}

func runConfigDefault(e *env, f *flags, args []string) error {
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	_, err = e.stdout.Write(config.Example())
	return err
}

func runConfigShow(e *env, f *flags, args []string) error {
	return query(e, f, args, "configuration", (*client.Client).EffectiveConfig, func(doc *control.ConfigDoc) error {
		out, err := renderConfigDoc(doc)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(out)
		return err
	})
}

// renderConfigDoc prints doc as a configuration file cgwd would read the
// same way (once the redacted secrets are put back).
func renderConfigDoc(doc *control.ConfigDoc) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# effective configuration of cgwd, read from %s; secrets redacted\n", doc.File)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	enc.Close()
	return b.Bytes(), nil
}
