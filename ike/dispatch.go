package ike

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// handlePacket routes one received message to its IKE SA. Nothing here
// changes state before the message authenticated, and an authentic message
// moves the peer's address and refreshes liveness only when the task
// manager takes it as new (RFC 7296, Sections 2.1 and 2.23): a replayed or
// retransmitted message, even from another address, gets at most the
// cached response.
func (p *peer) handlePacket(local, remote netip.AddrPort, hdr message.Header, pkt []byte) {
	if hdr.Exchange == message.IKESAInit && !hdr.IsResponse() && hdr.SPIr == 0 {
		for _, sa := range p.sas {
			// A retransmission is known by its SPIi whatever its source
			// port (a NAT may have rebound it); it must not cost a
			// second responder SA and Diffie-Hellman computation.
			// One past IKE_AUTH (a late copy or a replay) is ignored.
			if !sa.initiator && sa.spiI == hdr.SPIi {
				if sa.state != ikeConnecting {
					p.ignored++
					return
				}
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
	var msg *message.Message
	if c != nil {
		// Counted, never logged: an attacker controls the rate.
		if msg = sa.decode(pkt, hdr, c); msg == nil {
			return
		}
	} else {
		var err error
		if msg, err = message.Parse(pkt, nil); err != nil {
			p.unauthDrops++
			return
		}
	}
	if c != nil {
		if sa.tm.isNew(msg) {
			sa.lastInbound = p.m.clock.Now()
			sa.updateEndpoints(local, remote)
		}
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
	rate := p.m.guard.noteInit(p.m.clock.Now())
	msg, err := message.Parse(pkt, nil)
	if err != nil {
		p.m.malformed.Add(1)
		return
	}
	if p.m.needCookie(rate) {
		n := msg.Notify(message.NotifyCookie)
		if n == nil || !p.m.validCookie(n.Data, msg, remote) {
			p.m.cookieSent.Add(1)
			p.sendCookie(local, remote, hdr, msg)
			return
		}
	}
	// Refuse an unusable KE value before any Diffie-Hellman computation.
	// A group we do not support is left to the exchange, which answers
	// INVALID_KE_PAYLOAD or NO_PROPOSAL_CHOSEN without computing either.
	if ke, ok := msg.Get(message.PayloadKE).(*message.KE); ok && crypto.KELen(ke.Group) > 0 {
		if crypto.CheckPublic(ke.Group, ke.Data) != nil {
			p.m.invalidKE.Add(1)
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
	// Anyone can forge this request from the peer's address: while the
	// tunnel is up it is not worth an operator's attention until it
	// authenticates.
	level := slog.LevelInfo
	if p.hasOtherEstablished(sa) {
		level = slog.LevelDebug
	}
	p.log.Log(context.Background(), level, "IKE phase 1 Negotiating (peer initiated)", "ike_sa", sa.spiString())
	sa.tm.handle(local, remote, msg)
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

// rejectTask answers a request that has no place in the current state.
func rejectTask(n message.NotifyType, reason string) task {
	return &rejecter{err: &notifyError{notify: n, reason: "ike: " + reason}}
}

type rejecter struct{ err *notifyError }

func (r *rejecter) kind() taskKind { return taskInformational }

func (r *rejecter) exchange() message.ExchangeType { return message.Informational }

func (r *rejecter) build(*message.Message) error { return r.err }

func (r *rejecter) process(*message.Message) (status, error) { return statusDone, r.err }
