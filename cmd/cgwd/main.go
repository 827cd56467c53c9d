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
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/cgwproject/cgw/daemon"
	"github.com/cgwproject/cgw/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("cgwd", flag.ContinueOnError)
	cfgPath := fs.String("config", "/etc/cgw/cgw.yaml", "configuration file")
	check := fs.Bool("check", false, "validate the configuration and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Println("cgwd", version.String())
		return 0
	}
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				d.ReloadFromSignal()
				continue
			}
			cancel()
			return
		}
	}()
	err = d.Run(ctx, notifyReady)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "cgwd: %v\n", err)
		return 1
	}
	return 0
}

// notifyReady tells systemd (Type=notify) that start-up is complete; it
// does nothing when NOTIFY_SOCKET is unset.
func notifyReady() {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte("READY=1"))
}
