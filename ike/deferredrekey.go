package ike

// A rekey asked for (by the operator) while the CHILD SA is the peer's
// replacement of the old one, not yet in service because the peer has not
// deleted the old SA, cannot start then: the peer's exchange is not
// finished, and a rekey of either SA would collide with it. Skipping it
// would report a rekey that never happens, so it waits for the peer's
// exchange to end, which normally takes a round trip (the peer's DELETE)
// and at most halfOpenTimeout (settlePeerRekey):
//
//   - the new SA goes into service (concludeChildRekey): it is rekeyed;
//   - the peer never finished, and our own rekey of the old SA replaces
//     both (settlePeerRekey): that rekey is the one asked for;
//   - the SA goes away (IKE SA deleted): so does the request.

// deferRekey records a rekey of c, the peer's unfinished replacement of
// an SA, to run once c is in service.
func (p *peer) deferRekey(c *childSA, reason string) {
	if c.rekeyWanted != "" {
		return
	}
	c.rekeyWanted = reason
	p.log.Info("CHILD SA rekey deferred: the peer's own rekey of it is unfinished (no DELETE of the old SA yet); ours follows once it ends",
		"reason", reason, "in_spi", c.inSPI.String(), "out_spi", c.outSPI.String(), "old_in_spi", c.replaces.inSPI.String())
}

// runDeferredRekey starts the rekey deferRekey recorded for c, now in
// service.
func (p *peer) runDeferredRekey(c *childSA) {
	reason := c.rekeyWanted
	if reason == "" {
		return
	}
	c.rekeyWanted = ""
	p.log.Info("CHILD SA rekey that was deferred until the peer's rekey ended starts now", "reason", reason, "in_spi", c.inSPI.String())
	p.queueChildRekey(c, reason)
}
