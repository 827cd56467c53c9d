// Command cgwd is the cgw daemon: it reads a YAML configuration, brings up
// the configured AWS Site-to-Site VPN tunnels (IKEv2, ESP in UDP on TUN
// devices), runs BGP over them and installs the learned routes.
//
//	cgwd --config /etc/cgw/cgw.yaml          run in the foreground
//	cgwd --config /etc/cgw/cgw.yaml --check  validate the file and exit
//
// SIGINT/SIGTERM stop it cleanly (SAs deleted, routes removed); SIGHUP
// reloads the configuration and applies only the difference.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cgwproject/cgw/daemon"
	"github.com/cgwproject/cgw/internal/flaghelp"
	"github.com/cgwproject/cgw/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("cgwd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "/etc/cgw/cgw.yaml", "configuration `FILE`")
	check := fs.Bool("check", false, "validate the configuration and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	pprofAddr := fs.String("pprof", os.Getenv("CGW_PPROF_SOCKET"), "serve Go runtime profiles on `ADDR`: a unix socket path or a loopback host:port (off by default; default from $CGW_PPROF_SOCKET)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(os.Stdout, fs)
			return 0
		}
		fmt.Fprintf(os.Stderr, "cgwd: %v\n", err)
		usage(os.Stderr, fs)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "cgwd: unexpected argument %q (cgwd takes only flags; the configuration file is --config FILE)\n", fs.Arg(0))
		usage(os.Stderr, fs)
		return 2
	}
	if *showVersion {
		fmt.Println("cgwd", version.Full())
		return 0
	}
	setGCDefault() // memory.go
	// Catch signals before anything starts so an early SIGTERM still
	// takes the clean shutdown path.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)

	d, err := daemon.New(daemon.Options{ConfigPath: *cfgPath, Version: version.String(), Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgwd: %v\n", err)
		return 1
	}
	if *check {
		fmt.Fprintf(os.Stderr, "cgwd: %s is valid\n", *cfgPath)
		return 0
	}
	if *pprofAddr != "" {
		stop, err := startPprof(*pprofAddr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cgwd: %v\n", err)
			return 2
		}
		defer stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sd := newNotifier()
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				sd.reloading()
				d.ReloadFromSignal()
				sd.reloaded()
				continue
			}
			sd.stopping()
			cancel()
			return
		}
	}()
	err = d.Run(ctx, func() {
		sd.ready()
		go sd.supervise(ctx, d.Status)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "cgwd: %v\n", err)
		return 1
	}
	return 0
}

// usage is cgwd -h: what it does, its flags, signals and exit status.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: cgwd [--config FILE] [--check] [--version] [--pprof ADDR]

cgwd is the cgw daemon: a userspace IKEv2/IPsec customer gateway for AWS
Site-to-Site VPN. It reads its configuration, brings up each connection's
tunnels (TUN devices, IKE, ESP over UDP 4500), runs BGP with AWS over them
and installs the learned routes. Operate it with cgwctl over its control
socket (control.socket, default /run/cgw/cgw.sock); cgwctl config check
validates a file, cgwctl config default prints every key.

flags:
`)
	flaghelp.PrintDefaults(w, fs)
	fmt.Fprint(w, `
signals:
  SIGHUP          re-read the configuration and apply only what changed (as cgwctl reload)
  SIGINT, SIGTERM delete the SAs, remove the routes and devices, and exit

exit status: 0 ok (or stopped by a signal), 1 failure (bad configuration, start-up error), 2 usage error
`)
}
