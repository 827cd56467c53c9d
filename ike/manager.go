package ike

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/internal/clock"
)

// Config wires a Manager to the rest of the daemon. Sender and Installer are
// required; the others have defaults (no listener, the real clock,
// slog.Default, crypto/rand).
type Config struct {
	Sender    Sender
	Installer SAInstaller
	Listener  Listener
	Clock     clock.Clock
	Logger    *slog.Logger
	Rand      io.Reader
	// CookieThreshold is the number of half-open IKE SAs (responder side,
	// all peers) from which new IKE_SA_INIT requests must carry a COOKIE
	// (RFC 7296, Section 2.6). 0 means 32; negative disables cookies.
	CookieThreshold int
}

// Manager is the IKEv2 SA manager. It owns one goroutine per peer (tunnel);
// that goroutine owns the peer's IKE SAs, their task managers and timers.
// All methods are safe for concurrent use, but they must not be called from
// a Listener callback for the same peer (the callback runs on the peer's
// goroutine, and the control methods wait for it).
type Manager struct {
	cfg   Config
	log   *slog.Logger
	clock clock.Clock
	rand  *lockedReader

	mu struct {
		sync.Mutex
		peers    map[string]*peer
		byAddr   map[netip.Addr]*peer
		bySPI    map[uint64]*peer
		halfOpen int
		closed   bool
	}
	guard initGuard

	// nonceHook, when set (tests only, see export_test.go), may rewrite
	// every nonce we generate; initiator tells which role of the exchange.
	nonceHook atomic.Pointer[func(initiator bool, nonce []byte)]

	quiesced   atomic.Bool   // see Quiesce
	unknownSPI atomic.Uint64 // packets for IKE SAs we do not have
	malformed  atomic.Uint64 // packets whose header did not parse
	overflow   atomic.Uint64 // packets dropped because a peer's queue was full
	// resendLimited counts retransmitted (or replayed) requests whose
	// cached response was not re-sent because of the rate limit.
	resendLimited atomic.Uint64
	cookieSent    atomic.Uint64 // IKE_SA_INIT requests answered with a COOKIE
	invalidKE     atomic.Uint64 // IKE_SA_INIT requests with an unusable KE value
	initFailed    atomic.Uint64 // peer-started IKE SAs failed before authenticating
	frag          fragCounters  // IKE fragments dropped, by reason; octets held
}

// lockedReader serialises a caller-supplied random source shared by the
// peer goroutines.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.ReadFull(l.r, b)
}

// NewManager returns a Manager with no peers.
func NewManager(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Listener == nil {
		cfg.Listener = nopListener{}
	}
	if cfg.CookieThreshold == 0 {
		cfg.CookieThreshold = defaultCookieHalf
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, rand: &lockedReader{r: cfg.Rand}}
	m.mu.peers = map[string]*peer{}
	m.mu.byAddr = map[netip.Addr]*peer{}
	m.mu.bySPI = map[uint64]*peer{}
	return m
}

type nopListener struct{}

func (nopListener) OnEvent(Event) {}

// AddPeer validates pc and starts its goroutine; with StartInitiate it
// initiates the IKE SA at once.
func (m *Manager) AddPeer(pc PeerConfig) error {
	if m.cfg.Sender == nil || m.cfg.Installer == nil {
		return fmt.Errorf("ike: Manager has no Sender or Installer; set them in Config")
	}
	cfg, err := validate(pc)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return fmt.Errorf("ike: Manager is closed")
	}
	if _, ok := m.mu.peers[cfg.Name]; ok {
		m.mu.Unlock()
		return fmt.Errorf("ike: peer %q already exists; remove it first or pick another name", cfg.Name)
	}
	if other, ok := m.mu.byAddr[cfg.RemoteAddr]; ok {
		m.mu.Unlock()
		return fmt.Errorf("ike: peer %q: RemoteAddr %s is already used by peer %q; each AWS tunnel has its own outside IP", cfg.Name, cfg.RemoteAddr, other.cfg.Name)
	}
	p := newPeer(m, cfg)
	m.mu.peers[cfg.Name] = p
	m.mu.byAddr[cfg.RemoteAddr] = p
	m.mu.Unlock()
	go p.run()
	if cfg.StartAction == StartInitiate {
		return p.call(func() error { p.wantUp = true; p.initiate("startup action initiate"); return nil })
	}
	return p.call(func() error { p.publish(); return nil })
}

// RemovePeer deletes the peer's SAs (a DELETE is sent, not waited for),
// removes its CHILD SAs from the dataplane and stops its goroutine.
func (m *Manager) RemovePeer(name string) error {
	m.mu.Lock()
	p, ok := m.mu.peers[name]
	if ok {
		delete(m.mu.peers, name)
		delete(m.mu.byAddr, p.cfg.RemoteAddr)
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("ike: no peer named %q", name)
	}
	p.stop(true)
	return nil
}

func (m *Manager) peer(name string) (*peer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.mu.peers[name]
	if !ok {
		return nil, fmt.Errorf("ike: no peer named %q", name)
	}
	return p, nil
}

// Initiate brings the peer's tunnel up (if it is not already) and keeps
// retrying with backoff until it is.
func (m *Manager) Initiate(name string) error {
	p, err := m.peer(name)
	if err != nil {
		return err
	}
	return p.call(func() error {
		p.wantUp = true
		p.retryAttempt = 0
		if p.retryTimer != nil {
			p.retryTimer.Stop()
			p.retryTimer = nil
		}
		if p.ike == nil || !p.ike.alive() {
			p.initiate("operator request")
		} else if p.ike.state == ikeEstablished && p.ike.activeChild() == nil && !p.ike.tm.hasQueued(taskChildCreate) {
			p.ike.tm.queue(newChildCreate(p.ike, true))
		}
		return nil
	})
}

// Terminate deletes the peer's IKE SA (and so its CHILD SAs) and stops
// re-initiating until Initiate is called.
func (m *Manager) Terminate(name string) error {
	p, err := m.peer(name)
	if err != nil {
		return err
	}
	return p.call(func() error {
		p.wantUp = false
		if p.retryTimer != nil {
			p.retryTimer.Stop()
			p.retryTimer = nil
		}
		for _, sa := range p.sortedSAs() {
			p.deleteIKESA(sa, "terminated by the operator")
		}
		return nil
	})
}

// Rekey starts a rekey of the peer's IKE SA (ike) or CHILD SA (!ike).
// PeerMoved tells IKE that authenticated ESP of the tunnel now arrives from
// remote: the peer's NAT rebound while only ESP flowed. IKE follows at once,
// so its next request (DPD, rekey) reaches the peer instead of the stale
// mapping. As with an authenticated IKE message from a new address (RFC
// 7296, Section 2.23), this applies only to UDP-encapsulated IKE SAs.
func (m *Manager) PeerMoved(name string, remote netip.AddrPort) error {
	p, err := m.peer(name)
	if err != nil {
		return err
	}
	return p.call(func() error {
		if sa := p.ike; sa != nil && sa.state == ikeEstablished && sa.encap {
			sa.updateEndpoints(netip.AddrPort{}, remote)
		}
		return nil
	})
}

// Rekey starts a rekey of the peer's IKE SA (ike) or CHILD SA. A CHILD SA
// that is the peer's unfinished replacement of the old one (the peer has
// not deleted the old SA yet) is rekeyed once that exchange ends.
func (m *Manager) Rekey(name string, ike bool) error {
	p, err := m.peer(name)
	if err != nil {
		return err
	}
	if m.quiesced.Load() {
		return errQuiesced
	}
	return p.call(func() error {
		sa := p.ike
		if sa == nil || sa.state != ikeEstablished {
			return fmt.Errorf("ike: peer %q has no established IKE SA to rekey; bring the tunnel up first", name)
		}
		if ike {
			if sa.tm.hasQueued(taskIKERekey) || sa.tm.activeKind(taskIKERekey) != nil {
				return nil
			}
			sa.tm.queue(newIKERekey(sa, "operator request"))
			return nil
		}
		c := sa.activeChild()
		if c == nil {
			return fmt.Errorf("ike: peer %q has no CHILD SA to rekey", name)
		}
		if c.replaces != nil {
			p.deferRekey(c, "operator request")
			return nil
		}
		p.queueChildRekey(c, "operator request")
		return nil
	})
}

// Status returns a snapshot of every peer, sorted by name. It never blocks
// on a peer goroutine.
func (m *Manager) Status() []PeerStatus {
	m.mu.Lock()
	peers := make([]*peer, 0, len(m.mu.peers))
	for _, p := range m.mu.peers {
		peers = append(peers, p)
	}
	m.mu.Unlock()
	out := make([]PeerStatus, 0, len(peers))
	for _, p := range peers {
		if s := p.status.Load(); s != nil {
			out = append(out, *s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Drops counts packets the Manager discarded before any IKE SA saw them.
// Per-SA authentication failures are in PeerStatus.UnauthDrops.
type Drops struct {
	Malformed  uint64 // the IKE header did not parse
	UnknownSPI uint64 // no IKE SA (or peer, for IKE_SA_INIT) matched
	Overflow   uint64 // the peer's queue was full
	// ResendLimited: retransmitted (or replayed) requests whose cached
	// response was not re-sent, by the rate limit.
	ResendLimited uint64
	// CookieSent: IKE_SA_INIT requests answered with a COOKIE (RFC 7296,
	// Section 2.6) instead of being processed.
	CookieSent uint64
	// InvalidKE: IKE_SA_INIT requests dropped because their KE value is
	// unusable (wrong length, out of range, not on the curve), before any
	// Diffie-Hellman computation.
	InvalidKE uint64
	// InitFailed: IKE SAs the peer started that failed before
	// authenticating; they never overwrite a tunnel's last failure while
	// the tunnel has an IKE SA.
	InitFailed uint64
	// Fragments: IKE fragments (RFC 7383) dropped, by reason (the
	// message.FragmentDrop names: fragment_unauthentic, fragment_duplicate,
	// ...); nil when none were.
	Fragments map[string]uint64
}

// Drops returns the Manager-level drop counters.
func (m *Manager) Drops() Drops {
	return Drops{Malformed: m.malformed.Load(), UnknownSPI: m.unknownSPI.Load(), Overflow: m.overflow.Load(),
		ResendLimited: m.resendLimited.Load(), CookieSent: m.cookieSent.Load(), InvalidKE: m.invalidKE.Load(),
		InitFailed: m.initFailed.Load(), Fragments: m.frag.snapshot()}
}

// Flush waits until every peer goroutine has handled all work queued before
// the call (packets, timer events). Tests use it to make the asynchronous
// engine deterministic; it must not be called from a Listener.
func (m *Manager) Flush() {
	m.mu.Lock()
	peers := make([]*peer, 0, len(m.mu.peers))
	for _, p := range m.mu.peers {
		peers = append(peers, p)
	}
	m.mu.Unlock()
	for _, p := range peers {
		p.drainInit()
		_ = p.call(func() error { return nil })
	}
}

// Close sends a DELETE for every IKE SA (without waiting), removes all CHILD
// SAs from the dataplane and stops every peer goroutine.
func (m *Manager) Close() {
	m.mu.Lock()
	m.mu.closed = true
	peers := m.mu.peers
	m.mu.peers = map[string]*peer{}
	m.mu.byAddr = map[netip.Addr]*peer{}
	m.mu.Unlock()
	for _, p := range peers {
		p.stop(true)
	}
}

// HandlePacket takes one IKE message from the dataplane (without the non-ESP
// marker) and queues it for the owning peer. It copies data, never blocks
// and drops what it cannot attribute: an IKE_SA_INIT request is matched to a
// peer by source address, anything else by our IKE SPI.
func (m *Manager) HandlePacket(local, remote netip.AddrPort, data []byte) {
	hdr, err := message.ParseHeader(data)
	if err != nil {
		m.malformed.Add(1)
		return
	}
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	var p *peer
	m.mu.Lock()
	if hdr.Exchange == message.IKESAInit && !hdr.IsResponse() && hdr.IsInitiator() && hdr.SPIr == 0 {
		p = m.mu.byAddr[remote.Addr()]
	} else {
		spi := hdr.SPIi
		if hdr.IsInitiator() {
			spi = hdr.SPIr
		}
		p = m.mu.bySPI[spi]
	}
	m.mu.Unlock()
	if p == nil {
		// RFC 7296, Section 2.21.4 allows an INVALID_IKE_SPI notify here;
		// staying silent gives an attacker nothing and costs AWS only a
		// retransmission before it restarts.
		m.unknownSPI.Add(1)
		return
	}
	pkt := append([]byte(nil), data...)
	post := p.tryPost
	if hdr.Exchange == message.IKESAInit && !hdr.IsResponse() {
		post = p.tryPostInit // unauthenticated: behind the established SAs' work
	}
	if !post(func() { p.handlePacket(local, remote, hdr, pkt) }) {
		m.overflow.Add(1)
	}
}

// allocSPI returns a fresh, nonzero IKE SPI registered to p.
func (m *Manager) allocSPI(p *peer) (uint64, error) {
	var b [8]byte
	for range 16 {
		if _, err := m.rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("ike: random source failed: %w", err)
		}
		spi := binary.BigEndian.Uint64(b[:])
		if spi == 0 {
			continue
		}
		m.mu.Lock()
		if _, taken := m.mu.bySPI[spi]; !taken {
			m.mu.bySPI[spi] = p
			m.mu.Unlock()
			return spi, nil
		}
		m.mu.Unlock()
	}
	return 0, fmt.Errorf("ike: could not find a free IKE SPI")
}

func (m *Manager) freeSPI(spi uint64) {
	m.mu.Lock()
	delete(m.mu.bySPI, spi)
	m.mu.Unlock()
}

func (m *Manager) addHalfOpen(d int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.halfOpen += d
	return m.mu.halfOpen
}

func (m *Manager) randBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := m.rand.Read(b); err != nil {
		return nil, fmt.Errorf("ike: random source failed: %w", err)
	}
	return b, nil
}

// newNonce returns a fresh nonce for an exchange we initiate or answer
// (RFC 7296, Section 2.10).
func (m *Manager) newNonce(initiator bool) ([]byte, error) {
	n, err := m.randBytes(nonceLen)
	if h := m.nonceHook.Load(); err == nil && h != nil {
		(*h)(initiator, n)
	}
	return n, err
}

// randUint64 is for jitter; a failed read yields 0 (no jitter).
func (m *Manager) randUint64() uint64 {
	var b [8]byte
	if _, err := m.rand.Read(b[:]); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(b[:])
}
