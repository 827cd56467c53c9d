package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem in a configuration file. Load and Parse return
// every FieldError they find, joined with errors.Join; use errors.As or
// the Unwrap() []error method to get them one by one. No FieldError ever
// contains a pre-shared key.
type FieldError struct {
	File string // file name as given to Load or Parse
	Line int    // 1-based YAML line; 0 if unknown
	Path string // field path, e.g. "connections[0].tunnels[1].psk"; "" for the whole file
	Msg  string // what is wrong
	Fix  string // what to do about it
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(location(e.File, e.Line, e.Path))
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Warning is a legal but doubtful setting: the daemon runs, but probably
// not as the operator intended (one tunnel only, no PFS, an algorithm AWS
// does not accept...).
type Warning struct {
	File string
	Line int
	Path string
	Msg  string
}

func (w Warning) String() string {
	return "warning: " + location(w.File, w.Line, w.Path) + w.Msg
}

func location(file string, line int, path string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		b.WriteString(":")
	}
	if line > 0 {
		fmt.Fprintf(&b, "%d:", line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if path != "" {
		b.WriteString(path)
		b.WriteString(": ")
	}
	return b.String()
}
