package ike

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/internal/clock"
	"github.com/cgwproject/cgw/ipsec"
)

const (
	inboxSize = 256
	// initInboxSize bounds the IKE_SA_INIT requests (unauthenticated, each
	// a possible Diffie-Hellman computation) waiting for the peer; a flood
	// overflows this queue, never the inbox of the established SAs.
	initInboxSize = 32
)

// peer is one tunnel: its configuration and the IKE SAs to one remote
// address. Everything below the channel fields is owned by run's goroutine.
type peer struct {
	m     *Manager
	cfg   *peerConfig
	log   *slog.Logger
	inbox chan func()
	// initInbox holds new IKE_SA_INIT requests. run serves inbox first, so
	// messages for established IKE SAs, timers and API calls never wait
	// behind unauthenticated work (RFC 7296, Section 2.6).
	initInbox chan func()
	quit      chan struct{}
	done      chan struct{}
	once      sync.Once

	status atomic.Pointer[PeerStatus]

	sas                map[uint64]*ikeSA // by our SPI
	ike                *ikeSA            // the current IKE SA
	wantUp             bool              // keep the tunnel up (StartInitiate, Initiate, DPD restart)
	retryAttempt       int
	retryTimer         clock.Timer
	retryAt            time.Time
	initialContactSent bool
	lastFailure        string
	lastFailureAt      time.Time
	lingering          map[ipsec.SPI]bool // inbound SAs of rekeyed CHILD SAs awaiting DelSA
	stopped            bool
	sendFailing        bool
	unauthDrops        uint64 // packets for our SAs that failed to authenticate or parse
	ignored            uint64 // authenticated but unexpected messages (stale MIDs)
	fragments          FragmentStats

	// natView is the NAT detection in the answer to our last IKE_SA_INIT.
	natView *NATView
}

func newPeer(m *Manager, cfg *peerConfig) *peer {
	return &peer{
		m: m, cfg: cfg,
		log:       m.log.With("peer", cfg.Name, "remote", cfg.RemoteAddr.String()),
		inbox:     make(chan func(), inboxSize),
		initInbox: make(chan func(), initInboxSize),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		sas:       map[uint64]*ikeSA{},
		lingering: map[ipsec.SPI]bool{},
	}
}

// run is the peer's owner goroutine.
func (p *peer) run() {
	defer close(p.done)
	for {
		var f func()
		select {
		case f = <-p.inbox:
		default:
			select {
			case f = <-p.inbox:
			case f = <-p.initInbox:
			case <-p.quit:
				return
			}
		}
		f()
		if !p.stopped {
			p.publish()
		}
	}
}

// tryPostInit queues an IKE_SA_INIT request without blocking, on the
// low-priority queue.
func (p *peer) tryPostInit(f func()) bool { return p.tryPostOn(p.initInbox, f) }

// drainInit waits until the IKE_SA_INIT requests queued before the call
// have been handled (Flush).
func (p *peer) drainInit() {
	ran := make(chan struct{})
	select {
	case p.initInbox <- func() { close(ran) }:
	case <-p.quit:
		return
	}
	select {
	case <-ran:
	case <-p.done:
	}
}

// tryPost queues f without blocking (packets).
func (p *peer) tryPost(f func()) bool { return p.tryPostOn(p.inbox, f) }

// tryPostOn queues f on q without blocking; false when q is full.
func (p *peer) tryPostOn(q chan func(), f func()) bool {
	select {
	case q <- f:
		return true
	case <-p.quit:
		return true
	default:
		return false
	}
}

// post queues f, waiting for room (timers, API calls).
func (p *peer) post(f func()) {
	select {
	case p.inbox <- f:
	case <-p.quit:
	}
}

// call runs f on the owner goroutine and waits for it.
func (p *peer) call(f func() error) error {
	res := make(chan error, 1)
	select {
	case p.inbox <- func() { res <- f() }:
	case <-p.quit:
		return fmt.Errorf("ike: peer %q is removed", p.cfg.Name)
	}
	select {
	case err := <-res:
		return err
	case <-p.done:
		return fmt.Errorf("ike: peer %q is removed", p.cfg.Name)
	}
}

// after runs f on the owner goroutine after d. The returned timer may be
// stopped; a timer that fires after the peer stopped does nothing. The
// clock's callback waits until f has run, so that with clock.Fake every
// timer f arms is registered before Advance moves on (deterministic tests);
// with the real clock it only parks the timer's own goroutine.
func (p *peer) after(d time.Duration, f func()) clock.Timer {
	return p.m.clock.AfterFunc(d, func() {
		ran := make(chan struct{})
		select {
		case p.inbox <- func() {
			defer close(ran)
			if !p.stopped && !p.m.quiesced.Load() {
				f()
			}
		}:
		case <-p.quit:
			return
		}
		select {
		case <-ran:
		case <-p.done:
		}
	})
}

// stop tears the peer down: DELETE for established IKE SAs (sent once, not
// retransmitted), every CHILD SA removed from the dataplane, goroutine ended.
func (p *peer) stop(sendDelete bool) {
	p.once.Do(func() {
		_ = p.call(func() error {
			p.wantUp = false
			if p.retryTimer != nil {
				p.retryTimer.Stop()
			}
			for _, sa := range p.sortedSAs() {
				if sendDelete && (sa.state == ikeEstablished || sa.state == ikeRekeyed) {
					p.sendDeleteOnce(sa)
				}
				p.destroySA(sa, "the tunnel was removed")
			}
			for spi := range p.lingering {
				_ = p.m.cfg.Installer.DelSA(p.cfg.Name, ipsec.Inbound, spi)
			}
			p.lingering = map[ipsec.SPI]bool{}
			p.stopped = true
			p.publish()
			return nil
		})
		close(p.quit)
		<-p.done
	})
}

// sendDeleteOnce sends an INFORMATIONAL DELETE for the IKE SA without
// waiting for the answer (shutdown).
func (p *peer) sendDeleteOnce(sa *ikeSA) {
	mid := sa.tm.myMID
	if sa.tm.active != nil {
		mid++ // the window is full; the peer may have answered already
	}
	m := &message.Message{Header: sa.header(message.Informational, mid, false)}
	m.Payloads = []message.Payload{&message.Delete{Protocol: ipsec.ProtoIKE}}
	pkt, err := m.Marshal(sa.out)
	if err != nil {
		return
	}
	p.send(sa.local, sa.remote, pkt)
}

func (p *peer) sortedSAs() []*ikeSA {
	out := make([]*ikeSA, 0, len(p.sas))
	for _, sa := range p.sas {
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ourSPI() < out[j].ourSPI() })
	return out
}

func (p *peer) send(local, remote netip.AddrPort, pkt []byte) {
	// Log transitions between working and failing sends, not every packet.
	if err := p.m.cfg.Sender.SendIKE(local, remote, pkt); err != nil {
		if !p.sendFailing {
			p.log.Warn("sending IKE messages to the peer fails", "remote", remote.String(), "err", err)
		}
		p.sendFailing = true
	} else if p.sendFailing {
		p.log.Info("sending IKE messages to the peer works again")
		p.sendFailing = false
	}
}

func (p *peer) emit(ev Event) {
	ev.Peer = p.cfg.Name
	p.m.cfg.Listener.OnEvent(ev)
}
