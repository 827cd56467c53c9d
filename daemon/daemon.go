// Package daemon is cgw's composition root. It builds every component from
// the configuration file and wires them together:
//
//   - dataplane.Engine owns the UDP sockets and TUN devices; it hands IKE
//     packets to ike.Manager and implements ike.SAInstaller and ike.Sender;
//   - ike.Manager negotiates the SAs and reports state changes here
//     (ike.Listener), which take the tunnel's BGP neighbor up or down and
//     recompute the kernel routes;
//   - bgp.Server learns the AWS prefixes; route.Router installs them;
//   - control.Server serves cgwctl; an optional Prometheus endpoint exports
//     the same snapshot as `cgwctl status`.
//
// A Daemon is driven by Run; its exported methods are safe for concurrent
// use (the control socket calls them).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cgwproject/cgw/bgp"
	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/dataplane"
	"github.com/cgwproject/cgw/dataplane/route"
	dptun "github.com/cgwproject/cgw/dataplane/tun"
	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/internal/clock"
	"github.com/cgwproject/cgw/ipsec"
)

// Options are the process-level settings of a Daemon.
type Options struct {
	ConfigPath string
	Version    string
	Stderr     io.Writer // log output; os.Stderr when nil
	// ListenIKE and ListenNATT override the UDP ports (tests); 0 = 500/4500.
	ListenIKE, ListenNATT uint16
}

// Overall tunnel states of `cgwctl status`.
const (
	stateUp          = "up"
	stateDown        = "down"
	stateNegotiating = "negotiating"
)

// Daemon is one running cgwd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	level   *slog.LevelVar
	started time.Time

	hashOnce sync.Once // multipathHashPolicy, at the first multipath route

	mu      sync.Mutex // guards the fields below
	cfg     *config.Config
	conns   []*connRT
	tunnels map[string]*tunnelRT
	routes  []route.Route // last set installed

	// evMu guards events only. OnEvent runs on IKE's peer goroutines, which
	// the daemon waits for (RemovePeer in stopTunnel on reload and
	// shutdown), so it stays independent of mu and never blocks.
	evMu   sync.Mutex
	events []ike.Event // queued by OnEvent, drained by the loop

	dp       *dataplane.Engine
	ikeCount *ikeCounting
	ikm      *ike.Manager
	bgp      *bgp.Server
	router   routeSetter

	hub       eventHub          // cgwctl events subscribers
	bgpStates map[string]string // neighbor FSM states last published; daemon loop only
	lan       lanRT             // guarded by mu

	wake     chan struct{} // events queued or routes to recompute
	reloadCh chan chan reloadReply

	// createTUN creates a tunnel's device (dptun.Create; tests replace it).
	createTUN func(name string, mtu int, addr netip.Prefix) (dptun.Device, error)
	// addTUNAddr adds an IPv6-inside tunnel's /126 (dptun.AddAddress).
	addTUNAddr func(name string, addr netip.Prefix) error
}

type routeSetter interface {
	Set([]route.Route) error
	SetPeers([]netip.Addr) error
	Foreign(within []netip.Prefix, skipDevs []string) ([]netip.Prefix, error)
	Close() error
}

type reloadReply struct {
	res *control.ReloadResult
	err error
}

type connRT struct {
	cfg     *config.Connection
	tunnels []*tunnelRT
	imports importResult            // BGP: what the import policy made of the learned prefixes
	logged  map[filteredPrefix]bool // filtered prefixes already logged
}

// tunnelRT is the daemon's view of one tunnel. Guarded by Daemon.mu.
type tunnelRT struct {
	conn *connRT
	cfg  *config.Tunnel
	rank int // 0 = preferred
	dev  string
	tun  dptun.Device
	mtu  int

	// ikeState and childState follow IKE's events; status reports IKE's
	// own view (ike.PeerStatus) whenever IKE runs.
	ikeState, childState ike.State
	changed              time.Time
	adminDown            bool
	nat                  bool
	lastErr              string
	lastErrAt            time.Time
	keepalive            *keepalive
	sources              []netip.Prefix // inner sources given to the dataplane
	srcStrict            bool
	bgpGraceUntil        time.Time // see reconnectGrace

	counts eventCounts
}

// eventCounts are monotonic counters derived from IKE events.
type eventCounts struct {
	childRekeys, ikeRekeys, dpdMisses uint64
	failures                          map[string]uint64
	lastNotify                        string // notify of the last failure ("" = none)
}

// New loads and validates the configuration. It starts nothing: a bad file
// yields an error naming every problem, and no half-started daemon.
func New(opts Options) (*Daemon, error) {
	cfg, warns, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if err := checkDaemonLimits(cfg); err != nil {
		return nil, err
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	d := &Daemon{
		opts:      opts,
		level:     new(slog.LevelVar),
		cfg:       cfg,
		tunnels:   map[string]*tunnelRT{},
		wake:      make(chan struct{}, 1),
		reloadCh:  make(chan chan reloadReply),
		createTUN: dptun.Create,
	}
	d.addTUNAddr = dptun.AddAddress
	d.level.Set(cfg.Log.Level)
	d.log = newLogger(opts.Stderr, cfg.Log.Format, d.level)
	for _, w := range warns {
		d.log.Warn(w.String())
	}
	return d, nil
}

// checkDaemonLimits rejects configurations the file schema allows but this
// daemon cannot run.
func checkDaemonLimits(cfg *config.Config) error {
	var errs []error
	n := 0
	for _, c := range cfg.Connections {
		n += len(c.Tunnels)
	}
	if n > maxTunnels {
		errs = append(errs, &config.FieldError{File: cfg.Source, Path: "connections",
			Msg: fmt.Sprintf("%d tunnels configured, at most %d supported", n, maxTunnels), Fix: "split the connections over several cgwd instances"})
	}
	return errors.Join(errs...)
}

// maxTunnels bounds one cgwd: 200 tunnels (100 connections) are measured
// by `make bench-scale` (docs/scale.md).
const maxTunnels = 256

func newLogger(w io.Writer, f config.LogFormat, lv *slog.LevelVar) *slog.Logger {
	ho := &slog.HandlerOptions{Level: lv}
	if f == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// Config returns the configuration in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Run brings everything up, calls ready, and serves until ctx is done. It
// then deletes the SAs, removes every route it installed and closes the
// devices.
func (d *Daemon) Run(ctx context.Context, ready func()) (err error) {
	d.started = time.Now()
	cfg := d.Config()
	d.log.Info("cgwd starting", "version", d.opts.Version, "config", cfg.Source, "connections", len(cfg.Connections))

	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		d.log.Info("cgwd stopped")
	}()

	d.dp = dataplane.New(dataplane.Config{Logger: d.log})
	closers = append(closers, func() { d.dp.Close() })
	ikePort, nattPort := d.opts.ListenIKE, d.opts.ListenNATT
	if ikePort == 0 {
		ikePort = 500
	}
	if nattPort == 0 {
		nattPort = 4500
	}
	// Mark cgwd's own packets before the first is sent: the route policy
	// rules keep them away from the routes cgw installs.
	if err := d.dp.SetFwMark(cfg.Routes.FwMark); err != nil {
		return fmt.Errorf("routes.fwmark: %w (cgwd needs CAP_NET_ADMIN)", err)
	}
	if err := d.dp.Listen(ikePort, nattPort); err != nil {
		return fmt.Errorf("listen on UDP %d/%d: %w (%s)", ikePort, nattPort, err, listenHint(err))
	}

	// Claim the control socket before touching kernel routes, so a second
	// cgwd started by mistake fails here without flushing the running
	// one's routes.
	srv, err := control.Listen(cfg.Control.Socket, d, d.log.With("component", "control"))
	if err != nil {
		return err
	}
	closers = append(closers, func() { srv.Close() })

	rt, err := route.New(routerConfig(cfg.Routes, d.log))
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	d.router = rt
	closers = append(closers, func() {
		if err := rt.Close(); err != nil {
			d.log.Error("removing routes on shutdown", "err", err)
		} else {
			d.log.Info("removed all routes cgw installed")
		}
	})

	d.startIKE()
	closers = append(closers, func() { d.ikm.Close() })
	if stop, err := d.watchAddresses(); err != nil {
		d.log.Warn("tunnels without local_address will not follow address changes at once", "err", err)
	} else {
		closers = append(closers, stop)
	}

	// BGP stops after the tunnels are removed (closers run in reverse),
	// as before; it starts after they exist, since it listens on their
	// inside addresses only.
	closers = append(closers, func() {
		if d.bgp != nil {
			d.bgp.Stop()
		}
	})
	for i := range cfg.Connections {
		c, err := d.addConn(&cfg.Connections[i])
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	closers = append(closers, d.removeAllTunnels)
	if err := d.startBGP(ctx, bgpConfig(cfg)); err != nil {
		return err
	}

	go srv.Serve()

	if cfg.Metrics.Listen != "" {
		ln, err := d.serveMetrics(cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics: listen on %s: %w (set metrics.listen to a free address)", cfg.Metrics.Listen, err)
		}
		closers = append(closers, func() { ln.Close() })
		d.log.Info("metrics listening", "addr", ln.Addr().String())
	}

	d.log.Info("cgwd ready", "control", cfg.Control.Socket)
	if ready != nil {
		ready()
	}
	return d.loop(ctx)
}

// startIKE creates the IKE manager and connects it to the dataplane: IKE
// packets in and out (counted), soft expiry to CHILD rekeys, NAT
// rebinding to the peer's new address.
func (d *Daemon) startIKE() {
	d.ikeCount = newIKECounting(d.dp)
	d.ikm = ike.NewManager(ike.Config{
		Sender:    d.ikeCount,
		Installer: d.dp,
		Listener:  d,
		Clock:     clock.Real{},
		Logger:    d.log.With("component", "ike"),
	})
	d.dp.SetIKEHandler(d.ikeCount.received(d.ikm.HandlePacket))
	d.dp.SetSoftExpireHandler(func(tunnel string, _ ipsec.SPI) {
		go d.ikm.Rekey(tunnel, false)
	})
	// ESP follows the peer's NAT rebinding at once; IKE follows on its
	// next authenticated message from the new endpoint.
	d.dp.SetMappingHandler(func(tunnel string, oldRemote, newRemote netip.AddrPort) {
		d.log.Info("NAT mapping of the peer changed: ESP now goes to "+newRemote.String()+" (was "+oldRemote.String()+")", "tunnel", tunnel)
		// IKE follows too, so its next DPD or rekey reaches the peer.
		if err := d.ikm.PeerMoved(tunnel, newRemote); err != nil {
			d.log.Warn("IKE could not follow the peer's new address", "tunnel", tunnel, "err", err)
		}
	})
}

// loop is the daemon's owner goroutine: it applies IKE events and BGP
// updates to tunnel state and routes, and runs reloads.
func (d *Daemon) loop(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.log.Info("shutting down", "reason", context.Cause(ctx))
			// No rekey, DPD or retry starts while the tunnels are removed.
			d.ikm.Quiesce()
			return nil
		case <-d.wake:
			d.drainEvents()
			d.syncRoutes()
			d.observeBGP()
		case <-tick.C:
			// Reconcile periodically so a route removed by hand comes back,
			// and pick up kernel routes to announce (bgp.advertise_kernel).
			d.syncRoutes()
			d.observeReconcileBGP()
			d.syncAdvertised()
		case reply := <-d.reloadCh:
			res, err := d.reload()
			reply <- reloadReply{res, err}
			d.syncRoutes()
		}
	}
}

func (d *Daemon) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// OnEvent implements ike.Listener. It never blocks: the event is queued for
// the daemon loop.
func (d *Daemon) OnEvent(ev ike.Event) {
	d.evMu.Lock()
	d.events = append(d.events, ev)
	d.evMu.Unlock()
	d.kick()
}

func (d *Daemon) drainEvents() {
	d.evMu.Lock()
	evs := d.events
	d.events = nil
	d.evMu.Unlock()
	for _, ev := range evs {
		d.applyEvent(ev)
	}
}

// applyEvent updates one tunnel from an IKE event and ties BGP to it: the
// neighbor is enabled only while the CHILD SA is up, so a dead tunnel's
// routes disappear at once instead of after the 30 s hold time.
func (d *Daemon) applyEvent(ev ike.Event) {
	d.mu.Lock()
	t := d.tunnels[ev.Peer]
	if t == nil {
		d.mu.Unlock()
		return
	}
	wasChildUp := t.childUp()
	now := time.Now()
	switch ev.Kind {
	case ike.EventIKEUp:
		t.ikeState = ike.StateEstablished
	case ike.EventIKERekeyed:
		t.ikeState = ike.StateEstablished
		t.counts.ikeRekeys++
	case ike.EventIKEDown, ike.EventPeerDead:
		t.ikeState, t.childState = ike.StateDown, ike.StateDown
	case ike.EventChildUp:
		t.childState = ike.StateEstablished
		d.setTunnelMTULocked(t, ev.Alg)
	case ike.EventChildRekeyed:
		t.childState = ike.StateEstablished
		t.counts.childRekeys++
		// A rekey may change the algorithms (AWS picks from our proposals
		// on its own rekeys), and with them the ESP overhead.
		d.setTunnelMTULocked(t, ev.Alg)
	case ike.EventChildDown:
		t.childState = ike.StateDown
	case ike.EventDPDMiss:
		t.counts.dpdMisses++
	case ike.EventNegotiationFailed:
		if t.ikeState == ike.StateDown {
			t.ikeState = ike.StateNegotiating
		}
		t.lastErr, t.lastErrAt = ev.Reason, now
		if t.counts.failures == nil {
			t.counts.failures = map[string]uint64{}
		}
		t.counts.failures[ev.Notify.String()]++
		t.counts.lastNotify = ""
		if ev.Notify != 0 {
			t.counts.lastNotify = ev.Notify.String()
		}
	case ike.EventNATDetected:
		t.nat = true
	}
	isChildUp := t.childUp()
	if wasChildUp != isChildUp {
		t.changed = now
	}
	name := t.cfg.Name
	bgpOn := d.bgp != nil && t.conn.cfg.BGP != nil
	grace := !isChildUp && t.inReconnectGrace(now)
	graceLeft := t.bgpGraceUntil.Sub(now)
	if isChildUp {
		t.bgpGraceUntil = time.Time{}
	}
	d.mu.Unlock()

	typ, what := ikeEvent(ev.Kind)
	d.hub.publish(control.Event{Time: now, Type: typ, Tunnel: name, Event: what, Detail: ev.Reason})
	if wasChildUp != isChildUp {
		if isChildUp {
			d.log.Info("tunnel up: CHILD SA installed, traffic can flow", "tunnel", name, "reason", ev.Reason)
			d.hub.publish(control.Event{Time: now, Type: control.EventTunnel, Tunnel: name, Event: "up", Detail: "CHILD SA installed, traffic can flow"})
		} else if grace {
			d.log.Warn("tunnel down: no CHILD SA while it re-establishes from the new address", "tunnel", name, "reason", ev.Reason)
			d.hub.publish(control.Event{Time: now, Type: control.EventTunnel, Tunnel: name, Event: "down", Detail: "no CHILD SA while it re-establishes from the new address; routes and BGP kept"})
		} else {
			d.log.Warn("tunnel down: no CHILD SA, routes through it withdrawn", "tunnel", name, "reason", ev.Reason)
			d.hub.publish(control.Event{Time: now, Type: control.EventTunnel, Tunnel: name, Event: "down", Detail: "no CHILD SA, routes through it withdrawn"})
		}
		if grace {
			d.log.Info("keeping the BGP session and routes while the tunnel re-establishes from the new address", "tunnel", name, "grace", graceLeft.Round(time.Millisecond))
			time.AfterFunc(graceLeft, func() { d.endReconnectGrace(name) })
		} else if bgpOn {
			if err := d.bgp.SetPeerUp(name, isChildUp); err != nil {
				d.log.Error("bgp: cannot change neighbor state", "tunnel", name, "up", isChildUp, "err", err)
			}
		}
	}
}

// setTunnelMTULocked gives the dataplane the tunnel MTU of the algorithms
// now in use, so every ESP packet fits the outside path without outer
// fragmentation (which AWS does not reassemble). Caller must hold d.mu.
func (d *Daemon) setTunnelMTULocked(t *tunnelRT, alg ipsec.Algorithms) {
	encap := true
	if d.dp != nil {
		if e, ok := d.dp.TunnelEncap(t.cfg.Name); ok {
			encap = e
		}
	}
	m := negotiatedMTU(t.cfg, alg, encap)
	if m == t.mtu || t.tun == nil {
		return
	}
	if err := d.dp.SetTunnelMTU(t.cfg.Name, m); err != nil {
		d.log.Warn("cannot set tunnel MTU", "tunnel", t.cfg.Name, "mtu", m, "err", err)
		return
	}
	d.log.Info("tunnel MTU follows the negotiated algorithms", "tunnel", t.cfg.Name, "mtu", m, "was", t.mtu)
	t.mtu = m
}

func (t *tunnelRT) childUp() bool {
	return t.childState == ike.StateEstablished || t.childState == ike.StateRekeying
}

func listenHint(err error) string {
	switch {
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		return "cgwd needs CAP_NET_BIND_SERVICE for UDP 500/4500 and CAP_NET_ADMIN for the sockets' firewall mark; run it as root or grant both"
	case errors.Is(err, syscall.EADDRINUSE):
		return "another IKE daemon such as charon holds the port: stop it"
	default:
		return "is another IKE daemon such as charon running?"
	}
}
