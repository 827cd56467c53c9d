package ike

import (
	"crypto/sha256"
	"crypto/subtle"
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

const inboxSize = 256

// peer is one tunnel: its configuration and the IKE SAs to one remote
// address. Everything below the channel fields is owned by run's goroutine.
type peer struct {
	m     *Manager
	cfg   *peerConfig
	log   *slog.Logger
	inbox chan func()
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once

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
}

func newPeer(m *Manager, cfg *peerConfig) *peer {
	return &peer{
		m: m, cfg: cfg,
		log:       m.log.With("peer", cfg.Name, "remote", cfg.RemoteAddr.String()),
		inbox:     make(chan func(), inboxSize),
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
		select {
		case f := <-p.inbox:
			f()
			if !p.stopped {
				p.publish()
			}
		case <-p.quit:
			return
		}
	}
}

// tryPost queues f without blocking (packets).
func (p *peer) tryPost(f func()) bool {
	select {
	case p.inbox <- f:
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
			if !p.stopped {
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

// handlePacket routes one received message to its IKE SA. Nothing here
// changes state before the message authenticated.
func (p *peer) handlePacket(local, remote netip.AddrPort, hdr message.Header, pkt []byte) {
	if hdr.Exchange == message.IKESAInit && !hdr.IsResponse() && hdr.SPIr == 0 {
		for _, sa := range p.sas {
			if !sa.initiator && sa.spiI == hdr.SPIi && sa.remote == remote && sa.state == ikeConnecting {
				msg, err := message.Parse(pkt, nil)
				if err == nil {
					sa.tm.handle(local, remote, msg) // retransmission: cached response
				}
				return
			}
		}
		p.newResponder(local, remote, hdr, pkt)
		return
	}
	our := hdr.SPIi
	if hdr.IsInitiator() {
		our = hdr.SPIr
	}
	sa := p.sas[our]
	if sa == nil || !sa.alive() {
		return
	}
	if hdr.SPIi != sa.spiI || (hdr.SPIr != sa.spiR && !(hdr.Exchange == message.IKESAInit && sa.initiator)) {
		p.unauthDrops++
		return
	}
	var c message.Cipher
	if hdr.Exchange != message.IKESAInit {
		if sa.in == nil {
			p.unauthDrops++
			return
		}
		c = sa.in
	} else if !sa.initiator || sa.state != ikeConnecting {
		return
	}
	msg, err := message.Parse(pkt, c)
	if err != nil {
		p.unauthDrops++ // counted, never logged: an attacker controls the rate
		return
	}
	if c != nil {
		sa.lastInbound = p.m.clock.Now()
		sa.updateEndpoints(local, remote)
	} else if local.Addr().IsValid() && (!sa.local.Addr().IsValid() || sa.local.Addr().IsUnspecified()) {
		sa.local = netip.AddrPortFrom(local.Addr(), sa.local.Port())
	}
	sa.tm.handle(local, remote, msg)
}

// newResponder starts a responder IKE SA for an IKE_SA_INIT request, after
// the COOKIE check (RFC 7296, Section 2.6).
func (p *peer) newResponder(local, remote netip.AddrPort, hdr message.Header, pkt []byte) {
	if hdr.MessageID != 0 {
		return
	}
	msg, err := message.Parse(pkt, nil)
	if err != nil {
		p.m.malformed.Add(1)
		return
	}
	if th := p.m.cfg.CookieThreshold; th > 0 {
		valid := false
		if n := msg.Notify(message.NotifyCookie); n != nil {
			valid = subtle.ConstantTimeCompare(n.Data, p.m.cookie(msg, remote)) == 1
		}
		if !valid && p.m.addHalfOpen(0) >= th {
			p.sendCookie(local, remote, hdr, msg)
			return
		}
	}
	spi, err := p.m.allocSPI(p)
	if err != nil {
		p.log.Error("cannot answer IKE_SA_INIT", "err", err)
		return
	}
	if !local.Addr().IsValid() {
		local = netip.AddrPortFrom(p.cfg.LocalAddr, 500)
	}
	sa := &ikeSA{p: p, spiI: hdr.SPIi, spiR: spi, state: ikeConnecting, local: local, remote: remote}
	sa.tm = newTaskManager(sa)
	p.sas[spi] = sa
	p.m.addHalfOpen(1)
	sa.after(halfOpenTimeout, func() {
		if sa.state == ikeConnecting {
			p.failSA(sa, fmt.Errorf("ike: peer %s started IKE_SA_INIT but never completed IKE_AUTH within %s", p.cfg.RemoteAddr, halfOpenTimeout), 0)
		}
	})
	p.log.Info("IKE phase 1 Negotiating (peer initiated)", "ike_sa", sa.spiString())
	sa.tm.handle(local, remote, msg)
}

// cookie computes RFC 7296, Section 2.6's stateless cookie:
// version || SHA-256(Ni | IPi | SPIi | secret).
func (m *Manager) cookie(msg *message.Message, remote netip.AddrPort) []byte {
	h := sha256.New()
	if n, ok := msg.Get(message.PayloadNonce).(*message.Nonce); ok {
		h.Write(n.Data)
	}
	a := remote.Addr().AsSlice()
	h.Write(a)
	var spi [8]byte
	for i := range 8 {
		spi[i] = byte(msg.Header.SPIi >> (56 - 8*i))
	}
	h.Write(spi[:])
	h.Write(m.cookieSecret[:])
	return append([]byte{0}, h.Sum(nil)...)
}

func (p *peer) sendCookie(local, remote netip.AddrPort, hdr message.Header, msg *message.Message) {
	resp := &message.Message{Header: message.Header{
		SPIi: hdr.SPIi, MajorVersion: 2, Exchange: message.IKESAInit, Flags: message.FlagResponse,
	}}
	resp.Payloads = []message.Payload{&message.Notify{Kind: message.NotifyCookie, Data: p.m.cookie(msg, remote)}}
	pkt, err := resp.Marshal(nil)
	if err != nil {
		return
	}
	p.send(local, remote, pkt)
}

// responderTasks returns the tasks that answer request m.
func (p *peer) responderTasks(sa *ikeSA, m *message.Message) []task {
	switch m.Header.Exchange {
	case message.IKESAInit:
		if sa.state != ikeConnecting || sa.initiator {
			return []task{rejectTask(message.NotifyInvalidSyntax, "IKE_SA_INIT on an existing IKE SA")}
		}
		return []task{newIKEInitResponder(sa), newNATDResponder(sa)}
	case message.IKEAuth:
		if sa.state != ikeConnecting || sa.initiator || sa.keys == nil {
			return []task{rejectTask(message.NotifyInvalidSyntax, "IKE_AUTH on an established IKE SA")}
		}
		return []task{newIKEAuthResponder(sa), newChildCreateResponder(sa)}
	case message.CreateChildSA:
		if sa.state == ikeConnecting {
			return []task{rejectTask(message.NotifyInvalidSyntax, "CREATE_CHILD_SA before IKE_AUTH completed")}
		}
		if s, ok := m.Get(message.PayloadSA).(*message.SA); ok && len(s.Proposals) > 0 && s.Proposals[0].Protocol == ipsec.ProtoIKE {
			return []task{newIKERekeyResponder(sa)}
		}
		// RFC 7296, Section 2.25.2: no CHILD SA is created or rekeyed while
		// the IKE SA is being rekeyed or deleted; the peer retries later.
		busy := ""
		switch {
		case sa.state == ikeDeleting:
			busy = "we are deleting the IKE SA"
		case sa.state == ikeRekeyed || sa.state == ikePending:
			busy = "this IKE SA is rekeyed"
		case sa.tm.activeKind(taskIKERekey) != nil:
			busy = "our IKE SA rekey is in progress"
		}
		if busy != "" {
			p.log.Info("refusing the peer's CHILD SA request with TEMPORARY_FAILURE; it retries later", "why", busy, "ike_sa", sa.spiString())
			return []task{&rejecter{err: &notifyError{notify: message.NotifyTemporaryFailure, reason: "ike: " + busy}}}
		}
		if m.Notify(message.NotifyRekeySA) != nil {
			return []task{newChildRekeyResponder(sa)}
		}
		return []task{newChildCreateResponder(sa)}
	case message.Informational:
		for _, pl := range m.Payloads {
			if d, ok := pl.(*message.Delete); ok && d.Protocol == ipsec.ProtoIKE {
				return []task{newIKEDeleteResponder(sa)}
			}
		}
		for _, pl := range m.Payloads {
			if d, ok := pl.(*message.Delete); ok && d.Protocol == ipsec.ProtoESP {
				return []task{newChildDeleteResponder(sa)}
			}
		}
		return []task{newInformationalResponder(sa)}
	}
	return []task{rejectTask(message.NotifyInvalidSyntax, fmt.Sprintf("unknown exchange %s", m.Header.Exchange))}
}

// initiate starts a new IKE SA as initiator unless one is already up or
// being set up; reason says why, for the log.
func (p *peer) initiate(reason string) {
	if p.stopped {
		return
	}
	if sa := p.ike; sa != nil && sa.alive() && (sa.state == ikeConnecting || sa.state == ikeEstablished) {
		return
	}
	spi, err := p.m.allocSPI(p)
	if err != nil {
		p.noteFailure(err.Error(), 0)
		p.scheduleRetry()
		return
	}
	local := netip.AddrPortFrom(p.cfg.LocalAddr, 500)
	sa := &ikeSA{p: p, initiator: true, spiI: spi, state: ikeConnecting,
		local: local, remote: netip.AddrPortFrom(p.cfg.RemoteAddr, 500)}
	sa.tm = newTaskManager(sa)
	p.sas[spi] = sa
	p.ike = sa
	p.log.Info("IKE phase 1 Negotiating", "reason", reason, "ike_sa", sa.spiString(), "attempt", p.retryAttempt+1,
		"ike_proposals", proposalsString(p.cfg.IKEProposals, true))
	sa.tm.queued = append(sa.tm.queued, newIKEInit(sa), newNATD(sa), newIKEAuth(sa), newChildCreate(sa, true))
	sa.tm.initiate()
}

// noteFailure records a negotiation failure for Status and the Listener.
func (p *peer) noteFailure(reason string, notify message.NotifyType) {
	p.lastFailure, p.lastFailureAt = reason, p.m.clock.Now()
	p.emit(Event{Kind: EventNegotiationFailed, Reason: reason, Notify: uint16(notify)})
}

// failSA ends an IKE SA after a fatal error and, if we keep the tunnel up,
// schedules the next attempt.
func (p *peer) failSA(sa *ikeSA, err error, notify message.NotifyType) {
	if !sa.alive() {
		return
	}
	reason := errString(err)
	if sa.state == ikeConnecting {
		p.log.Warn("IKE negotiation failed", "ike_sa", sa.spiString(), "reason", reason)
		p.noteFailure(reason, notify)
	} else {
		p.log.Warn("IKE SA failed", "ike_sa", sa.spiString(), "reason", reason)
		p.lastFailure, p.lastFailureAt = reason, p.m.clock.Now()
	}
	wasCurrent := p.ike == sa
	p.destroySA(sa, reason)
	if wasCurrent || sa.initiator {
		p.scheduleRetry()
	}
}

// retransmitsExhausted is called when a request of ours went unanswered.
func (p *peer) retransmitsExhausted(sa *ikeSA, ex *exchange) {
	switch {
	case sa.state == ikeConnecting:
		p.failSA(sa, fmt.Errorf("ike: peer %s did not answer our %s after %d transmissions; check that it is reachable on UDP 500 and 4500 and that its outside IP is %s",
			p.cfg.RemoteAddr, ex.typ, ex.sends, p.cfg.RemoteAddr), 0)
	case sa.state == ikeDeleting || sa.state == ikeRekeyed || sa.redundant:
		p.destroySA(sa, "no answer to our DELETE")
		p.reinitiateIfWanted("no IKE SA left after an unanswered DELETE")
	case ex.dpd:
		p.peerDead(sa, fmt.Sprintf("DPD timed out after %d unanswered probes %s apart", ex.sends, p.cfg.DPDInterval))
	default:
		p.peerDead(sa, fmt.Sprintf("no answer to our %s request after %d transmissions", ex.typ, ex.sends))
	}
}

// peerDead applies the DPD action (RFC 7296, Section 2.4).
func (p *peer) peerDead(sa *ikeSA, reason string) {
	p.log.Warn("peer is dead", "ike_sa", sa.spiString(), "reason", reason, "dpd_action", dpdActionName(p.cfg.DPDAction))
	p.lastFailure, p.lastFailureAt = "peer dead: "+reason, p.m.clock.Now()
	p.emit(Event{Kind: EventPeerDead, Reason: "peer declared dead: " + reason})
	p.destroySA(sa, "peer dead: "+reason)
	switch p.cfg.DPDAction {
	case DPDRestart:
		p.wantUp = true
		p.retryAttempt = 0
		p.initiate("DPD action restart: the peer was declared dead")
	case DPDClear:
		p.wantUp = false
	case DPDNone:
		if p.wantUp {
			p.initiate("the peer was declared dead and the tunnel is wanted up")
		}
	}
}

func dpdActionName(a DPDAction) string {
	switch a {
	case DPDRestart:
		return "restart"
	case DPDClear:
		return "clear"
	}
	return "none"
}

// scheduleRetry re-initiates after a capped, jittered exponential backoff
// (5 s doubling to 2 min, +-20 %), forever, while the tunnel should be up.
func (p *peer) scheduleRetry() {
	if !p.wantUp || p.stopped || p.retryTimer != nil {
		return
	}
	if sa := p.ike; sa != nil && sa.alive() && (sa.state == ikeConnecting || sa.state == ikeEstablished) {
		return
	}
	d := retryMinDelay
	for i := 0; i < p.retryAttempt && d < retryMaxDelay; i++ {
		d *= 2
	}
	d = min(d, retryMaxDelay)
	d = jitter(d, p.m.randUint64())
	p.retryAttempt++
	p.retryAt = p.m.clock.Now().Add(d)
	p.log.Info("will retry IKE negotiation", "reason", "the tunnel is wanted up and has no IKE SA", "in", d.Round(time.Millisecond).String(), "attempt", p.retryAttempt+1)
	p.retryTimer = p.after(d, func() {
		p.retryTimer = nil
		p.retryAt = time.Time{}
		if p.wantUp {
			p.initiate("retry after a failed negotiation")
		}
	})
}

// jitter spreads d by +-20 % using r.
func jitter(d time.Duration, r uint64) time.Duration {
	span := d * 2 / 5
	if span <= 0 {
		return d
	}
	return d - span/2 + time.Duration(r%uint64(span))
}

// randDuration returns a uniform value in [0, d).
func (p *peer) randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(p.m.randUint64() % uint64(d))
}

// destroySA removes an IKE SA and its CHILD SAs without sending anything.
func (p *peer) destroySA(sa *ikeSA, reason string) {
	if !sa.alive() {
		return
	}
	wasUp := (sa.state == ikeEstablished || sa.state == ikeDeleting) && !sa.redundant
	// Events describe the tunnel: a stale duplicate going away while
	// another IKE SA carries the tunnel is logged but not reported.
	report := true
	if p.ike != sa && p.ike != nil && p.ike.alive() && p.ike.state == ikeEstablished {
		report = false
	}
	sa.tm.abort()
	for _, t := range sa.timers {
		t.Stop()
	}
	sa.timers = nil
	for _, c := range append([]*childSA(nil), sa.children...) {
		up := c.state == childInstalled || c.state == childRekeying
		in, out, alg := c.inSPI, c.outSPI, c.alg
		sa.deleteChildSAs(c, false)
		if up {
			p.log.Info("IKE phase 2 Down", "in_spi", in.String(), "out_spi", out.String(), "reason", reason)
			if report {
				p.emit(Event{Kind: EventChildDown, Reason: "CHILD SA removed: " + reason, InSPI: in, OutSPI: out, Alg: alg})
			}
		}
	}
	if !sa.halfOpenDone && !sa.initiator {
		sa.halfOpenDone = true
		p.m.addHalfOpen(-1)
	}
	sa.state = ikeDestroyed
	delete(p.sas, sa.ourSPI())
	p.m.freeSPI(sa.ourSPI())
	if wasUp {
		p.log.Info("IKE phase 1 Down", "ike_sa", sa.spiString(), "reason", reason)
		if report {
			p.emit(Event{Kind: EventIKEDown, Reason: "IKE SA closed: " + reason, Alg: sa.alg})
		}
	}
	if p.ike == sa {
		p.ike = nil
		for _, o := range p.sortedSAs() {
			if o.state == ikeEstablished {
				p.ike = o
			}
		}
	}
}

// reinitiateIfWanted starts a new IKE SA when the tunnel should be up and
// none is left (after a hard expiry).
func (p *peer) reinitiateIfWanted(reason string) {
	if p.wantUp && p.ike == nil {
		p.initiate(reason)
	}
}

// deleteIKESA starts an orderly delete: the DELETE exchange, then destroy.
func (p *peer) deleteIKESA(sa *ikeSA, reason string) {
	switch sa.state {
	case ikeConnecting:
		p.destroySA(sa, reason)
	case ikeEstablished, ikeRekeyed, ikePending:
		sa.tm.abortQueued()
		sa.state = ikeDeleting
		sa.tm.queue(newIKEDelete(sa, reason))
	}
}

// established is called by IKE_AUTH when an IKE SA is authenticated.
func (p *peer) established(sa *ikeSA) {
	if !sa.halfOpenDone && !sa.initiator {
		sa.halfOpenDone = true
		p.m.addHalfOpen(-1)
	}
	sa.state = ikeEstablished
	now := p.m.clock.Now()
	sa.established = now
	sa.lastInbound = now
	// INITIAL_CONTACT (RFC 7296, Section 2.4): the peer lost all state, so
	// our other IKE SAs with it are stale; remove them without a DELETE,
	// before reporting the new one.
	if sa.initialCnt {
		for _, o := range p.sortedSAs() {
			if o != sa && o.state != ikeConnecting {
				p.destroySA(o, "the peer sent INITIAL_CONTACT on a new IKE SA")
			}
		}
	}
	p.ike = sa
	if p.retryTimer != nil {
		p.retryTimer.Stop()
		p.retryTimer = nil
		p.retryAt = time.Time{}
	}
	p.scheduleIKETimers(sa)
	p.scheduleDPD(sa)
	p.log.Info("IKE phase 1 Established", "ike_sa", sa.spiString(), "initiator", sa.initiator,
		"alg", algString(sa.alg), "local", sa.local.String(), "remote", sa.remote.String(), "nat", sa.natLocal || sa.natRemote, "encap", sa.encap)
	p.emit(Event{Kind: EventIKEUp, Reason: fmt.Sprintf("IKE SA established with %s using %s", sa.remote.Addr(), algString(sa.alg)), Alg: sa.alg})
}

// scheduleIKETimers arms rekey (lifetime - margin - rand(margin*fuzz)) and
// hard expiry of an IKE SA.
func (p *peer) scheduleIKETimers(sa *ikeSA) {
	now := p.m.clock.Now()
	rekey := p.rekeyDelay(p.cfg.IKELifetime)
	sa.rekeyAt, sa.expireAt = now.Add(rekey), now.Add(p.cfg.IKELifetime)
	sa.after(rekey, func() {
		if sa.state == ikeEstablished && !sa.tm.hasQueued(taskIKERekey) && sa.tm.activeKind(taskIKERekey) == nil {
			sa.tm.queue(newIKERekey(sa, fmt.Sprintf("soft lifetime reached (%s of %s)", rekey.Round(time.Second), p.cfg.IKELifetime)))
		}
	})
	sa.after(p.cfg.IKELifetime, func() {
		if sa.state != ikeEstablished {
			return // rekeyed or being deleted already
		}
		// Its keys (and its CHILD SAs') must not be used any longer: one
		// DELETE, not held back by an exchange of ours in flight (a rekey
		// being retransmitted), and the SA is gone at once.
		p.log.Warn("IKE SA reached its hard lifetime without a rekey; deleting it and starting a new one", "ike_sa", sa.spiString(), "lifetime", p.cfg.IKELifetime.String())
		p.sendDeleteOnce(sa)
		p.destroySA(sa, "hard lifetime expired")
		p.reinitiateIfWanted("the IKE SA reached its hard lifetime")
	})
}

func (p *peer) rekeyDelay(lifetime time.Duration) time.Duration {
	margin := p.cfg.RekeyMargin
	return lifetime - margin - p.randDuration(margin*time.Duration(p.cfg.RekeyFuzz)/100)
}

// scheduleChildTimers arms the rekey and hard expiry of a CHILD SA.
func (p *peer) scheduleChildTimers(c *childSA) {
	now := p.m.clock.Now()
	rekey := p.rekeyDelay(p.cfg.ChildLifetime)
	c.rekeyAt, c.expireAt = now.Add(rekey), now.Add(p.cfg.ChildLifetime)
	c.timers = append(c.timers,
		p.after(rekey, func() {
			if c.state == childInstalled && c.sa.alive() {
				p.queueChildRekey(c, fmt.Sprintf("soft lifetime reached (%s of %s)", rekey.Round(time.Second), p.cfg.ChildLifetime))
			}
		}),
		p.after(p.cfg.ChildLifetime, func() {
			if c.state == childDestroyed || !c.sa.alive() {
				return
			}
			p.log.Warn("CHILD SA reached its hard lifetime without a rekey; deleting it and creating a new one", "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String(), "lifetime", p.cfg.ChildLifetime.String())
			p.childExpired(c)
		}))
}

// queueChildRekey queues a rekey of c unless one is pending, c is not in
// service, or c is a peer-initiated replacement still waiting for the
// DELETE of the SA it replaces.
func (p *peer) queueChildRekey(c *childSA, reason string) {
	sa := c.sa
	if !sa.alive() || sa.state != ikeEstablished || c.state != childInstalled || c.replaces != nil {
		return
	}
	for _, t := range sa.tm.queued {
		if r, ok := t.(*childRekey); ok && r.old == c {
			return
		}
	}
	sa.tm.queue(newChildRekey(sa, c, reason))
}

// childExpired removes a CHILD SA at its hard lifetime and tells the peer.
func (p *peer) childExpired(c *childSA) {
	sa := c.sa
	up := c.state == childInstalled || c.state == childRekeying
	in, out, alg := c.inSPI, c.outSPI, c.alg
	// Its keys must not be used any longer: out of the dataplane at once,
	// even if an exchange of ours (a rekey being retransmitted) would hold
	// a DELETE exchange back.
	sa.deleteChildSAs(c, false)
	if up {
		p.log.Info("IKE phase 2 Down", "in_spi", in.String(), "out_spi", out.String(), "reason", reasonChildExpired)
		p.emit(Event{Kind: EventChildDown, Reason: "CHILD SA deleted: " + reasonChildExpired, InSPI: in, OutSPI: out, Alg: alg})
	}
	if sa.state == ikeEstablished {
		sa.tm.queue(newChildDeleteSPIs(sa, reasonChildExpired, in))
		if up && p.wantUp {
			p.ensureChild(sa)
		}
	}
}

// scheduleDPD arms the liveness check (RFC 7296, Section 2.4): a probe is
// sent only after DPDInterval without any inbound IKE or ESP traffic and
// with no exchange in flight.
func (p *peer) scheduleDPD(sa *ikeSA) {
	if p.cfg.DPDInterval <= 0 || p.cfg.DPDAction == DPDNone {
		return
	}
	sa.after(p.cfg.DPDInterval, func() { p.dpdCheck(sa) })
}

func (p *peer) dpdCheck(sa *ikeSA) {
	if sa.state != ikeEstablished {
		return
	}
	interval := p.cfg.DPDInterval
	last := p.lastInbound(sa)
	idle := p.m.clock.Now().Sub(last)
	next := interval
	switch {
	case sa.tm.busy():
		// An exchange in flight proves liveness or times out by itself.
	case idle >= interval:
		p.log.Debug("no inbound traffic, sending DPD probe", "idle", idle.String())
		sa.tm.queue(newDPD(sa))
	default:
		next = interval - idle
	}
	sa.after(next, func() { p.dpdCheck(sa) })
}

// lastInbound is the newest of the last authenticated IKE message and the
// last ESP packet on any inbound CHILD SA.
func (p *peer) lastInbound(sa *ikeSA) time.Time {
	last := sa.lastInbound
	for _, c := range sa.children {
		if c.state == childDestroyed {
			continue
		}
		st, err := p.m.cfg.Installer.QuerySA(p.cfg.Name, ipsec.Inbound, c.inSPI)
		if err == nil && st.LastUsed.After(last) {
			last = st.LastUsed
		}
	}
	return last
}

// publish stores a Status snapshot.
func (p *peer) publish() {
	s := &PeerStatus{Name: p.cfg.Name, LastFailure: p.lastFailure, LastFailureAt: p.lastFailureAt, NextRetry: p.retryAt, Ignored: p.ignored,
		UnauthDrops: p.unauthDrops,
		Remote:      netip.AddrPortFrom(p.cfg.RemoteAddr, 500)}
	for _, sa := range p.sas {
		if sa.state == ikeConnecting && s.State == StateDown {
			s.State = StateNegotiating
		}
	}
	sa := p.ike
	if sa != nil && sa.alive() {
		switch sa.state {
		case ikeConnecting:
			s.State = StateNegotiating
		case ikeEstablished:
			s.State = StateEstablished
			if sa.tm.activeKind(taskIKERekey) != nil {
				s.State = StateRekeying
			}
		case ikeDeleting, ikeRekeyed:
			s.State = StateEstablished
		}
		s.Initiator, s.SPIi, s.SPIr, s.IKEAlg = sa.initiator, sa.spiI, sa.spiR, sa.alg
		s.Established, s.RekeyAt, s.ExpireAt = sa.established, sa.rekeyAt, sa.expireAt
		s.NATDetected, s.Encap = sa.natLocal || sa.natRemote, sa.encap
		s.Local, s.Remote, s.DPDMisses = sa.local, sa.remote, sa.dpdMisses
		for _, c := range sa.children {
			if c.state == childDestroyed || c.state == childRekeyed {
				continue
			}
			s.Children = append(s.Children, ChildStatus{
				InSPI: c.inSPI, OutSPI: c.outSPI, Alg: c.alg,
				TSLocal: c.tsLocal, TSRemote: c.tsRemote,
				Established: c.established, RekeyAt: c.rekeyAt, ExpireAt: c.expireAt,
				Rekeying: c.state == childRekeying,
			})
		}
		for _, c := range s.Children {
			if c.Rekeying {
				s.ChildState = StateRekeying
				break
			}
			s.ChildState = StateEstablished
		}
		if s.ChildState != StateRekeying && sa.tm.activeKind(taskChildCreate) != nil {
			if len(s.Children) == 0 {
				s.ChildState = StateNegotiating
			}
		}
	}
	p.status.Store(s)
}

// rejectTask answers a request that has no place in the current state.
func rejectTask(n message.NotifyType, reason string) task {
	return &rejecter{err: &notifyError{notify: n, reason: "ike: " + reason}}
}

type rejecter struct{ err *notifyError }

func (r *rejecter) kind() taskKind                           { return taskInformational }
func (r *rejecter) exchange() message.ExchangeType           { return message.Informational }
func (r *rejecter) build(*message.Message) error             { return r.err }
func (r *rejecter) process(*message.Message) (status, error) { return statusDone, r.err }
