package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file turns YAML text into the raw schema (raw.go): strict decoding
// with yaml.v3 (KnownFields), plus an index of the node tree so that every
// later error can name the line of the field it is about.

// nodeIndex maps field paths ("connections[0].tunnels[1].psk") to the line
// of the key (for mapping values) or of the item (for sequence items).
type nodeIndex struct {
	lines  map[string]int
	byLine map[int]string // the deepest path that starts on each line
}

func (ix *nodeIndex) add(path string, line int) {
	if _, ok := ix.lines[path]; !ok {
		ix.lines[path] = line
	}
	if cur, ok := ix.byLine[line]; !ok || depth(path) > depth(cur) {
		ix.byLine[line] = path
	}
}

func depth(path string) int {
	return strings.Count(path, ".") + strings.Count(path, "[")
}

// line returns the line of path, or of its closest ancestor present in the
// file (a defaulted field reports the line of the section that lacks it).
func (ix *nodeIndex) line(path string) int {
	for path != "" {
		if l, ok := ix.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return ix.lines[""]
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// maxDepth bounds the recursion over hostile documents (nested aliases).
const maxDepth = 32

func buildIndex(root *yaml.Node) *nodeIndex {
	ix := &nodeIndex{lines: map[string]int{}, byLine: map[int]string{}}
	ix.lines[""] = root.Line
	var walk func(n *yaml.Node, path string, d int)
	walk = func(n *yaml.Node, path string, d int) {
		if n == nil || d > maxDepth {
			return
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, d+1)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := joinPath(path, n.Content[i].Value)
				ix.add(p, n.Content[i].Line)
				walk(n.Content[i+1], p, d+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := indexPath(path, i)
				ix.add(p, c.Line)
				walk(c, p, d+1)
			}
		}
		// Aliases are not followed: a crafted document can make them
		// expand exponentially. Fields inside an alias report the line
		// of the alias itself.
	}
	walk(root, "", 0)
	return ix
}

// decode parses data into a rawFile. The returned index is non-nil whenever
// the YAML itself is well formed; errs then lists schema problems (unknown
// keys, duplicate keys, wrong types), all of them, and bad lists the paths
// whose values were dropped so that validation does not report them again.
//
// Decoding runs twice: yaml.v3 with KnownFields(true) is the authority on
// what is acceptable, and a walk over the node tree (checkNode) finds each
// problem's path and removes the offending key or value, so the cleaned tree
// decodes into the raw schema without losing the valid fields around it.
func decode(data []byte, file string) (*rawFile, *nodeIndex, map[string]bool, []error) {
	fail := func(line int, msg, fix string) (*rawFile, *nodeIndex, map[string]bool, []error) {
		return nil, nil, nil, []error{&FieldError{File: file, Line: line, Msg: msg, Fix: fix}}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(0, "the file is empty", "start from the example printed by `cgwctl config default`")
		}
		line, msg := splitYAMLError(err.Error())
		return fail(line, "invalid YAML: "+msg, "fix the YAML syntax (indentation with spaces, a space after each colon)")
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fail(extra.Line, "the file holds more than one YAML document", "keep a single document: remove the second '---' and what follows it")
	} else if !errors.Is(err, io.EOF) {
		line, msg := splitYAMLError(err.Error())
		return fail(line, "invalid YAML: "+msg, "fix the YAML syntax")
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return fail(doc.Line, "the top level must be a mapping (key: value)", "start from the example printed by `cgwctl config default`")
	}
	ix := buildIndex(doc)

	// Pass 1: the strict decoder's verdict.
	var strictErrs []string
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(new(rawFile)); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			line, msg := splitYAMLError(err.Error())
			return fail(line, "invalid YAML: "+msg, "fix the YAML syntax")
		}
		strictErrs = te.Errors
	}

	// Pass 2: locate and remove every problem.
	w := &walker{file: file, bad: map[string]bool{}}
	w.check(doc, reflect.TypeFor[rawFile](), "", 0)
	errs := w.errs
	if len(errs) == 0 {
		// The walk and yaml.v3 disagree; report yaml's view by line.
		for _, m := range strictErrs {
			line, msg := splitYAMLError(m)
			errs = append(errs, &FieldError{File: file, Line: line, Path: ix.byLine[line], Msg: redactBackticks(ix.byLine[line], msg),
				Fix: "see the example printed by `cgwctl config default`"})
		}
	}
	var raw rawFile
	if err := doc.Decode(&raw); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(errs) > 0 {
			return &raw, ix, w.bad, errs // already reported
		}
		line, msg := splitYAMLError(err.Error())
		errs = append(errs, &FieldError{File: file, Line: line, Path: ix.byLine[line], Msg: redactBackticks(ix.byLine[line], msg),
			Fix: "see the example printed by `cgwctl config default`"})
	}
	return &raw, ix, w.bad, errs
}

func redactBackticks(path, msg string) string {
	if !isSecretPath(path) {
		return msg
	}
	return regexp.MustCompile("`[^`]*`").ReplaceAllString(msg, "`"+redacted+"`")
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func splitYAMLError(s string) (int, string) {
	s = strings.TrimPrefix(s, "yaml: ")
	if m := lineRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, s
}

func isSecretPath(path string) bool {
	return path == "psk" || strings.HasSuffix(path, ".psk")
}

// walker checks a node tree against a raw schema type. Unknown and
// duplicate keys are removed from their mapping, values of the wrong type
// are replaced by null (so the field takes its default, and bad records the
// path so that validation stays quiet about it).
type walker struct {
	file string
	errs []error
	bad  map[string]bool
	// seen holds the anchored nodes already checked against a type, so
	// that aliases cost nothing (no exponential "billion laughs" walk).
	seen map[aliasKey]bool
}

type aliasKey struct {
	n *yaml.Node
	t reflect.Type
}

func (w *walker) fail(n *yaml.Node, path, msg, fix string) {
	w.errs = append(w.errs, &FieldError{File: w.file, Line: n.Line, Path: path, Msg: msg, Fix: fix})
	w.bad[path] = true
}

func (w *walker) check(n *yaml.Node, t reflect.Type, path string, d int) {
	if d > maxDepth {
		w.fail(n, path, "nesting too deep", "simplify the document (aliases nested more than 32 levels)")
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		k := aliasKey{n.Alias, t}
		if w.seen[k] {
			return
		}
		if w.seen == nil {
			w.seen = map[aliasKey]bool{}
		}
		w.seen[k] = true
		w.check(n.Alias, t, path, d+1)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent: the default applies
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.wrongType(n, path, "a mapping (key: value)")
			return
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			ft, ok := fields[k.Value]
			switch {
			case k.Kind != yaml.ScalarNode:
				w.fail(k, path, "a key must be a plain name", "write the key as a single word")
				continue
			case !ok:
				names := slices.Sorted(maps.Keys(fields))
				fix := "remove it; allowed keys here: " + strings.Join(names, ", ")
				if s := closest(k.Value, names); s != "" {
					fix = fmt.Sprintf("did you mean %q? allowed keys here: %s", s, strings.Join(names, ", "))
				}
				w.fail(k, p, "unknown key", fix)
				continue
			}
			if first, dup := seen[k.Value]; dup {
				w.fail(k, p, fmt.Sprintf("duplicate key (first at line %d)", first), "keep one of them")
				continue
			}
			seen[k.Value] = k.Line
			w.check(v, ft, p, d+1)
			kept = append(kept, k, v)
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.wrongType(n, path, "a list ([a, b] or one \"- item\" per line)")
			return
		}
		for i, c := range n.Content {
			w.check(c, t.Elem(), indexPath(path, i), d+1)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.wrongType(n, path, "a single value")
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			want := map[reflect.Kind]string{reflect.Int64: "an integer", reflect.Bool: "true or false", reflect.String: "a string"}[t.Kind()]
			w.wrongType(n, path, want)
		}
	}
}

func (w *walker) wrongType(n *yaml.Node, path, want string) {
	got := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a value"}[n.Kind]
	if n.Kind == yaml.ScalarNode && !isSecretPath(path) {
		got = strconv.Quote(n.Value)
	}
	w.fail(n, path, "wrong type: got "+got, "write "+want+" here")
	// Null the value in place so the cleaned tree decodes.
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "", Line: n.Line, Column: n.Column}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type
	}
	return m
}

// closest returns the candidate within edit distance 2 of s (or sharing
// its underscore-less spelling), or "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	norm := func(x string) string { return strings.ReplaceAll(strings.ToLower(x), "_", "") }
	for _, c := range candidates {
		if norm(c) == norm(s) {
			return c
		}
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
