package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/cgwproject/cgw/control/client"
)

// Plumbing shared by the verbs that talk to cgwd over its control socket
// (status, tunnel, reload, diagnose).

// socketEnv overrides the default control socket, like the global --socket.
const socketEnv = "CGW_SOCKET"

// defaultSocket is the control socket used when no --socket flag is given:
// $CGW_SOCKET, else the daemon's default.
func defaultSocket() string {
	if s := os.Getenv(socketEnv); s != "" {
		return s
	}
	return client.DefaultSocket
}

// socketFlag defines the per-verb --socket flag; an empty value means the
// global one (cgwctl --socket PATH VERB), whose default is defaultSocket.
func socketFlag(f *flags) *string {
	return f.String("socket", "", "control socket `PATH` of cgwd (default: the global --socket, $"+socketEnv+", else "+client.DefaultSocket+")")
}

// daemon returns a client for the verb's socket.
func (e *env) daemon(verbSocket string) *client.Client {
	if verbSocket != "" {
		return client.New(verbSocket)
	}
	if e.socket != "" {
		return client.New(e.socket)
	}
	return client.New(defaultSocket())
}

// requestTimeout bounds one request; diagnose waits for a measurement
// window and MTU probes, so it gets longer.
const (
	requestTimeout  = 30 * time.Second
	diagnoseTimeout = 2 * time.Minute
)

func requestContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// noArgs rejects positional arguments of verbs that take none.
func noArgs(pos []string) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

// writeJSON prints v as indented JSON: the control API's v1 wire format, a
// stable interface for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// plural prints "1 packet", "2 packets".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}

// writeJSONLine prints v as one line of JSON (streams: one object a line).
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// query runs a verb that takes no arguments and shows one document from
// cgwd: it adds --json and --socket to f, parses args, fetches the document
// and prints it as JSON or through render. Flags the verb defined before
// are parsed too, so fetch may read them.
func query[T any](e *env, f *flags, args []string, what string, fetch func(*client.Client, context.Context) (T, error), render func(T) error) error {
	asJSON := f.Bool("json", false, "print the "+what+" as JSON (control API v1 format)")
	sock := socketFlag(f)
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	ctx, cancel := requestContext(requestTimeout)
	defer cancel()
	v, err := fetch(e.daemon(*sock), ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, v)
	}
	return render(v)
}
