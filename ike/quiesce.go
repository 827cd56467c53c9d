package ike

import "errors"

// errQuiesced refuses what cgwd asks of a Manager that is shutting down.
var errQuiesced = errors.New("ike: cgwd is shutting down; no new rekey is started")

// Quiesce stops every peer from starting anything on its own: from now on
// no timer runs its action (lifetime rekeys, DPD, retransmissions,
// retries), and Rekey is refused. It is for the time between the decision
// to shut down and the peers' removal (RemovePeer, Close), which sends
// their DELETEs: with hundreds of tunnels removed one by one, the last
// ones otherwise went on rekeying after cgwd had logged that it was
// shutting down. Packets from the peers are still answered. There is no
// way back.
func (m *Manager) Quiesce() {
	if !m.quiesced.Swap(true) {
		m.log.Info("ike: shutting down: no timer starts a rekey, DPD probe or retry from now on")
	}
}
