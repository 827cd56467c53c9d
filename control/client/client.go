// Package client is the typed client of cgwd's control socket, used by
// cgwctl and the end-to-end tests. A Client is safe for concurrent use.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cgwproject/cgw/control"
)

// DefaultSocket is where cgwd listens unless control.socket says otherwise.
const DefaultSocket = "/run/cgw/cgw.sock"

// Client talks to one cgwd.
type Client struct {
	socket string
	hc     *http.Client
	stream *http.Client // no overall timeout: the events stream lasts
}

// New returns a client for the socket at path.
func New(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{socket: path, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}, stream: &http.Client{Transport: tr}}
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := "http://cgwd/" + control.APIVersion + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return apiError(resp, body)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// unreachable explains a failed request: usually no cgwd on the socket.
func (c *Client) unreachable(err error) error {
	var ne *net.OpError
	if errors.As(err, &ne) {
		return fmt.Errorf("cannot reach cgwd at %s: %v (is cgwd running, and is this the socket set in control.socket? use --socket)", c.socket, ne.Err)
	}
	return fmt.Errorf("cannot reach cgwd at %s: %w", c.socket, err)
}

func apiError(resp *http.Response, body []byte) error {
	var e control.Error
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return fmt.Errorf("cgwd answered %s", resp.Status)
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*control.Status, error) {
	var st control.Status
	return &st, c.do(ctx, http.MethodGet, "/status", nil, &st)
}

// TunnelUp initiates the tunnel.
func (c *Client) TunnelUp(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/tunnels/"+url.PathEscape(name)+"/up", nil, nil)
}

// TunnelDown deletes the tunnel's SAs and keeps it down until TunnelUp.
func (c *Client) TunnelDown(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/tunnels/"+url.PathEscape(name)+"/down", nil, nil)
}

// Rekey rekeys the tunnel's CHILD SA, or its IKE SA when ike is set.
func (c *Client) Rekey(ctx context.Context, name string, ike bool) error {
	q := url.Values{}
	if ike {
		q.Set("ike", "true")
	}
	return c.do(ctx, http.MethodPost, "/tunnels/"+url.PathEscape(name)+"/rekey", q, nil)
}

// Reload re-reads the configuration file and applies the difference.
func (c *Client) Reload(ctx context.Context) (*control.ReloadResult, error) {
	var r control.ReloadResult
	return &r, c.do(ctx, http.MethodPost, "/reload", nil, &r)
}

// Diagnose runs the troubleshooting checklist for one tunnel, or all if empty.
func (c *Client) Diagnose(ctx context.Context, tunnel string) (*control.Diagnosis, error) {
	q := url.Values{}
	if tunnel != "" {
		q.Set("tunnel", tunnel)
	}
	var d control.Diagnosis
	return &d, c.do(ctx, http.MethodGet, "/diagnose", q, &d)
}

// BGPRoutes returns one table (control.RouteTables; "" = received) of every
// BGP tunnel, or of the named tunnel if not empty.
func (c *Client) BGPRoutes(ctx context.Context, table, tunnel string) (*control.BGPRoutes, error) {
	q := url.Values{}
	if table != "" {
		q.Set("table", table)
	}
	if tunnel != "" {
		q.Set("tunnel", tunnel)
	}
	var r control.BGPRoutes
	return &r, c.do(ctx, http.MethodGet, "/bgp/routes", q, &r)
}

// ReloadDryRun reports what Reload would change, applying nothing.
func (c *Client) ReloadDryRun(ctx context.Context) (*control.ReloadResult, error) {
	var r control.ReloadResult
	return &r, c.do(ctx, http.MethodPost, "/reload", url.Values{"dry_run": {"true"}}, &r)
}

// EffectiveConfig returns the daemon's effective configuration, secrets redacted.
func (c *Client) EffectiveConfig(ctx context.Context) (*control.ConfigDoc, error) {
	var d control.ConfigDoc
	return &d, c.do(ctx, http.MethodGet, "/config", nil, &d)
}

// Events streams the daemon's state changes to fn, one call per event, as
// they happen, until ctx is done (it returns nil), fn fails (its error) or
// cgwd closes the stream.
func (c *Client) Events(ctx context.Context, fn func(control.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://cgwd/"+control.APIVersion+"/events", nil)
	if err != nil {
		return err
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return apiError(resp, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev control.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("events: bad line from cgwd: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return errors.New("cgwd closed the event stream (shutting down?)")
}

// Drain drains this gateway (undrain with req.Undrain) and reports when
// the traffic moved; the wait is bounded by req.WaitSeconds on the daemon.
func (c *Client) Drain(ctx context.Context, req control.DrainRequest) (*control.DrainResult, error) {
	q := url.Values{}
	if req.Undrain {
		q.Set("undrain", "true")
	}
	for k, v := range map[string]float64{"wait": req.WaitSeconds, "idle": req.IdleSeconds, "idle_rate": req.IdleRate} {
		if v > 0 {
			q.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	var r control.DrainResult
	return &r, c.do(ctx, http.MethodPost, "/drain", q, &r)
}
