package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// LAN is the LAN side of the BGP speaker in Status: the on-premises
// routers cgw peers with, and whether this gateway is drained.
type LAN struct {
	// Drained is set by `cgwctl drain`: the AWS prefixes are withdrawn
	// from the LAN neighbors and the on-premises prefixes are sent to
	// AWS with extra prepends, so both directions use the other gateway.
	Drained   bool          `json:"drained"`
	Neighbors []LANNeighbor `json:"neighbors"`
}

// LANNeighbor is one on-premises BGP neighbor.
type LANNeighbor struct {
	Name          string  `json:"name"`
	Address       string  `json:"address"`
	ASN           uint32  `json:"asn"`
	Type          string  `json:"type"`  // ebgp | ibgp
	State         string  `json:"state"` // RFC 4271 FSM state
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Received counts prefixes the router sent, Accepted those that
	// passed the import policy (and are announced to AWS), Advertised the
	// AWS prefixes sent to it.
	Received   int    `json:"received"`
	Accepted   int    `json:"accepted"`
	Advertised int    `json:"advertised"`
	LastError  string `json:"last_error,omitempty"`
}

// DrainRequest asks to drain (or undrain) this gateway. Drain waits until
// the tunnels' traffic has stayed below IdleRate packets per second for
// IdleSeconds, at most WaitSeconds.
type DrainRequest struct {
	Undrain     bool    `json:"undrain"`
	WaitSeconds float64 `json:"wait_seconds"`
	IdleSeconds float64 `json:"idle_seconds"`
	IdleRate    float64 `json:"idle_rate"`
}

// DrainResult says what the drain did.
type DrainResult struct {
	Drained bool `json:"drained"`
	// Moved is true when the traffic fell idle within the wait: the LAN
	// and AWS now use the other gateway, and this one can be stopped.
	Moved         bool    `json:"moved"`
	WaitedSeconds float64 `json:"waited_seconds"`
	// Rate is the tunnels' packet rate (in + out, packets per second)
	// over the last idle window, and RateBefore the rate when the
	// drain started.
	Rate       float64 `json:"rate"`
	RateBefore float64 `json:"rate_before"`
	Message    string  `json:"message"`
}

// Drainer is implemented by a Backend that can drain its gateway.
type Drainer interface {
	Drain(ctx context.Context, req DrainRequest) (*DrainResult, error)
}

// maxDrainWait bounds a drain request below the client's 60 s request
// timeout; a drain is idempotent, so a longer wait is a second drain.
const maxDrainWait = 50 * time.Second

func (s *Server) lanRoutes(mux *http.ServeMux, p string) {
	mux.HandleFunc("POST "+p+"/drain", func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.backend.(Drainer)
		if !ok {
			writeErr(w, http.StatusNotFound, errors.New("drain: not supported by this daemon"))
			return
		}
		q := r.URL.Query()
		req := DrainRequest{Undrain: q.Get("undrain") == "true"}
		for _, f := range []struct {
			key string
			v   *float64
		}{{"wait", &req.WaitSeconds}, {"idle", &req.IdleSeconds}, {"idle_rate", &req.IdleRate}} {
			if s := q.Get(f.key); s != "" {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil || v < 0 || v > maxDrainWait.Seconds() {
					writeErr(w, http.StatusBadRequest, fmt.Errorf("drain: %s=%q: want a number of seconds between 0 and %v", f.key, s, maxDrainWait.Seconds()))
					return
				}
				*f.v = v
			}
		}
		res, err := d.Drain(r.Context(), req)
		if s.log != nil {
			s.log.Info("control request", "action", "drain", "undrain", req.Undrain, "err", err)
		}
		reply(w, res, err)
	})
}

// ConfigGlobalBGP is the top-level bgp section of config show.
type ConfigGlobalBGP struct {
	LANNeighbors []ConfigLANNeighbor `json:"lan_neighbors" yaml:"lan_neighbors"`
}

// ConfigLANNeighbor is one bgp.lan_neighbors entry.
type ConfigLANNeighbor struct {
	Name         string          `json:"name" yaml:"name"`
	Address      string          `json:"address" yaml:"address"`
	ASN          uint32          `json:"asn" yaml:"asn"`
	LocalAddress string          `json:"local_address,omitempty" yaml:"local_address,omitempty"`
	HoldTime     Seconds         `json:"hold_time" yaml:"hold_time"`
	Keepalive    Seconds         `json:"keepalive" yaml:"keepalive"`
	Password     string          `json:"password,omitempty" yaml:"password,omitempty"` // Redacted when set
	Import       ConfigLANImport `json:"import" yaml:"import"`
	Export       ConfigLANExport `json:"export" yaml:"export"`
}

type ConfigLANImport struct {
	Allow         []string `json:"allow,omitempty" yaml:"allow,omitempty"`
	AcceptDefault bool     `json:"accept_default" yaml:"accept_default"`
}

type ConfigLANExport struct {
	MED       uint32 `json:"med" yaml:"med"`
	LocalPref uint32 `json:"local_pref,omitempty" yaml:"local_pref,omitempty"` // iBGP only
}
