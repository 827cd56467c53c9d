package ike

import (
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// childDelete closes CHILD SAs (RFC 7296, Section 1.4.1):
//
//	HDR, SK {D(ESP, our inbound SPIs)}  -->
//	                 <--  HDR, SK {D(ESP, its inbound SPIs)}
//
// A Delete payload names the SPIs the sender receives on; the answer names
// the other direction of the same SAs.
type childDelete struct {
	sa        *ikeSA
	initiator bool
	child     *childSA
	spis      []ipsec.SPI // initiator without a childSA (never installed)
	reason    string

	// responder
	found []*childSA
}

func newChildDelete(sa *ikeSA, c *childSA, reason string) *childDelete {
	return &childDelete{sa: sa, initiator: true, child: c, reason: reason}
}

// newChildDeleteSPIs deletes SAs the peer installed but we could not.
func newChildDeleteSPIs(sa *ikeSA, spis ...ipsec.SPI) *childDelete {
	return &childDelete{sa: sa, initiator: true, spis: spis, reason: "installation failed"}
}

func newChildDeleteResponder(sa *ikeSA) *childDelete { return &childDelete{sa: sa} }

func (t *childDelete) kind() taskKind                 { return taskChildDelete }
func (t *childDelete) exchange() message.ExchangeType { return message.Informational }

func (t *childDelete) build(m *message.Message) error {
	if !t.initiator {
		var spis []ipsec.SPI
		for _, c := range t.found {
			spis = append(spis, c.inSPI)
		}
		if len(spis) > 0 {
			m.Payloads = append(m.Payloads, &message.Delete{Protocol: ipsec.ProtoESP, SPIs: spis})
		}
		return nil
	}
	spis := t.spis
	if c := t.child; c != nil {
		if c.state == childDestroyed {
			return errChildGone
		}
		if c.state != childRekeyed {
			c.state = childDeleting
		}
		spis = []ipsec.SPI{c.inSPI}
	}
	m.Payloads = append(m.Payloads, &message.Delete{Protocol: ipsec.ProtoESP, SPIs: spis})
	return nil
}

const reasonChildExpired = "hard lifetime expired"

var errChildGone = &notifyError{reason: "ike: CHILD SA already gone"}

func (t *childDelete) process(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	if t.initiator {
		if c := t.child; c != nil && c.state != childDestroyed {
			active := c.state != childRekeyed
			p.finishChildDelete(c, t.reason)
			if active && t.reason == reasonChildExpired && p.wantUp {
				p.ensureChild(sa)
			}
		}
		return statusDone, nil
	}
	for _, pl := range m.Payloads {
		d, ok := pl.(*message.Delete)
		if !ok || d.Protocol != ipsec.ProtoESP {
			continue
		}
		for _, spi := range d.SPIs {
			c := sa.childByOutSPI(spi)
			if c == nil {
				continue // RFC 7296, Section 1.4.1: ignore unknown SPIs
			}
			dup := false
			for _, x := range t.found {
				dup = dup || x == c
			}
			if !dup {
				t.found = append(t.found, c)
			}
		}
	}
	return statusDone, nil
}

func (t *childDelete) afterSend() {
	sa, p := t.sa, t.sa.p
	lostActive := false
	for _, c := range t.found {
		if c.state == childDestroyed {
			continue
		}
		if c.state == childInstalled || c.state == childRekeying {
			lostActive = true
		}
		p.log.Info("peer deleted CHILD SA", "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String())
		p.finishChildDelete(c, "the peer deleted it")
	}
	if lostActive && sa.activeChild() == nil && p.wantUp {
		// Keep the tunnel up: negotiate a new CHILD SA shortly, unless the
		// peer is about to delete the IKE SA as well.
		sa.after(restartDelay, func() { p.ensureChild(sa) })
	}
}

// finishChildDelete removes a CHILD SA whose DELETE exchange completed. A
// replaced SA keeps its inbound half for a moment; an active one going away
// is reported as down.
func (p *peer) finishChildDelete(c *childSA, reason string) {
	sa := c.sa
	replaced := c.state == childRekeyed
	in, out, alg := c.inSPI, c.outSPI, c.alg
	if replaced {
		p.lingering[in] = true
		sa.deleteChildSAs(c, true)
		p.after(oldInboundLinger, func() { delete(p.lingering, in) })
		return
	}
	sa.deleteChildSAs(c, false)
	p.log.Info("IKE phase 2 Down", "in_spi", in.String(), "out_spi", out.String(), "reason", reason)
	p.emit(Event{Kind: EventChildDown, Reason: "CHILD SA deleted: " + reason, InSPI: in, OutSPI: out, Alg: alg})
}
