// Package bgp runs the BGP speaker of cgw: an embedded GoBGP server with one
// eBGP neighbor per AWS tunnel. It is the only package that imports GoBGP.
//
// Contract:
//
//   - Configuration is declarative. SetNeighbors and SetAdvertised take the
//     whole desired set and apply the difference; they may be called before
//     Start (the state is applied by Start) and any number of times after.
//   - Each neighbor peers from our tunnel inside address (Neighbor.LocalAddr)
//     to the AWS inside address (Neighbor.PeerAddr). The session is both
//     actively connected and passively accepted (AWS may open it), with a
//     short connect-retry so a tunnel coming up re-establishes quickly.
//   - Only locally originated prefixes (SetAdvertised) are exported; routes
//     learned from one tunnel are never re-advertised to the other. Export is
//     per neighbor: AS-path prepend (Neighbor.Prepend) and MED
//     (Neighbor.MED) implement active/passive tunnel preference.
//   - LAN neighbors (SetLAN, lan.go) are the exception: they are sent the
//     paths learned from AWS (next hop self, MED or LOCAL_PREF by tunnel
//     rank), and what they send passes an import policy and goes to every
//     AWS neighbor with that neighbor's prepend and MED.
//   - Imported paths keep the peer's next hop; paths whose AS path contains
//     our ASN are dropped (GoBGP's default loop check, RFC 4271 Section 9.1.2).
//   - SetPeerUp(name, false) tears the session down at once with a Cease /
//     Administrative Shutdown carrying the communication "tunnel down"
//     (RFC 9003); GoBGP drops that neighbor's routes as the session leaves
//     Established, and OnUpdate fires.
//   - Prefix limits are advisory: when the number of prefixes advertised to a
//     neighbor reaches 90% of Neighbor.PrefixLimitWarn the Server logs a
//     warning and reports it in NeighborStatus.Warning. It still advertises
//     every prefix; the operator must act (AWS VGW accepts 100 prefixes, TGW
//     1000, and past the limit AWS sends Cease / Maximum Number of Prefixes
//     Reached and drops the session).
//
// All methods are safe for concurrent use. OnUpdate callbacks run on a
// goroutine owned by the Server and never on a GoBGP goroutine.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/config/oc"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Config is the speaker-wide configuration.
type Config struct {
	ASN      uint32     // our (customer gateway) ASN; required
	RouterID netip.Addr // BGP identifier; required, IPv4 (RFC 4271 Section 4.2)
	// ListenPort is the TCP port to accept sessions on: 0 means 179, -1
	// disables listening (sessions are then only actively opened).
	ListenPort int
	// ListenAddresses restricts the listening sockets; empty means all
	// IPv4 and IPv6 addresses (GoBGP's 0.0.0.0 and ::).
	ListenAddresses []netip.Addr
	Logger          *slog.Logger // nil = slog.Default()
}

// Implementation constants.
const (
	defaultHoldTime     = 30 * time.Second // AWS uses 30 s (aws-vpn-facts §4)
	connectRetrySeconds = 5                // re-dial quickly when a tunnel comes up
	updateDebounce      = 25 * time.Millisecond
	tunnelDownComm      = "tunnel down"
	exportPolicyName    = "cgw-export"
	globalRIBName       = "global"
)

var errStopped = errors.New("bgp: server stopped")

// Server is the embedded BGP speaker. Create it with New.
type Server struct {
	cfg Config
	log *slog.Logger
	// srv is the GoBGP instance; SetListenAddresses replaces it (GoBGP
	// opens listeners only when it starts).
	srv atomic.Pointer[server.BgpServer]

	// ctl serializes control-plane operations. It is held while calling
	// into GoBGP, so nothing GoBGP calls back into (logger, watcher) may
	// take it.
	ctl struct {
		sync.Mutex
		started, stopped bool
		neighbors        map[string]Neighbor // by name: desired
		order            []string            // names in SetNeighbors order
		up               map[string]bool     // by name: admin state wanted; missing = up
		advWant          []netip.Prefix      // desired, masked, sorted, deduplicated
		advUUID          map[netip.Prefix][]byte
		exportKey        map[string]string // by peer address: applied export policy fingerprint
		lan              lanState
		listenWant       []netip.Addr // last SetListenAddresses after Start
		cancel           context.CancelFunc
	}

	// rt holds runtime state fed by GoBGP callbacks. It is never held
	// while calling into GoBGP.
	rt struct {
		sync.Mutex
		peers    map[string]*peerRuntime // by peer address string
		onUpdate func()
	}

	serveOnce sync.Once
	kick      chan struct{} // coalesced "something changed" signals
	done      chan struct{}
	wg        sync.WaitGroup
}

// peerRuntime is what the Server learned about one neighbor from GoBGP.
type peerRuntime struct {
	name       string
	state      string // FSM state name
	lastError  string
	freshError string // lastError not yet logged with a state change
	downReason string // GoBGP's Peer Down reason, consumed by the next state log
	warning    string // prefix-limit warning
}

// New validates cfg and creates a Server. It does not open sockets; see Start.
func New(cfg Config) (*Server, error) {
	if cfg.ASN == 0 {
		return nil, errors.New("bgp: Config.ASN is required (our ASN, e.g. 65000)")
	}
	if !cfg.RouterID.Is4() || cfg.RouterID.IsUnspecified() {
		return nil, fmt.Errorf("bgp: Config.RouterID %v must be a non-zero IPv4 address (RFC 4271 BGP Identifier)", cfg.RouterID)
	}
	if cfg.ListenPort < -1 || cfg.ListenPort > 65535 {
		return nil, fmt.Errorf("bgp: Config.ListenPort %d out of range (0 = 179, -1 = do not listen)", cfg.ListenPort)
	}
	for _, a := range cfg.ListenAddresses {
		if !a.IsValid() {
			return nil, errors.New("bgp: Config.ListenAddresses contains an invalid address")
		}
	}
	l := cfg.Logger
	if l == nil {
		l = slog.Default()
	}
	s := &Server{
		cfg:  cfg,
		log:  l,
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	s.ctl.neighbors = make(map[string]Neighbor)
	s.ctl.up = make(map[string]bool)
	s.ctl.advUUID = make(map[netip.Prefix][]byte)
	s.ctl.exportKey = make(map[string]string)
	s.rt.peers = make(map[string]*peerRuntime)
	s.srv.Store(s.newGoBGP())
	return s, nil
}

func (s *Server) newGoBGP() *server.BgpServer {
	return server.NewBgpServer(server.LoggerOption(&slogAdapter{l: s.log, observe: s.observe}))
}

func (s *Server) gobgp() *server.BgpServer { return s.srv.Load() }

// Start runs the GoBGP server, opens the listener and applies the neighbors
// and prefixes configured so far. ctx bounds the start-up calls only; the
// server runs until Stop. If the speaker itself cannot start (e.g. the port
// is taken) Start fails and may be retried; errors applying individual
// neighbors or prefixes are returned too, but the server is then running.
func (s *Server) Start(ctx context.Context) error {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.ctl.stopped {
		return errStopped
	}
	if s.ctl.started {
		return errors.New("bgp: Start called twice")
	}
	// GoBGP's Serve loop never returns; Stop shuts its peers and
	// listeners down, leaving an idle goroutine (GoBGP v3 design). Once:
	// Start may be retried after StartBgp failed.
	s.serveOnce.Do(func() { go s.gobgp().Serve() })
	if err := s.startLocked(ctx); err != nil {
		return err
	}
	s.wg.Add(1)
	go s.notifier()
	var errs []error
	if err := s.applyNeighborsLocked(ctx, nil); err != nil {
		errs = append(errs, err)
	}
	if err := s.applyAdvertisedLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.applyLANLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("bgp: started", "asn", s.cfg.ASN, "router_id", s.cfg.RouterID, "listen", s.listenString(), "neighbors", len(s.ctl.neighbors), "advertised", len(s.ctl.advWant))
	return errors.Join(errs...)
}

func (s *Server) listenPort() int {
	if s.cfg.ListenPort == 0 {
		return bgp.BGP_PORT
	}
	return s.cfg.ListenPort
}

// listenString describes the listening sockets for logs.
func (s *Server) listenString() string {
	if s.listenPort() < 0 {
		return "off"
	}
	if len(s.cfg.ListenAddresses) == 0 {
		return fmt.Sprintf("all addresses, port %d", s.listenPort())
	}
	var parts []string
	for _, a := range s.cfg.ListenAddresses {
		parts = append(parts, netip.AddrPortFrom(a, uint16(s.listenPort())).String())
	}
	return strings.Join(parts, " ")
}

// startLocked starts the current GoBGP instance with the listeners of
// s.cfg and watches its events. Caller holds s.ctl.
func (s *Server) startLocked(ctx context.Context) error {
	listen := s.listenPort()
	g := &api.Global{
		Asn:        s.cfg.ASN,
		RouterId:   s.cfg.RouterID.String(),
		ListenPort: int32(listen),
		// Families holds GoBGP's AfiSafiType indexes, not AFI/SAFI.
		Families: []uint32{
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV4_UNICAST]),
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV6_UNICAST]),
		},
	}
	for _, a := range s.cfg.ListenAddresses {
		g.ListenAddresses = append(g.ListenAddresses, a.String())
	}
	if err := s.gobgp().StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		return fmt.Errorf("bgp: start (ASN %d, router ID %v, listen %s): %w", s.cfg.ASN, s.cfg.RouterID, s.listenString(), err)
	}

	wctx, cancel := context.WithCancel(context.Background())
	req := &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST},
		}},
	}
	if err := s.gobgp().WatchEvent(wctx, req, s.onEvent); err != nil {
		cancel()
		s.gobgp().Stop()
		return fmt.Errorf("bgp: watch events: %w", err)
	}
	s.ctl.cancel = cancel
	s.ctl.started = true
	return nil
}

// SetListenAddresses sets the listening sockets to addrs (the tunnels'
// inside addresses; empty = all addresses). The addresses must exist on
// the host when the listeners open. Before Start it only records them.
// After Start, GoBGP cannot open a listener without restarting (which
// resets every session), so a change is applied without one where it can
// be (see listenChangeLocked); restarted reports whether the speaker had
// to restart all the same.
func (s *Server) SetListenAddresses(addrs []netip.Addr) (restarted bool, err error) {
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	for _, a := range addrs {
		if !a.IsValid() {
			return false, errors.New("bgp: SetListenAddresses: invalid address")
		}
	}
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.ctl.stopped {
		return false, errStopped
	}
	if !s.ctl.started {
		s.cfg.ListenAddresses = addrs
		return false, nil
	}
	if !s.listenChangeLocked(addrs) {
		return false, nil
	}
	s.cfg.ListenAddresses = addrs
	if s.ctl.cancel != nil {
		s.ctl.cancel()
	}
	s.ctl.started = false
	s.gobgp().Stop()
	ns := s.newGoBGP()
	s.srv.Store(ns)
	go ns.Serve()
	clear(s.ctl.exportKey)
	clear(s.ctl.advUUID)
	clear(s.ctl.lan.added)
	ctx := context.Background()
	if err := s.startLocked(ctx); err != nil {
		s.ctl.listenWant = nil // the next reload tries again
		return true, fmt.Errorf("%w (the speaker is stopped; fix the addresses and reload)", err)
	}
	return true, errors.Join(s.applyNeighborsLocked(ctx, nil), s.applyAdvertisedLocked(ctx), s.applyLANLocked(ctx))
}

// Stop closes every session (Cease / Peer De-configured), the listeners and
// the notifier goroutine. It is idempotent; the Server cannot be restarted.
func (s *Server) Stop() {
	s.ctl.Lock()
	if s.ctl.stopped {
		s.ctl.Unlock()
		return
	}
	s.ctl.stopped = true
	started := s.ctl.started
	if s.ctl.cancel != nil {
		s.ctl.cancel()
	}
	s.ctl.Unlock()
	if started {
		s.gobgp().Stop()
	}
	close(s.done)
	s.wg.Wait()
	s.log.Info("bgp: stopped")
}

// OnUpdate registers f to be called after the learned RIB or a neighbor
// state changed. Calls are debounced (about 100 ms), serialized, and made on
// a Server goroutine; f may call Learned and Status. A nil f unregisters.
func (s *Server) OnUpdate(f func()) {
	s.rt.Lock()
	s.rt.onUpdate = f
	s.rt.Unlock()
}

// changed schedules an OnUpdate call without ever blocking.
func (s *Server) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// notifier is the only goroutine that calls the OnUpdate callback.
func (s *Server) notifier() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-s.done:
			t.Stop()
			return
		case <-s.kick:
			// Let a burst (a full table, a session flap) settle.
			t.Reset(updateDebounce)
			select {
			case <-s.done:
				t.Stop()
				return
			case <-t.C:
			}
			// Kicks that arrived during the wait are covered by
			// this call.
			select {
			case <-s.kick:
			default:
			}
			s.rt.Lock()
			f := s.rt.onUpdate
			s.rt.Unlock()
			if f != nil {
				f()
			}
		}
	}
}

// onEvent receives GoBGP watch events on GoBGP's watcher goroutine. It only
// updates runtime state, logs, and kicks the notifier.
func (s *Server) onEvent(r *api.WatchEventResponse) {
	switch ev := r.Event.(type) {
	case *api.WatchEventResponse_Table:
		s.changed()
	case *api.WatchEventResponse_Peer:
		p := ev.Peer.GetPeer()
		if p.GetState() == nil {
			return
		}
		if s.peerState(p.State.NeighborAddress, stateName(p.State.SessionState)) {
			s.changed()
		}
	}
}

// peerState records a neighbor FSM state and logs the transition with its
// reason, one line each. It reports whether the state changed.
func (s *Server) peerState(addr, state string) bool {
	s.rt.Lock()
	p, ok := s.rt.peers[addr]
	if !ok || p.state == state {
		s.rt.Unlock()
		return false
	}
	from, name, reason, fresh := p.state, p.name, p.downReason, p.freshError
	p.state = state
	p.downReason, p.freshError = "", ""
	s.rt.Unlock()

	attrs := []any{"neighbor", name, "peer", addr, "from", from, "to", state}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	if fresh != "" {
		attrs = append(attrs, "error", fresh)
	}
	switch {
	case from == "Established":
		s.log.Warn("bgp: session down", attrs...)
	case state == "Established":
		s.log.Info("bgp: session established", attrs...)
	case fresh != "":
		s.log.Warn("bgp: neighbor state", attrs...)
	default:
		s.log.Info("bgp: neighbor state", attrs...)
	}
	return true
}

// observe sees every GoBGP log message (see slogAdapter) and keeps the
// diagnostics GoBGP's API does not expose: the last NOTIFICATION sent or
// received and the reason a session went down. GoBGP v3.37.0's peer
// events carry only the session and admin state, so the message texts and
// fields read here are pinned by TestGoBGPSessionFacts against real
// sessions (hold timer expiry, NOTIFICATION received, admin shutdown).
func (s *Server) observe(msg string, f gobgplog.Fields) {
	var text string
	isReason := false
	switch msg {
	case "received notification":
		text = "received NOTIFICATION " + notificationFields(f)
	case "sent notification":
		text = "sent NOTIFICATION " + notificationFields(f)
	case "hold timer expired":
		text = "hold timer expired"
	case "Peer Down":
		text, _ = f["Reason"].(string)
		isReason = true
	default:
		return
	}
	addr, _ := f["Key"].(string)
	s.rt.Lock()
	defer s.rt.Unlock()
	p, ok := s.rt.peers[addr]
	if !ok {
		return
	}
	if isReason {
		p.downReason = text
		return
	}
	p.lastError, p.freshError = text, text
}

// notificationFields names the NOTIFICATION in GoBGP's log fields, which
// carry either Code/Subcode (and an RFC 9003 shutdown communication) or,
// for errors GoBGP detected itself, a *bgp.MessageError in Data.
func notificationFields(f gobgplog.Fields) string {
	if code, ok := f["Code"].(uint8); ok {
		sub, _ := f["Subcode"].(uint8)
		text := notificationName(code, sub)
		if c, _ := f["Communicated-Reason"].(string); c != "" {
			text += fmt.Sprintf(" (%q)", c)
		}
		return text
	}
	switch d := f["Data"].(type) {
	case *bgp.MessageError:
		return notificationName(d.TypeCode, d.SubTypeCode) + ": " + d.Message
	case *bgp.BGPMessage:
		return describeMessage(d)
	}
	return "(unknown)"
}

// stateName maps GoBGP's session state to the RFC 4271 Section 8.2.2 name.
func stateName(st api.PeerState_SessionState) string {
	switch st {
	case api.PeerState_IDLE:
		return "Idle"
	case api.PeerState_CONNECT:
		return "Connect"
	case api.PeerState_ACTIVE:
		return "Active"
	case api.PeerState_OPENSENT:
		return "OpenSent"
	case api.PeerState_OPENCONFIRM:
		return "OpenConfirm"
	case api.PeerState_ESTABLISHED:
		return "Established"
	}
	return "Idle"
}
