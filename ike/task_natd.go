package ike

import (
	"bytes"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
)

// natd is NAT detection in IKE_SA_INIT (RFC 7296, Section 2.23):
//
//	HDR, SAi1, KEi, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP)  -->
//	      <--  HDR, SAr1, KEr, Nr, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP)
//
// Each hash is SHA-1(SPIi | SPIr | IP | port) of the sender's view of the
// packet's source and destination. A mismatch means a NAT rewrote the
// packet; then IKE floats to UDP 4500 and ESP is UDP-encapsulated. With
// ForceEncap we send a random source hash so the peer sees a NAT, as
// strongSwan's encap=yes does.
type natd struct {
	sa        *ikeSA
	initiator bool
	peerSent  bool
}

func newNATD(sa *ikeSA) *natd          { return &natd{sa: sa, initiator: true} }
func newNATDResponder(sa *ikeSA) *natd { return &natd{sa: sa} }

func (t *natd) kind() taskKind                 { return taskNATD }
func (t *natd) exchange() message.ExchangeType { return message.IKESAInit }

func (t *natd) build(m *message.Message) error {
	sa := t.sa
	if !t.initiator && !t.peerSent {
		return nil // only answer NAT detection with NAT detection
	}
	h := m.Header
	var src []byte
	if sa.p.cfg.ForceEncap {
		var err error
		if src, err = sa.p.m.randBytes(20); err != nil {
			return err
		}
	} else {
		src = crypto.NATDetectionHash(h.SPIi, h.SPIr, sa.local)
	}
	dst := crypto.NATDetectionHash(h.SPIi, h.SPIr, sa.remote)
	m.Payloads = append(m.Payloads,
		&message.Notify{Kind: message.NotifyNATDetectionSourceIP, Data: src},
		&message.Notify{Kind: message.NotifyNATDetectionDestIP, Data: dst})
	return nil
}

func (t *natd) process(m *message.Message) (status, error) {
	sa, p := t.sa, t.sa.p
	if m.Notify(message.NotifyCookie) != nil || m.Notify(message.NotifyInvalidKEPayload) != nil {
		return statusDone, nil // a retry will come
	}
	h := m.Header
	var srcs [][]byte
	var dst []byte
	for _, pl := range m.Payloads {
		n, ok := pl.(*message.Notify)
		if !ok {
			continue
		}
		switch n.Kind {
		case message.NotifyNATDetectionSourceIP:
			srcs = append(srcs, n.Data)
		case message.NotifyNATDetectionDestIP:
			dst = n.Data
		}
	}
	if len(srcs) == 0 || dst == nil {
		if p.cfg.ForceEncap {
			p.log.Warn("peer does not support NAT traversal; ForceEncap has no effect")
		}
		return statusDone, nil
	}
	t.peerSent = true
	sa.natdSeen = true
	// The peer hashed what it saw as source (its address) and destination
	// (ours); compare with the addresses this packet actually carried.
	wantSrc := crypto.NATDetectionHash(h.SPIi, h.SPIr, sa.rxRemote)
	wantDst := crypto.NATDetectionHash(h.SPIi, h.SPIr, sa.rxLocal)
	sa.natRemote = true
	for _, s := range srcs {
		if bytes.Equal(s, wantSrc) {
			sa.natRemote = false
		}
	}
	sa.natLocal = !bytes.Equal(dst, wantDst)
	if t.initiator {
		p.recordNATView(h.SPIi, h.SPIr, sa.rxLocal, sa.natLocal, dst)
	}
	sa.encap = sa.natLocal || sa.natRemote || p.cfg.ForceEncap
	if sa.encap {
		reason := "NAT detected in front of the peer"
		switch {
		case sa.natLocal && sa.natRemote:
			reason = "NAT detected in front of both sides"
		case sa.natLocal:
			reason = "NAT detected in front of us"
		case !sa.natRemote:
			reason = "UDP encapsulation forced by configuration (force_encap)"
		}
		p.log.Info("NAT-T: "+reason+"; IKE moves to UDP 4500 and ESP is UDP-encapsulated", "ike_sa", sa.spiString())
		p.emit(Event{Kind: EventNATDetected, Reason: reason + "; using UDP 4500 and ESP-in-UDP"})
		if t.initiator {
			// RFC 7296, Section 2.23: the initiator switches to port 4500
			// with IKE_AUTH.
			sa.floatPorts()
		}
	} else {
		p.log.Info("NAT-T: no NAT detected and UDP encapsulation not forced; IKE stays on port 500 and ESP travels raw (IP protocol 50)", "ike_sa", sa.spiString())
	}
	return statusDone, nil
}
