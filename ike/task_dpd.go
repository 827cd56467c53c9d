package ike

import (
	"fmt"

	"github.com/cgwproject/cgw/ike/message"
)

// dpd is a liveness check (RFC 7296, Section 2.4): an empty INFORMATIONAL
// request that the peer must answer.
//
//	HDR, SK {}  -->
//	       <--  HDR, SK {}
//
// The task manager retransmits it every DPDInterval, DPDRetries times in
// all; then the peer is dead and the DPD action applies.
type dpd struct{ sa *ikeSA }

func newDPD(sa *ikeSA) *dpd { return &dpd{sa: sa} }

func (t *dpd) kind() taskKind                 { return taskDPD }
func (t *dpd) exchange() message.ExchangeType { return message.Informational }
func (t *dpd) build(*message.Message) error   { return nil }

func (t *dpd) process(*message.Message) (status, error) {
	if t.sa.dpdMisses > 0 {
		t.sa.p.log.Info("DPD answered after missed probes", "misses", t.sa.dpdMisses)
	}
	t.sa.dpdMisses = 0
	return statusDone, nil
}

// informational answers INFORMATIONAL requests without DELETE payloads: a
// DPD probe (empty) or stray notifies. AUTHENTICATION_FAILED here means the
// peer refused our IKE_AUTH response after we considered the SA up (RFC
// 7296, Section 2.21.2).
type informational struct {
	sa         *ikeSA
	authFailed bool
}

func newInformationalResponder(sa *ikeSA) *informational { return &informational{sa: sa} }

func (t *informational) kind() taskKind                 { return taskInformational }
func (t *informational) exchange() message.ExchangeType { return message.Informational }
func (t *informational) build(*message.Message) error   { return nil }

func (t *informational) process(m *message.Message) (status, error) {
	t.authFailed = m.Notify(message.NotifyAuthenticationFailed) != nil
	return statusDone, nil
}

func (t *informational) afterSend() {
	if !t.authFailed {
		return
	}
	sa, p := t.sa, t.sa.p
	reason := fmt.Sprintf("ike: peer %s rejected our authentication after IKE_AUTH (AUTHENTICATION_FAILED): check the tunnel's psk and that local_id is the public IP registered on the customer gateway", p.cfg.RemoteAddr)
	if p.cfg.Cert != nil {
		reason = authFailedSentence(p, sa) + " (AUTHENTICATION_FAILED after IKE_AUTH)"
	}
	p.reportFailure(reason, message.NotifyAuthenticationFailed)
	p.failSA(sa, fmt.Errorf("%s", reason), message.NotifyAuthenticationFailed)
}
