package ike

// SetFragmentBudget lowers the octets m's IKE SAs may hold in incomplete
// fragmented messages together. Call it before packets flow.
func SetFragmentBudget(m *Manager, n int64) { m.frag.limit = n }

// FragmentOctetsHeld returns the octets m's IKE SAs hold in incomplete
// fragmented messages.
func FragmentOctetsHeld(m *Manager) int64 { return m.frag.held.Load() }
