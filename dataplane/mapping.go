package dataplane

import (
	"net/netip"
	"time"
)

/* Following the peer's NAT mapping (RFC 3948, Section 2.2 and RFC 7296,
 * Section 2.23; Linux XFRM reports the same event as XFRM_MSG_MAPPING).
 *
 * When a NAT in front of the peer rebinds (its state expired, was flushed,
 * or the NAT restarted), the peer's packets arrive from a new address or
 * port while the peer goes on sending ESP. IKE follows the peer only when
 * an authenticated IKE message arrives from there, and with ESP flowing
 * there may be none for a long time (DPD is sent only when nothing was
 * received), so everything we send would go to the stale mapping.
 *
 * The tunnel's sequential receiver therefore moves the tunnel's outer
 * remote endpoint to the source of an ESP packet when that packet
 *
 *   - verified (ICV) and passed the anti-replay window, and
 *   - carries a sequence number higher than any this SA accepted before,
 *
 * so neither a forged packet nor a replayed or delayed one from an old
 * mapping can redirect the tunnel. Someone on the path who captures a
 * fresh packet, drops it and forwards it from elsewhere can still move the
 * tunnel; such an attacker can drop the traffic anyway (RFC 7296, Section
 * 2.23 accepts the same for IKE).
 *
 * The common case costs one atomic load and a comparison per packet. A
 * change swaps the endpoints of all the tunnel's SAs (as UpdateEndpoints
 * does), at most once per mappingHoldDown, so that packets from two
 * mappings interleaved in the transition cannot make the tunnel flap.
 * Packets from the other mapping after the hold-down move it again only if
 * they keep arriving with higher sequence numbers.
 */

// mappingHoldDown is the shortest time between two endpoint changes of one
// tunnel made by the dataplane. A variable for tests.
var mappingHoldDown = time.Second

// SetMappingHandler sets the function called, in its own goroutine, each
// time the dataplane moved a tunnel's outer remote endpoint because an
// authenticated ESP packet with a new highest sequence number arrived from
// a new address or port: the peer's NAT mapping changed. oldRemote is the
// endpoint the tunnel used, newRemote the one it sends to from now on. The
// IKE SA is not told: IKE follows on its next authenticated message from
// the new endpoint (RFC 7296, Section 2.23).
func (e *Engine) SetMappingHandler(h func(tunnel string, oldRemote, newRemote netip.AddrPort)) {
	if h == nil {
		e.mapping.Store(nil)
		return
	}
	e.mapping.Store(&h)
}

// followMapping moves the tunnel to the peer's new endpoint remote, seen
// as the source of an authentic, window-advancing packet of sa. It runs in
// the tunnel's RoutineSequentialReceiver, which owns t.lastMapping.
func (t *tunnel) followMapping(sa *inboundSA, remote netip.AddrPort, now int64) {
	if !remote.Addr().IsValid() || remote.Port() == 0 {
		return
	}
	if t.lastMapping != 0 && now-t.lastMapping < int64(mappingHoldDown) {
		t.c.mappingHeld.Add(1)
		return
	}
	e := t.e
	e.mu.Lock()
	if e.tunnels[t.name] != t || t.inSAs[sa.spi] != sa {
		// Removed meanwhile (DelSA, RemoveTunnel): nothing to move.
		e.mu.Unlock()
		return
	}
	old := sa.ep.Load()
	if old.remote == remote {
		e.mu.Unlock()
		return
	}
	ep := &endpoints{local: old.local, remote: remote, encap: old.encap}
	for _, s := range t.inSAs {
		s.ep.Store(ep)
	}
	for _, s := range t.outSAs {
		s.ep.Store(ep)
	}
	e.rebuildSADLocked()
	e.mu.Unlock()

	t.lastMapping = now
	t.c.mappingChanges.Add(1)
	e.log.Debug("peer's NAT mapping changed; ESP follows", "tunnel", t.name, "spi", sa.spi.String(), "old_remote", old.remote.String(), "remote", remote.String())
	if h := e.mapping.Load(); h != nil {
		go (*h)(t.name, old.remote, remote)
	}
}
