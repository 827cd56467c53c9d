package main

import (
	"fmt"

	"github.com/cgwproject/cgw/internal/version"
)

// versionInfo is `cgwctl version --json`: the client's version and the
// running daemon's (from its status document), or why it is unknown.
type versionInfo struct {
	Client      string `json:"client"`
	Daemon      string `json:"daemon,omitempty"`
	DaemonError string `json:"daemon_error,omitempty"`
}

var versionCmd = &command{
	name:    "version",
	args:    "[--client] [--json] [--socket PATH]",
	summary: "print the versions of cgwctl and of the running cgwd",
	help: `The client line is cgwctl's own version (the same as cgwctl --version);
the daemon line is what the running cgwd reports over its control socket.
Exit status 1 when the daemon cannot be asked (the client line is still
printed); --client prints only the client and never fails.`,
	run: func(e *env, f *flags, args []string) error {
		clientOnly := f.Bool("client", false, "print only cgwctl's version; do not ask cgwd")
		asJSON := f.Bool("json", false, "print {\"client\", \"daemon\", \"daemon_error\"} as JSON")
		sock := socketFlag(f)
		pos, err := f.parse(e, args)
		if err != nil {
			return err
		}
		if err := noArgs(pos); err != nil {
			return err
		}
		vi := versionInfo{Client: version.Full()}
		if !*clientOnly {
			ctx, cancel := requestContext(requestTimeout)
			defer cancel()
			if st, err := e.daemon(*sock).Status(ctx); err != nil {
				vi.DaemonError = err.Error()
			} else {
				vi.Daemon = st.Version
			}
		}
		if *asJSON {
			err = writeJSON(e.stdout, vi)
		} else {
			_, err = fmt.Fprintf(e.stdout, "cgwctl %s\n", vi.Client)
			if err == nil && vi.Daemon != "" {
				_, err = fmt.Fprintf(e.stdout, "cgwd   %s\n", vi.Daemon)
			}
		}
		if err != nil {
			return err
		}
		if vi.DaemonError != "" {
			return fmt.Errorf("cgwd: %s", vi.DaemonError)
		}
		return nil
	},
}
