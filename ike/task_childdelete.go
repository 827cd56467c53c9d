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
	found   []*childSA
	crossed []*childSA // SAs our own DELETE in flight also closes
}

func newChildDelete(sa *ikeSA, c *childSA, reason string) *childDelete {
	return &childDelete{sa: sa, initiator: true, child: c, reason: reason}
}

// newChildDeleteSPIs tells the peer to delete SAs we no longer have (or
// could not install); spis are our inbound SPIs.
func newChildDeleteSPIs(sa *ikeSA, reason string, spis ...ipsec.SPI) *childDelete {
	return &childDelete{sa: sa, initiator: true, spis: spis, reason: reason}
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

var errChildGone = &notifyError{quiet: true, reason: "ike: CHILD SA already gone"}

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
				// RFC 7296, Section 1.4.1: ignore unknown SPIs (already
				// deleted, or never ours); the answer simply omits them.
				p.log.Info("peer deleted a CHILD SA we do not have; ignoring it", "spi", spi.String())
				continue
			}
			dup := false
			for _, x := range append(t.found, t.crossed...) {
				dup = dup || x == c
			}
			if dup {
				continue
			}
			if ours, ok := sa.tm.activeKind(taskChildDelete).(*childDelete); ok && ours.initiator && ours.child == c {
				// Both ends close the SA at once (1.4.1): the outbound
				// half goes now, the inbound half with our DELETE's
				// answer, and our answer carries no Delete payload.
				t.crossed = append(t.crossed, c)
				continue
			}
			t.found = append(t.found, c)
		}
	}
	return statusDone, nil
}

func (t *childDelete) afterSend() {
	sa, p := t.sa, t.sa.p
	for _, c := range t.crossed {
		if c.outInstalled {
			if err := p.m.cfg.Installer.DelSA(p.cfg.Name, ipsec.Outbound, c.outSPI); err != nil {
				p.log.Warn("deleting outbound SA failed", "spi", c.outSPI.String(), "err", err)
			}
			c.outInstalled = false
		}
	}
	lostActive := false
	for _, c := range t.found {
		if c.state == childDestroyed {
			continue
		}
		if succ := sa.successorOf(c); succ != nil {
			// The initiator of a rekey we answered deletes the old SA:
			// now it has the new inbound SA, so we switch to it.
			p.concludeChildRekey(c, succ, "rekeyed by the peer")
			p.finishChildDelete(c, "rekeyed by the peer")
			continue
		}
		if c.replaces != nil {
			// A replacement the peer created by rekeying and deletes before
			// it went into service: the redundant SA of a collision whose
			// outcome the peer saw first. The old SA carries on.
			p.log.Info("peer deleted its redundant CHILD SA of a rekey collision", "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String())
			c.replaces = nil
			c.state = childRekeyed
			p.finishChildDelete(c, "redundant SA of a rekey collision")
			continue
		}
		if r, ok := sa.tm.activeKind(taskChildRekey).(*childRekey); ok && r.initiator && r.old == c {
			// RFC 7296, Section 2.25.1: answered as usual; the answer to
			// our rekey decides whether a new SA replaces it.
			p.log.Info("peer deleted the CHILD SA we are rekeying", "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String())
			r.oldDeleted = true
			c.state = childRekeyed
			p.finishChildDelete(c, "deleted by the peer during our rekey")
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
		p.ensureChildLater(restartDelay)
	}
}
