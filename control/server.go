package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrNotFound is returned by a Backend for an unknown tunnel name; the server
// maps it to HTTP 404.
var ErrNotFound = errors.New("not found")

// Server serves the API on a unix socket.
type Server struct {
	backend Backend
	log     *slog.Logger
	http    *http.Server
	ln      net.Listener
	path    string
	owner   int // uid allowed besides root: the socket's owner (cgwd's euid)
	// stop ends long-lived requests (events) on Close, which would
	// otherwise hold Shutdown until its timeout.
	base context.Context
	stop context.CancelFunc
}

// Listen creates the socket at path (replacing a stale socket file) in a
// directory of mode 0700, and returns a server ready to Serve. The
// directory, not a process-wide umask, keeps other users away from the
// socket; every connection is also checked with SO_PEERCRED: only root and
// the socket's owner may use the API.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if err := privateDir(filepath.Dir(path), filepath.Base(path)); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control: %s exists and is not a socket; remove it or set control.socket to another path", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: %s is in use by another cgwd; stop it or set control.socket to another path", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: chmod %s: %w", path, err)
	}
	s := &Server{backend: b, log: log, ln: ln, path: path, owner: os.Geteuid()}
	s.base, s.stop = context.WithCancel(context.Background())
	s.http = &http.Server{Handler: s.authorize(s.Handler()), ReadHeaderTimeout: 5 * time.Second, ConnContext: withPeer,
		BaseContext: func(net.Listener) context.Context { return s.base }}
	return s, nil
}

// privateDir makes dir a directory only its owner can enter (0700): it
// creates it, or tightens it when it is ours (owned by our euid) and holds
// nothing but the socket. A shared directory with looser permissions is
// refused: tightening it would break its other users.
func privateDir(dir, sock string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("control: create socket directory: %w", err)
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return fmt.Errorf("control: socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("control: %s is not a directory; set control.socket to a path in a directory of its own", dir)
	}
	if fi.Mode().Perm() == 0o700 && ownerOf(fi) == os.Geteuid() {
		return nil
	}
	fix := fmt.Sprintf("set control.socket to a path in a directory of its own (cgwd creates it with mode 0700), or `chmod 700 %s`", dir)
	if ownerOf(fi) != os.Geteuid() {
		return fmt.Errorf("control: socket directory %s belongs to uid %d, not to cgwd's uid %d: %s", dir, ownerOf(fi), os.Geteuid(), fix)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("control: socket directory: %w", err)
	}
	for _, e := range ents {
		if e.Name() != sock {
			return fmt.Errorf("control: socket directory %s has mode %#o and holds other files (%s); other users could reach the socket: %s",
				dir, fi.Mode().Perm(), e.Name(), fix)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("control: chmod 700 %s: %w", dir, err)
	}
	return nil
}

// Serve blocks until Close.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and removes the socket.
func (s *Server) Close() error {
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

// Handler returns the HTTP routes; exported for tests.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	p := "/" + APIVersion
	mux.HandleFunc("GET "+p+"/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.backend.Status(r.Context())
		reply(w, st, err)
	})
	mux.HandleFunc("POST "+p+"/tunnels/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var err error
		switch r.PathValue("action") {
		case "up":
			err = s.backend.TunnelUp(r.Context(), name)
		case "down":
			err = s.backend.TunnelDown(r.Context(), name)
		case "rekey":
			err = s.backend.Rekey(r.Context(), name, r.URL.Query().Get("ike") == "true")
		default:
			writeErr(w, http.StatusNotFound, fmt.Errorf("unknown action %q: use up, down or rekey", r.PathValue("action")))
			return
		}
		if s.log != nil {
			s.log.Info("control request", "action", r.PathValue("action"), "tunnel", name, "err", err)
		}
		reply(w, struct{}{}, err)
	})
	mux.HandleFunc("POST "+p+"/reload", func(w http.ResponseWriter, r *http.Request) {
		var res *ReloadResult
		var err error
		if r.URL.Query().Get("dry_run") == "true" {
			res, err = s.backend.ReloadDryRun(r.Context())
		} else {
			res, err = s.backend.Reload(r.Context())
		}
		reply(w, res, err)
	})
	mux.HandleFunc("GET "+p+"/events", func(w http.ResponseWriter, r *http.Request) {
		fl, ok := w.(http.Flusher)
		if !ok {
			writeErr(w, http.StatusInternalServerError, errors.New("events: streaming not supported"))
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		fl.Flush()
		enc := json.NewEncoder(w)
		err := s.backend.Events(r.Context(), func(ev Event) error {
			if err := enc.Encode(ev); err != nil {
				return err
			}
			fl.Flush()
			return nil
		})
		if err != nil && s.log != nil {
			s.log.Debug("events subscriber gone", "err", err)
		}
	})
	mux.HandleFunc("GET "+p+"/config", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.backend.EffectiveConfig(r.Context())
		reply(w, res, err)
	})
	mux.HandleFunc("GET "+p+"/diagnose", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.backend.Diagnose(r.Context(), r.URL.Query().Get("tunnel"))
		reply(w, res, err)
	})
	mux.HandleFunc("GET "+p+"/bgp/routes", func(w http.ResponseWriter, r *http.Request) {
		table := r.URL.Query().Get("table")
		if table == "" {
			table = RouteTables[0]
		}
		if !slices.Contains(RouteTables, table) {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("unknown table %q: use %s", table, strings.Join(RouteTables, ", ")))
			return
		}
		res, err := s.backend.BGPRoutes(r.Context(), table, r.URL.Query().Get("tunnel"))
		reply(w, res, err)
	})
	s.lanRoutes(mux, p)
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNotFound) {
			code = http.StatusNotFound
		}
		writeErr(w, code, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(Error{Error: err.Error()})
}
