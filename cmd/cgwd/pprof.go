package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// startPprof serves Go's runtime profiles (net/http/pprof: /debug/pprof/
// profile, heap, goroutine, …) on addr, for profiling the dataplane under
// load (README, Performance). It is off unless --pprof is given, and only
// local: addr is a unix socket path (absolute; created mode 0600, an
// existing socket file is replaced) or a loopback host:port. Profiles show
// code paths and memory, never keys, but they are still the operator's
// only. It returns a function that closes the listener.
func startPprof(addr string) (func(), error) {
	ln, err := pprofListen(addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

func pprofListen(addr string) (net.Listener, error) {
	if strings.HasPrefix(addr, "/") {
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(addr)
		}
		if err := os.MkdirAll(filepath.Dir(addr), 0o700); err != nil {
			return nil, fmt.Errorf("--pprof %s: %w", addr, err)
		}
		ln, err := net.Listen("unix", addr)
		if err != nil {
			return nil, fmt.Errorf("--pprof %s: %w", addr, err)
		}
		if err := os.Chmod(addr, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("--pprof %s: %w", addr, err)
		}
		return ln, nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof %q: want an absolute unix socket path or a loopback ADDR:PORT such as 127.0.0.1:6060", addr)
	}
	if !ap.Addr().IsLoopback() {
		return nil, errors.New("--pprof " + addr + ": only a loopback address (127.0.0.0/8, ::1) or a unix socket; profiles are not served to the network")
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return nil, fmt.Errorf("--pprof %s: %w", addr, err)
	}
	return ln, nil
}
