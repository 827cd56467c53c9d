package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cgwproject/cgw/dataplane/udp"
	"github.com/cgwproject/cgw/ipsec"
)

// Config configures an Engine.
type Config struct {
	Logger  *slog.Logger // nil = slog.Default()
	Workers int          // crypto workers per direction; 0 = GOMAXPROCS
}

// Engine is the dataplane: sockets, tunnels, SAs and the goroutines that
// move packets between them.
type Engine struct {
	log     *slog.Logger
	workers int
	pools   *pools

	queue struct {
		encryption chan *outBatch
		decryption chan *inBatch
	}
	workersWG sync.WaitGroup

	ikeHandler atomic.Pointer[func(local, remote netip.AddrPort, data []byte)]
	softExpire atomic.Pointer[func(tunnel string, spi ipsec.SPI)]
	mapping    atomic.Pointer[func(tunnel string, oldRemote, newRemote netip.AddrPort)]
	sad        atomic.Pointer[sad]
	nattSocks  atomic.Pointer[[2]*socket] // natt, for the hot path
	rawSocks   atomic.Pointer[[2]*socket] // raw ESP sockets (rawesp.go); nil entries if absent
	counters   engineCounters
	rxTrim     rxTrimmer // rxdemand.go

	// mu guards the fields below and serialises control-plane changes.
	mu       sync.Mutex
	closed   bool
	sockets  []*socket
	fwmark   uint32 // SO_MARK for the sockets; see SetFwMark
	tunnels  map[string]*tunnel
	reserved map[ipsec.SPI]spiReservation
	natt     [2]*socket // [0] IPv4, [1] IPv6 NAT-T sockets; nil if absent
	ike      [2]*socket
	raw      [2]*socket // raw ESP sockets; nil without CAP_NET_RAW
	socketWG sync.WaitGroup
}

// socket is one listening UDP socket and what its reader needs.
type socket struct {
	conn *udp.Conn
	natt bool // port 4500 semantics: marker demux, ESP, keepalives
	raw  bool // raw ESP (IP protocol 50): every packet is ESP
	// ikeMu guards ikeW, the writer used by SendIKE.
	ikeMu sync.Mutex
	ikeW  *udp.Writer
}

// New returns an Engine with its crypto workers running. Call Listen to
// open the sockets and AddTunnel to attach TUN devices.
func New(cfg Config) *Engine {
	e := &Engine{
		log:      cfg.Logger,
		workers:  cfg.Workers,
		pools:    newPools(),
		tunnels:  make(map[string]*tunnel),
		reserved: make(map[ipsec.SPI]spiReservation),
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("component", "dataplane")
	if e.workers <= 0 {
		e.workers = runtime.GOMAXPROCS(0)
	}
	e.queue.encryption = make(chan *outBatch, parallelQueueLen)
	e.queue.decryption = make(chan *inBatch, parallelQueueLen)
	e.sad.Store(&sad{})
	for i := range e.workers {
		e.workersWG.Add(2)
		go e.RoutineEncryption(i)
		go e.RoutineDecryption(i)
	}
	return e
}

// Listen opens the IKE port and the NAT-T port for IPv4 and, when the host
// has IPv6, for IPv6, and starts one receive routine per socket. Port 0
// picks a free port (tests); see Ports.
func (e *Engine) Listen(ikePort, nattPort uint16) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("dataplane: Listen: engine closed")
	}
	if len(e.sockets) > 0 {
		return errors.New("dataplane: Listen: already listening")
	}
	var opened []*socket
	fail := func(err error) error {
		for _, s := range opened {
			s.conn.Close()
		}
		return err
	}
	for fam, network := range []string{"udp4", "udp6"} {
		for _, natt := range []bool{false, true} {
			port := ikePort
			if natt {
				port = nattPort
			}
			if fam == 1 {
				// Same port numbers as IPv4 got (they may have been 0).
				if natt && e.natt[0] != nil {
					port = e.natt[0].conn.Port()
				} else if !natt && e.ike[0] != nil {
					port = e.ike[0].conn.Port()
				}
			}
			c, err := udp.Listen(network, netip.AddrPortFrom(netip.Addr{}, port))
			if err != nil {
				if fam == 1 && (errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)) {
					e.log.Info("IPv6 not available; listening on IPv4 only", "err", err)
					break
				}
				return fail(fmt.Errorf("dataplane: Listen: %w", err))
			}
			if e.fwmark != 0 {
				if err := c.SetMark(e.fwmark); err != nil {
					c.Close()
					return fail(fmt.Errorf("dataplane: Listen: %w", err))
				}
			}
			s := &socket{conn: c, natt: natt}
			s.ikeW = c.NewWriter()
			opened = append(opened, s)
			if natt {
				e.natt[fam] = s
			} else {
				e.ike[fam] = s
			}
		}
	}
	opened = append(opened, e.listenRawESPLocked()...)
	e.sockets = opened
	e.nattSocks.Store(&[2]*socket{e.natt[0], e.natt[1]})
	for _, s := range opened {
		e.socketWG.Add(1)
		go e.RoutineReceive(s)
	}
	e.log.Info("listening", "ike_port", e.ike[0].conn.Port(), "natt_port", e.natt[0].conn.Port(),
		"ipv6", e.natt[1] != nil, "udp_gso", e.natt[0].conn.GSO(), "udp_gro", e.natt[0].conn.GRO(),
		"raw_esp", e.raw[0] != nil || e.raw[1] != nil)
	return nil
}

// SetFwMark sets the firewall mark (SO_MARK) on every socket, now and on
// later Listens: the route package's policy rules keep packets with this
// mark away from the routes cgw installs. 0 clears it.
func (e *Engine) SetFwMark(mark uint32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fwmark = mark
	var errs []error
	for _, s := range e.sockets {
		if err := s.conn.SetMark(mark); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Ports returns the bound IKE and NAT-T ports (0, 0 before Listen).
func (e *Engine) Ports() (ike, natt uint16) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ike[0] == nil {
		return 0, 0
	}
	return e.ike[0].conn.Port(), e.natt[0].conn.Port()
}

// nattSocket returns the NAT-T socket for the family of a, or nil before
// Listen. It does not lock.
func (e *Engine) nattSocket(a netip.Addr) *socket {
	socks := e.nattSocks.Load()
	if socks == nil {
		return nil
	}
	if a.Is4() || a.Is4In6() {
		return socks[0]
	}
	return socks[1]
}

// SetIKEHandler sets the function that receives IKE messages: local is our
// address (from IP_PKTINFO) and port, data excludes the non-ESP marker and
// is valid only during the call. It is called from the socket's receive
// routine and must not block for long.
func (e *Engine) SetIKEHandler(h func(local, remote netip.AddrPort, data []byte)) {
	if h == nil {
		e.ikeHandler.Store(nil)
		return
	}
	e.ikeHandler.Store(&h)
}

// SendIKE sends one IKE message to remote from local. When either port is
// 4500 (or local uses our NAT-T port) it leaves from the NAT-T socket with
// the non-ESP marker prepended (RFC 3948, Section 2.2); otherwise from the
// IKE socket. local's address selects the source address (zero or
// unspecified: the kernel chooses).
func (e *Engine) SendIKE(local, remote netip.AddrPort, data []byte) error {
	e.mu.Lock()
	fam := 0
	if !remote.Addr().Is4() && !remote.Addr().Is4In6() {
		fam = 1
	}
	s := e.ike[fam]
	natt := e.natt[fam]
	e.mu.Unlock()
	if natt == nil || s == nil {
		return fmt.Errorf("dataplane: SendIKE to %s: no socket for that address family (Listen not called, or no IPv6)", remote)
	}
	pkt := data
	if local.Port() == NATTPort || remote.Port() == NATTPort || local.Port() == natt.conn.Port() {
		s = natt
		pkt = make([]byte, nonESPMarkerLen+len(data))
		copy(pkt[nonESPMarkerLen:], data)
	}
	s.ikeMu.Lock()
	err := s.ikeW.Send([][]byte{pkt}, local.Addr(), remote)
	s.ikeMu.Unlock()
	if err != nil {
		return fmt.Errorf("dataplane: SendIKE to %s: %w", remote, err)
	}
	e.counters.ikeOut.Add(1)
	return nil
}

// Stats returns the counters that belong to no tunnel.
func (e *Engine) Stats() EngineStats {
	return EngineStats{
		IKEIn:           e.counters.ikeIn.Load(),
		IKEOut:          e.counters.ikeOut.Load(),
		UnknownSPI:      e.counters.unknownSPI.Load(),
		Malformed:       e.counters.malformed.Load(),
		StrayKeepalives: e.counters.strayKeepalives.Load(),
	}
}

// Close removes all tunnels (closing their devices), closes the sockets
// and stops all goroutines. It is safe to call more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	names := make([]string, 0, len(e.tunnels))
	for name := range e.tunnels {
		names = append(names, name)
	}
	e.mu.Unlock()

	var errs []error
	for _, name := range names {
		if err := e.RemoveTunnel(name); err != nil {
			errs = append(errs, err)
		}
	}
	e.mu.Lock()
	sockets := e.sockets
	e.mu.Unlock()
	for _, s := range sockets {
		s.conn.Close()
	}
	e.socketWG.Wait()
	e.rxTrim.stop()
	// No reader can queue batches any more.
	close(e.queue.encryption)
	close(e.queue.decryption)
	e.workersWG.Wait()
	return errors.Join(errs...)
}
