package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cgwproject/cgw/control/client"
	"github.com/cgwproject/cgw/internal/flaghelp"
	"github.com/cgwproject/cgw/internal/version"
)

// Exit codes: stable, scripts depend on them.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed (bad input, daemon error)
	exitUsage = 2 // the command line is wrong
	// exitFindings: cgwctl diagnose found at least one error.
	exitFindings = 3
)

// env is what a command may touch: its streams and the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// socket is the control socket of cgwd (global --socket), for verbs
	// that talk to the daemon.
	socket string
}

// command is a noun with verbs (sub) or a verb that runs (run). run gets
// the verb's empty flag set: it defines its flags, calls f.parse(e, args)
// and returns an error; wrap command-line mistakes with usagef so they exit
// with status 2.
type command struct {
	name    string
	args    string // argument synopsis, e.g. "[-q] [FILE]"
	summary string // one line, for the command list
	help    string // more text for "-h" (optional)
	run     func(e *env, f *flags, args []string) error
	sub     []*command
}

// commands is the top-level table. To add a noun, write <noun>.go with a
// *command and list it here; to add a verb, append it to its noun's sub.
var commands = []*command{
	configCmd,
	importAWSCmd,
	versionCmd,
	statusCmd,
	tunnelCmd,
	reloadCmd,
	bgpCmd,
	eventsCmd,
	diagnoseCmd,
	drainCmd,
	undrainCmd,
	healthCmd,
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// statusError ends a command with a specific exit status and no message
// (diagnose: exitFindings).
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usagef reports a command-line mistake (exit status 2).
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run executes one cgwctl invocation and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("cgwctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.socket, "socket", defaultSocket(), "control socket of cgwd")
	showVersion := fs.Bool("version", false, "print cgwctl's version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, nil, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "cgwctl: %v\n", err)
		printUsage(stderr, nil, fs)
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "cgwctl %s\n", version.Full())
		return exitOK
	}
	args = fs.Args()
	if len(args) == 0 {
		printUsage(stderr, nil, fs)
		return exitUsage
	}
	if args[0] == "help" {
		if len(args) == 1 {
			printUsage(stdout, nil, fs)
			return exitOK
		}
		// help VERB is VERB -h.
		args = append(slices.Clone(args[1:]), "-h")
	}

	var path []*command
	list := commands
	for {
		var cmd *command
		if len(args) > 0 {
			cmd = find(list, args[0])
		}
		if cmd == nil {
			if len(args) > 0 && args[0] != "-h" && args[0] != "--help" {
				fmt.Fprintf(stderr, "cgwctl: unknown command %q\n", strings.Join(append(names(path), args[0]), " "))
			}
			if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
				printUsage(stdout, path, nil)
				return exitOK
			}
			printUsage(stderr, path, nil)
			return exitUsage
		}
		path = append(path, cmd)
		args = args[1:]
		if cmd.run != nil {
			break
		}
		list = cmd.sub
	}

	cmd := path[len(path)-1]
	err := cmd.run(e, newFlags(cmd, strings.Join(names(path), " ")), args)
	var ue *usageError
	var se *statusError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &se):
		return se.code
	case errors.Is(err, flag.ErrHelp):
		return exitOK // the flag set printed the help
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cgwctl %s: %v\n", strings.Join(names(path), " "), err)
		fmt.Fprintf(stderr, "usage: cgwctl %s %s\n", strings.Join(names(path), " "), cmd.args)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "cgwctl %s: %v\n", strings.Join(names(path), " "), err)
		return exitError
	}
}

func find(list []*command, name string) *command {
	for _, c := range list {
		if c.name == name {
			return c
		}
	}
	return nil
}

func names(path []*command) []string {
	var n []string
	for _, c := range path {
		n = append(n, c.name)
	}
	return n
}

// printUsage lists the commands below path (all of them at the top).
func printUsage(w io.Writer, path []*command, global *flag.FlagSet) {
	list := commands
	prefix := "cgwctl"
	if len(path) > 0 {
		list = path[len(path)-1].sub
		prefix += " " + strings.Join(names(path), " ")
	}
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\ncommands:\n", prefix)
	var walk func(p string, cs []*command)
	walk = func(p string, cs []*command) {
		for _, c := range cs {
			if c.run != nil {
				left := strings.TrimSpace(p + " " + c.name + " " + c.args)
				if len(left) > 30 {
					fmt.Fprintf(w, "  %s\n  %-30s %s\n", left, "", c.summary)
				} else {
					fmt.Fprintf(w, "  %-30s %s\n", left, c.summary)
				}
			}
			walk(p+" "+c.name, c.sub)
		}
	}
	walk(strings.TrimPrefix(prefix, "cgwctl"), list)
	if global != nil {
		fmt.Fprintf(w, "\nglobal flags:\n  --socket PATH   control socket of cgwd (default $%s, else %s)\n  --version       print cgwctl's version and exit\n", socketEnv, client.DefaultSocket)
		fmt.Fprintf(w, "\ncgwctl help COMMAND and cgwctl COMMAND -h show a command's help and flags.\n")
		fmt.Fprintf(w, "--json: every command that talks to cgwd prints JSON (durations in seconds).\n")
		fmt.Fprintf(w, "\nexit status: 0 ok, 1 failure, 2 usage error, 3 diagnose found an error\n")
	}
}

// flags is a verb's flag set. Errors and help are not printed by the flag
// package: parse turns errors into usage errors and prints the help for
// -h to stdout.
type flags struct {
	*flag.FlagSet
	path string
	cmd  *command
}

// newFlags returns the flag set of the verb cmd, named by its full path
// ("config check").
func newFlags(cmd *command, path string) *flags {
	fs := flag.NewFlagSet("cgwctl "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, path: path, cmd: cmd}
}

func (f *flags) help(w io.Writer) {
	fmt.Fprintf(w, "usage: cgwctl %s %s\n\n%s\n", f.path, f.cmd.args, f.cmd.summary)
	if f.cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", f.cmd.help)
	}
	var any bool
	f.VisitAll(func(*flag.Flag) { any = true })
	if any {
		fmt.Fprintln(w, "\nflags:")
		flaghelp.PrintDefaults(w, f.FlagSet)
	}
}

// parse parses flags anywhere among the arguments ("check FILE -q" as well
// as "check -q FILE") and returns the positional ones; "--" ends flags.
func (f *flags) parse(e *env, args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.help(e.stdout)
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := f.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
