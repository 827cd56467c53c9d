package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"
)

// pprofEnv names a unix socket on which cgwd serves Go's profiles
// (/debug/pprof/heap, /debug/pprof/profile, goroutine, ...), for finding
// where memory and CPU go with many tunnels:
//
//	CGW_PPROF_SOCKET=/run/cgw/pprof.sock cgwd --config ...
//	curl --unix-socket /run/cgw/pprof.sock -o heap.pb.gz http://x/debug/pprof/heap
//
// Unset (the default) serves nothing. Only a unix socket, mode 0600, so
// only root (or cgwd's user) reaches it: a TCP port would be open to any
// local process.
const pprofEnv = "CGW_PPROF_SOCKET"

// servePprof starts the profile server when pprofEnv is set; the returned
// function removes the socket.
func servePprof() (func(), error) {
	path := os.Getenv(pprofEnv)
	if path == "" {
		return func() {}, nil
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%s=%q: must be an absolute path of a unix socket", pprofEnv, path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s=%q: exists and is not a socket; remove it or choose another path", pprofEnv, path)
		}
		os.Remove(path) // a stale socket of an earlier run
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s=%q: %w", pprofEnv, path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", pprofEnv, path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s=%q: %w", pprofEnv, path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close(); os.Remove(path) }, nil
}
