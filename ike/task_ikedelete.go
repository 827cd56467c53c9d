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
		t.sa.p.reinitiateIfWanted()
	}
	return statusDone, nil
}

// afterSend tears the SA down once our (empty) answer is on the wire and,
// if we keep the tunnel up, starts a new IKE SA after a short delay.
func (t *ikeDelete) afterSend() {
	sa, p := t.sa, t.sa.p
	rekeyed := sa.state == ikeRekeyed
	wasCurrent := p.ike == sa
	if !rekeyed {
		p.log.Info("peer deleted the IKE SA", "ike_sa", sa.spiString())
	}
	p.destroySA(sa, "the peer deleted the IKE SA")
	if rekeyed || !wasCurrent || !p.wantUp || p.ike != nil {
		return
	}
	d := restartDelay + p.randDuration(restartDelay)
	p.log.Info("re-initiating after the peer's DELETE", "in", d.String())
	p.retryTimer = p.after(d, func() {
		p.retryTimer = nil
		if p.wantUp {
			p.initiate()
		}
	})
}
