package ike

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/cgwproject/cgw/ike/message"
)

// IKE fragmentation (RFC 7383). Both sides offer it with an
// IKEV2_FRAGMENTATION_SUPPORTED notify in IKE_SA_INIT; once both did, every
// later message of the IKE SA that does not fit FragmentSize (the whole IP
// datagram, as strongSwan's charon.fragment_size counts it) is sent as SKF
// fragments, each sealed on its own with the IKE SA's keys. Retransmissions
// resend every fragment. A rekeyed IKE SA inherits the negotiated support.
//
// Receiving, every message of an IKE SA goes through the SA's
// message.Reassembler, which verifies each fragment before keeping it and
// bounds what it holds (MaxFragments, 64 KiB, one request and one response,
// FragmentTimeout). Fragments are accepted even when the peer did not
// negotiate them: they authenticate with the IKE SA's keys all the same.

const (
	// DefaultFragmentSize is the largest IP datagram cgw sends an IKE
	// message in, for IPv4 and IPv6 alike: the IPv6 minimum MTU, which
	// also passes every IPv4 path seen in practice (tunnels, PPPoE, LTE),
	// and strongSwan's default.
	DefaultFragmentSize = 1280
	// MinFragmentSize is the smallest FragmentSize accepted: the IPv4
	// minimum datagram every host must reassemble (RFC 791).
	MinFragmentSize = 576
	// MaxFragmentSize is the largest: a jumbo frame.
	MaxFragmentSize = 9000

	// ipUDPOverhead is what the IP and UDP headers and the non-ESP marker
	// (on port 4500) take from FragmentSize. The marker is always counted,
	// so a message never overflows whichever port carries it.
	ipv4UDPOverhead = 20 + 8 + 4
	ipv6UDPOverhead = 40 + 8 + 4

	// defaultFragmentBudget bounds the octets all IKE SAs of a Manager
	// hold in incomplete messages together. Each IKE SA holds at most two
	// messages of 64 KiB, but a responder IKE SA has keys before anyone
	// authenticated, so the number of IKE SAs alone is no bound.
	defaultFragmentBudget = 8 << 20

	// dropFragBudget: the fragment would take the Manager past its budget;
	// the IKE SA's incomplete messages are discarded with it.
	dropFragBudget message.FragmentDrop = "fragment_budget"
)

// FragmentStats counts one tunnel's IKE fragments.
type FragmentStats struct {
	Sent        uint64 // SKF fragments sent, retransmissions included
	Received    uint64 // authentic SKF fragments accepted
	Reassembled uint64 // messages completed from fragments
}

// fragCounters counts fragments the Manager's IKE SAs dropped, by reason,
// and the octets their reassemblers hold.
type fragCounters struct {
	malformed, unauthentic, tooMany, tooLarge, duplicate, stale, overBudget atomic.Uint64

	held  atomic.Int64 // octets in incomplete messages, all IKE SAs
	limit int64        // budget for held; 0 = defaultFragmentBudget (tests lower it)
}

func (d *fragCounters) counter(r message.FragmentDrop) *atomic.Uint64 {
	switch r {
	case message.DropFragMalformed:
		return &d.malformed
	case message.DropFragUnauthentic:
		return &d.unauthentic
	case message.DropFragTooMany:
		return &d.tooMany
	case message.DropFragTooLarge:
		return &d.tooLarge
	case message.DropFragDuplicate:
		return &d.duplicate
	case dropFragBudget:
		return &d.overBudget
	}
	return &d.stale
}

// snapshot returns the non-zero counts by reason (the FragmentDrop text).
func (d *fragCounters) snapshot() map[string]uint64 {
	var out map[string]uint64
	for _, r := range []message.FragmentDrop{message.DropFragMalformed, message.DropFragUnauthentic, message.DropFragTooMany,
		message.DropFragTooLarge, message.DropFragDuplicate, message.DropFragStale, dropFragBudget} {
		if n := d.counter(r).Load(); n > 0 {
			if out == nil {
				out = map[string]uint64{}
			}
			out[string(r)] = n
		}
	}
	return out
}

func (d *fragCounters) budget() int64 {
	if d.limit > 0 {
		return d.limit
	}
	return defaultFragmentBudget
}

// releaseFragments discards the IKE SA's incomplete messages and returns
// their octets to the Manager's budget.
func (sa *ikeSA) releaseFragments() {
	_, n := sa.reasm.Pending()
	sa.reasm.Reset()
	sa.p.m.frag.held.Add(-int64(n))
}

// fragmentNotify is the IKE_SA_INIT notify that offers fragmentation.
func fragmentNotify() *message.Notify {
	return &message.Notify{Kind: message.NotifyIKEv2FragmentationSupported}
}

// offersFragmentation reports whether m carries IKEV2_FRAGMENTATION_SUPPORTED.
func offersFragmentation(m *message.Message) bool {
	return m.Notify(message.NotifyIKEv2FragmentationSupported) != nil
}

// maxMessageLen is the largest IKE message (from the IKE header on) that
// fits one datagram of the configured fragment size to remote.
func (sa *ikeSA) maxMessageLen(remote netip.AddrPort) int {
	over := ipv4UDPOverhead
	if a := remote.Addr(); a.Is6() && !a.Is4In6() {
		over = ipv6UDPOverhead
	}
	return sa.p.cfg.FragmentSize - over
}

// encode protects m with c (nil for IKE_SA_INIT) and returns the datagrams
// that carry it: one, or SKF fragments when fragmentation was negotiated
// and m does not fit. m.Raw is the first datagram.
func (sa *ikeSA) encode(m *message.Message, c message.Cipher) ([][]byte, error) {
	if c == nil || !sa.fragOK {
		pkt, err := m.Marshal(c)
		if err != nil {
			return nil, err
		}
		return [][]byte{pkt}, nil
	}
	return m.MarshalFragments(c, sa.maxMessageLen(sa.remote))
}

// sendAll sends the datagrams of one message, counting fragments.
func (sa *ikeSA) sendAll(local, remote netip.AddrPort, pkts [][]byte) {
	for _, pkt := range pkts {
		sa.p.send(local, remote, pkt)
	}
	if len(pkts) > 1 {
		sa.p.fragments.Sent += uint64(len(pkts))
	}
}

// decode authenticates and parses one received datagram of an established
// (keyed) IKE SA, reassembling fragments. It returns nil while a message
// is incomplete and for anything dropped; drops are counted, never logged
// (an attacker controls their rate).
func (sa *ikeSA) decode(pkt []byte, hdr message.Header, c message.Cipher) *message.Message {
	p := sa.p
	if hdr.NextPayload != message.PayloadSKF {
		m, err := message.Parse(pkt, c)
		if err != nil {
			p.unauthDrops++
			return nil
		}
		return m
	}
	_, before := sa.reasm.Pending()
	m, complete, err := sa.reasm.AddAt(pkt, c, p.m.clock.Now())
	_, after := sa.reasm.Pending()
	fc := &p.m.frag
	if held := fc.held.Add(int64(after - before)); after > before && held > fc.budget() {
		sa.releaseFragments()
		fc.overBudget.Add(1)
		return nil
	}
	if err != nil {
		var d message.FragmentDrop
		if errors.As(err, &d) {
			fc.counter(d).Add(1)
			if d == message.DropFragDuplicate || d == message.DropFragStale {
				return nil // authentic, just not needed
			}
		}
		p.unauthDrops++
		return nil
	}
	p.fragments.Received++
	if !complete {
		return nil
	}
	p.fragments.Reassembled++
	return m
}

// shrinkFragments re-fragments a request that went unanswered twice for
// the smallest datagram every path carries (576 octets for IPv4, 1280 for
// IPv6) when that is below the configured fragment size: the path MTU may
// be lower than ike_fragment_size (RFC 7383, Section 2.5.2). The peer
// restarts reassembly on the larger Total Fragments; if it had the message
// already, it answers the retransmission with its cached response.
func (sa *ikeSA) shrinkFragments(ex *exchange) {
	if !sa.fragOK || ex.c == nil || ex.msg == nil || ex.shrunk || ex.sends < 2 {
		return
	}
	floor := MinFragmentSize - ipv4UDPOverhead
	if a := sa.remote.Addr(); a.Is6() && !a.Is4In6() {
		floor = 1280 - ipv6UDPOverhead
	}
	largest := 0
	for _, pkt := range ex.pkts {
		largest = max(largest, len(pkt))
	}
	if largest <= floor {
		return
	}
	pkts, err := ex.msg.MarshalFragments(ex.c, floor)
	if err != nil {
		return
	}
	sa.p.log.Info("no answer to a large request: retransmitting it in IKE fragments for the smallest path MTU",
		"exchange", ex.typ.String(), "mid", ex.mid, "fragments", len(pkts), "octets", floor)
	ex.pkts, ex.shrunk = pkts, true
}

// largeRequestHint explains, for a request that went unanswered, that it
// was a single datagram larger than a small path carries whole: a path
// that drops IP fragments loses it without a trace. Empty otherwise.
func (sa *ikeSA) largeRequestHint(ex *exchange) string {
	if len(ex.pkts) != 1 || len(ex.pkts[0]) <= 1280-ipv6UDPOverhead || ex.typ == message.IKESAInit {
		return ""
	}
	why := "the peer did not offer IKE fragmentation (RFC 7383)"
	if sa.p.cfg.FragmentSize < 0 {
		why = "ike_fragment_size is 0 (IKE fragmentation off)"
	}
	return fmt.Sprintf("; the request was one %d-octet datagram because %s, and a path that drops IP fragments loses it", len(ex.pkts[0]), why)
}
