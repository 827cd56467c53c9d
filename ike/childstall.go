package ike

import (
	"fmt"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// A CHILD rekey the peer initiated and we answered puts the new SA c in
// service once the peer deletes the old SA (or sends on c). If neither
// happens, there are two explanations: the peer finished its exchange and
// only its DELETE is missing, or it never finished it: it lost our answer
// (a collision whose answer strongSwan drops because it is processing our
// own request with the same message ID) and the exchange then ended
// unanswered, or an IKE rekey abandoned it. In the second case the peer
// does not have c, so switching to c blacks the tunnel out; in both cases
// waiting longer leaves the old SA to expire unreplaced (its timers stop
// when the peer's rekey is answered).
//
// settlePeerRekey decides by what the peer does. A peer that finished its
// exchange sends on c (its only outbound SA; the tunnel carries BGP
// keepalives at least), so then c goes into service. Otherwise we rekey the
// old SA ourselves, which asks the peer: one that finished its rekey and
// deleted the old SA answers CHILD_SA_NOT_FOUND, and c goes into service
// (processRefusal); one that did not answers, our new SA replaces the old
// one, and c is deleted (processResponse). It runs halfOpenTimeout after
// our answer, or at c's soft lifetime if that comes first (short
// lifetimes).
func (p *peer) settlePeerRekey(old, c *childSA) {
	if c.replaces != old || c.state != childInstalled || !c.sa.alive() || old.state != childRekeyed || old.sa != c.sa {
		return
	}
	if st, err := p.m.cfg.Installer.QuerySA(p.cfg.Name, ipsec.Inbound, c.inSPI); err == nil && !st.LastUsed.IsZero() {
		p.log.Warn("peer did not delete the CHILD SA it rekeyed but sends on the new one; switching to it and deleting the old one ourselves",
			"old_in_spi", old.inSPI.String(), "in_spi", c.inSPI.String())
		p.concludeChildRekey(old, c, "rekeyed by the peer, which did not delete the old SA")
		if old.state != childDestroyed && old.sa.alive() {
			old.sa.tm.queue(newChildDelete(old.sa, old, "rekeyed; the peer did not delete it"))
		}
		return
	}
	left := old.expireAt.Sub(p.m.clock.Now())
	if left <= 0 {
		p.childHardExpiry(old)()
		return
	}
	p.log.Warn("peer has not finished the CHILD SA rekey we answered (no DELETE of the old SA, nothing received on the new one); rekeying the old SA ourselves to find out",
		"old_in_spi", old.inSPI.String(), "old_out_spi", old.outSPI.String(), "new_in_spi", c.inSPI.String())
	// The old SA, still the one we send on, is back in service with its
	// hard lifetime until our rekey settles it.
	old.state = childInstalled
	old.timers = append(old.timers, p.after(left, p.childHardExpiry(old)))
	p.queueChildRekey(old, fmt.Sprintf("the peer's rekey of it did not finish within %s", p.m.clock.Now().Sub(c.established).Round(time.Second)))
}

// dropUnfinishedSuccessor deletes the peer's replacement of old that never
// went into service, once our own rekey replaced old (see settlePeerRekey).
func (p *peer) dropUnfinishedSuccessor(old *childSA) {
	sa := old.sa
	c := sa.successorOf(old)
	if c == nil {
		return
	}
	p.log.Info("deleting the CHILD SA of the peer's unfinished rekey; ours replaced the old SA", "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String())
	c.replaces, c.pendingOut = nil, nil
	c.state = childRekeyed // never in service: its removal is no tunnel event
	c.stopTimers()
	sa.tm.queue(newChildDelete(sa, c, "the peer never finished the rekey that created it"))
}

// concludeFinishedSuccessor puts the peer's replacement of old in service
// when the peer answers our rekey of old with CHILD_SA_NOT_FOUND: it
// finished its own rekey and deleted old, and only its DELETE is missing.
func (p *peer) concludeFinishedSuccessor(old *childSA) bool {
	c := old.sa.successorOf(old)
	if c == nil {
		return false
	}
	p.log.Info("peer no longer has the old CHILD SA: it finished its rekey, whose DELETE we never got; its new SA goes into service",
		"old_in_spi", old.inSPI.String(), "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String())
	p.concludeChildRekey(old, c, "rekeyed by the peer, whose DELETE of the old SA was lost")
	p.finishChildDelete(old, "rekeyed by the peer")
	return true
}
