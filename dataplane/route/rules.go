package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// krule is a policy rule as cgw writes it: either "lookup main
// suppress_prefixlength 0" (suppress) or "not fwmark M lookup T".
type krule struct {
	v6       bool
	priority int
	table    int
	suppress bool         // suppress_prefixlength 0
	to       netip.Prefix // destination selector; zero = all
	mark     uint32       // with invert: not fwmark mark (mask 0xffffffff)
	invert   bool
	proto    int
}

func (r krule) String() string {
	fam := "-4"
	if r.v6 {
		fam = "-6"
	}
	if r.suppress {
		return fmt.Sprintf("ip %s rule %d: from all lookup %d suppress_prefixlength 0", fam, r.priority, r.table)
	}
	if r.to.IsValid() {
		return fmt.Sprintf("ip %s rule %d: from all to %v lookup %d", fam, r.priority, r.to, r.table)
	}
	return fmt.Sprintf("ip %s rule %d: not from all fwmark %#x lookup %d", fam, r.priority, r.mark, r.table)
}

// rules returns the policy rules this Router wants (none with the main
// table).
func (r *Router) rules() []krule {
	if r.cfg.FwMark == 0 {
		return nil
	}
	var out []krule
	for _, v6 := range []bool{false, true} {
		out = append(out,
			krule{v6: v6, priority: r.cfg.RulePriority, table: DefaultTable, suppress: true, proto: r.cfg.Protocol},
			krule{v6: v6, priority: r.cfg.RulePriority + 1, table: r.cfg.Table, mark: r.cfg.FwMark, invert: true, proto: r.cfg.Protocol})
	}
	for _, p := range r.peers {
		out = append(out, krule{v6: p.Is6(), priority: r.cfg.RulePriority, table: DefaultTable, to: netip.PrefixFrom(p, p.BitLen()), proto: r.cfg.Protocol})
	}
	return out
}

// SetPeers keeps traffic to the given addresses (AWS's outside addresses)
// on the main table, whatever cgw's table holds: one rule per address at
// RulePriority, "to PEER lookup main". cgwd's own packets are marked and
// never see cgw's table anyway; these rules also cover the reverse-path
// check (rp_filter) of the ESP arriving from AWS, which looks up the route
// back to its source without a mark, and the host's own unmarked traffic to
// AWS's endpoints. Without a table of our own it does nothing.
func (r *Router) SetPeers(peers []netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.cfg.FwMark == 0 {
		return nil
	}
	ps := make([]netip.Addr, 0, len(peers))
	for _, p := range peers {
		if p.IsValid() {
			ps = append(ps, p.Unmap())
		}
	}
	slices.SortFunc(ps, netip.Addr.Compare)
	ps = slices.Compact(ps)
	if slices.Equal(ps, r.peers) {
		return nil
	}
	r.peers = ps
	return r.syncRules()
}

// syncRules makes the rules tagged with our protocol exactly r.rules():
// stale ones (a previous run, another priority or mark) go, missing ones
// are added, so it is idempotent.
func (r *Router) syncRules() error {
	have, err := r.k.listRules(r.cfg.Protocol)
	if err != nil {
		return fmt.Errorf("route: list policy rules (protocol %d): %w", r.cfg.Protocol, err)
	}
	want := r.rules()
	var errs []error
	for _, h := range have {
		if slices.Contains(want, h) {
			continue
		}
		if err := r.k.delRule(h); err != nil {
			errs = append(errs, fmt.Errorf("route: remove stale rule %v: %w", h, err))
			continue
		}
		r.log.Info("route: removed stale policy rule from a previous run", "rule", h.String())
	}
	for _, w := range want {
		if slices.Contains(have, w) {
			continue
		}
		if err := r.k.addRule(w); err != nil {
			if w.v6 && errors.Is(err, errFamily) {
				continue // IPv6 disabled: nothing to route either
			}
			errs = append(errs, fmt.Errorf("route: add policy rule %v: %w", w, err))
			continue
		}
		r.log.Info("route: installed policy rule", "rule", w.String())
	}
	return errors.Join(errs...)
}

// removeRules deletes every rule tagged with our protocol.
func (r *Router) removeRules() error {
	have, err := r.k.listRules(r.cfg.Protocol)
	if err != nil {
		return fmt.Errorf("route: list policy rules (protocol %d): %w", r.cfg.Protocol, err)
	}
	var errs []error
	for _, h := range have {
		if err := r.k.delRule(h); err != nil {
			errs = append(errs, fmt.Errorf("route: remove rule %v: %w", h, err))
		}
	}
	return errors.Join(errs...)
}
