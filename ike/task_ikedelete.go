package ike

import (
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// ikeDelete closes an IKE SA and with it every CHILD SA it owns (RFC 7296,
// Section 1.4.1):
//
//	HDR, SK {D(IKE)}  -->
//	             <--  HDR, SK {}
type ikeDelete struct {
	sa        *ikeSA
	initiator bool
	reason    string
}

func newIKEDelete(sa *ikeSA, reason string) *ikeDelete {
	return &ikeDelete{sa: sa, initiator: true, reason: reason}
}

func newIKEDeleteResponder(sa *ikeSA) *ikeDelete { return &ikeDelete{sa: sa} }

func (t *ikeDelete) kind() taskKind                 { return taskIKEDelete }
func (t *ikeDelete) exchange() message.ExchangeType { return message.Informational }

func (t *ikeDelete) build(m *message.Message) error {
	if t.initiator {
		if t.sa.state == ikeEstablished {
			t.sa.state = ikeDeleting
		}
		t.sa.p.log.Info("deleting IKE SA", "ike_sa", t.sa.spiString(), "reason", t.reason)
		m.Payloads = append(m.Payloads, &message.Delete{Protocol: ipsec.ProtoIKE})
	}
	return nil
}

func (t *ikeDelete) process(m *message.Message) (status, error) {
	if t.initiator {
		t.sa.p.destroySA(t.sa, t.reason)
		t.sa.p.reinitiateIfWanted("no IKE SA left after our DELETE (" + t.reason + ")")
	}
	return statusDone, nil
}

// afterSend tears the SA down once our (empty) answer is on the wire and,
// if we keep the tunnel up, starts a new IKE SA after a short delay.
func (t *ikeDelete) afterSend() {
	sa, p := t.sa, t.sa.p
	switch {
	case sa.redundant || sa.state == ikePending:
		p.log.Info("peer deleted the redundant IKE SA of a rekey collision", "ike_sa", sa.spiString())
		p.destroySA(sa, "redundant IKE SA of a rekey collision")
		return
	case sa.state == ikeRekeyed:
		p.destroySA(sa, "rekeyed; the peer deleted the old IKE SA")
		return
	}
	// RFC 7296, Section 2.25.2: a DELETE for the IKE SA we are rekeying is
	// answered as usual and our rekey forgotten. If the peer's colliding
	// rekey completed, the peer chose its new SA (it did not notice the
	// collision or won it), which inherits the CHILD SAs.
	if r, ok := sa.tm.activeKind(taskIKERekey).(*ikeRekey); ok && r.initiator {
		if pn := r.pendingPeerSA(); pn != nil {
			p.log.Info("IKE SA rekey collision: the peer deleted the old IKE SA while our rekey was in flight, so its new IKE SA replaces the old one and our rekey is abandoned (RFC 7296 2.8.2)",
				"old_ike_sa", sa.spiString(), "ike_sa", pn.spiString())
			p.adoptRekeyed(sa, pn, "rekeyed by the peer during a collision")
			p.destroySA(sa, "rekeyed; the peer deleted the old IKE SA")
			return
		}
		p.log.Info("peer deleted the IKE SA while our rekey of it was in flight; our rekey is abandoned (RFC 7296 2.25.2)", "ike_sa", sa.spiString())
	}
	wasCurrent := p.ike == sa
	p.log.Info("peer deleted the IKE SA", "ike_sa", sa.spiString())
	p.destroySA(sa, "the peer deleted the IKE SA")
	if !wasCurrent || !p.wantUp || p.ike != nil {
		return
	}
	d := restartDelay + p.randDuration(restartDelay)
	p.log.Info("re-initiating after the peer's DELETE", "in", d.String())
	p.retryTimer = p.after(d, func() {
		p.retryTimer = nil
		if p.wantUp {
			p.initiate("the peer deleted the IKE SA and the tunnel is wanted up")
		}
	})
}
