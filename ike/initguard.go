package ike

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// IKE_SA_INIT is unauthenticated: anyone can forge it from the AWS
// endpoint's address. initGuard keeps what a forger can make us spend small
// (RFC 7296, Section 2.6; WireGuard's cookie reply is the model):
//   - COOKIE mode starts when IKE_SA_INIT requests arrive faster than
//     cookieRate a second (failed ones included), or when cookieHalfOpen
//     responder SAs are half-open;
//   - the cookie secret rotates every cookieSecretLife and carries a
//     version, so cookies of the previous secret stay valid for one period;
//   - a responder reuses one ephemeral DH key per group for dhReuseLife
//     (strongSwan can do the same), so a request costs one DH computation
//     instead of two, and the key is destroyed when retired;
//   - failures of IKE SAs the peer started but never authenticated are
//     counted and summarised in one log line per unauthLogEvery.
const (
	cookieRate       = 10 // IKE_SA_INIT requests a second, all peers
	cookieSecretLife = 2 * time.Minute
	dhReuseLife      = 10 * time.Second
	unauthLogEvery   = 10 * time.Second
)

type initGuard struct {
	mu sync.Mutex
	// Request rate over a sliding second: count in the current and the
	// previous one-second window.
	winStart      time.Time
	winCur, winPr int
	// secrets[0] is current; secrets[1] the previous one.
	secrets  [2]cookieSecret
	rotateAt time.Time
	dh       map[ipsec.DHGroup]*ephemeralDH
	dhOld    map[ipsec.DHGroup]crypto.DH // retired, destroyed at the next rotation
	// unauthenticated failures since the last summary line
	unauthN      int
	unauthReason string
	unauthLogAt  time.Time
}

type cookieSecret struct {
	version byte
	secret  [32]byte
	valid   bool
}

type ephemeralDH struct {
	dh     crypto.DH
	retire time.Time
}

// noteInit counts one IKE_SA_INIT request and returns the rate of the last
// second.
func (g *initGuard) noteInit(now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch d := now.Sub(g.winStart); {
	case g.winStart.IsZero() || d >= 2*time.Second || d < 0:
		g.winStart, g.winCur, g.winPr = now, 0, 0
	case d >= time.Second:
		g.winStart, g.winPr, g.winCur = g.winStart.Add(time.Second), g.winCur, 0
	}
	g.winCur++
	// The previous window's share of the last second.
	frac := 1 - float64(now.Sub(g.winStart))/float64(time.Second)
	return g.winCur + int(float64(g.winPr)*frac)
}

// secret returns the cookie secret with version v (current when cur),
// rotating first if due.
func (m *Manager) cookieSecretFor(v byte, cur bool) (cookieSecret, bool) {
	g := &m.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	now := m.clock.Now()
	if !g.secrets[0].valid || !now.Before(g.rotateAt) {
		next := cookieSecret{version: g.secrets[0].version + 1, valid: true}
		if _, err := m.rand.Read(next.secret[:]); err != nil {
			m.log.Error("ike: random source failed; keeping the old cookie secret", "err", err)
			if g.secrets[0].valid {
				return g.secrets[0], true
			}
		}
		g.secrets[1], g.secrets[0] = g.secrets[0], next
		g.rotateAt = now.Add(cookieSecretLife)
	}
	if cur {
		return g.secrets[0], true
	}
	for _, s := range g.secrets {
		if s.valid && s.version == v {
			return s, true
		}
	}
	return cookieSecret{}, false
}

// cookie computes RFC 7296, Section 2.6's stateless cookie with the
// current secret: <VersionIDofSecret> | SHA-256(Ni | IPi | SPIi | secret).
func (m *Manager) cookie(msg *message.Message, remote netip.AddrPort) []byte {
	s, _ := m.cookieSecretFor(0, true)
	return cookieWith(s, msg, remote)
}

// validCookie checks a received COOKIE against the secret its version
// names (the current or the previous one).
func (m *Manager) validCookie(data []byte, msg *message.Message, remote netip.AddrPort) bool {
	if len(data) != 1+sha256.Size {
		return false
	}
	s, ok := m.cookieSecretFor(data[0], false)
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare(data, cookieWith(s, msg, remote)) == 1
}

func cookieWith(s cookieSecret, msg *message.Message, remote netip.AddrPort) []byte {
	h := sha256.New()
	if n, ok := msg.Get(message.PayloadNonce).(*message.Nonce); ok {
		h.Write(n.Data)
	}
	h.Write(remote.Addr().AsSlice())
	var spi [8]byte
	for i := range 8 {
		spi[i] = byte(msg.Header.SPIi >> (56 - 8*i))
	}
	h.Write(spi[:])
	h.Write(s.secret[:])
	return append([]byte{s.version}, h.Sum(nil)...)
}

// needCookie reports whether an IKE_SA_INIT request without a valid COOKIE
// must be answered with one: the request rate, or the number of half-open
// SAs, is too high. A negative CookieThreshold disables cookies.
func (m *Manager) needCookie(rate int) bool {
	th := m.cfg.CookieThreshold
	if th <= 0 {
		return false
	}
	return rate > cookieRate || m.addHalfOpen(0) >= th
}

// responderKey returns the ephemeral DH key for group g that IKE_SA_INIT
// responses share for dhReuseLife (RFC 7296, Section 2.12 allows reuse).
// Exchanges use the key synchronously on their peer's goroutine, so a
// retired key is destroyed one rotation later, when none can hold it.
func (m *Manager) responderKey(grp ipsec.DHGroup) (crypto.DH, error) {
	g := &m.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	now := m.clock.Now()
	if e := g.dh[grp]; e != nil && now.Before(e.retire) {
		return e.dh, nil
	}
	dh, err := crypto.NewDH(grp, m.rand)
	if err != nil {
		return nil, err
	}
	if g.dh == nil {
		g.dh, g.dhOld = map[ipsec.DHGroup]*ephemeralDH{}, map[ipsec.DHGroup]crypto.DH{}
	}
	if old := g.dhOld[grp]; old != nil {
		old.Destroy()
		delete(g.dhOld, grp)
	}
	if cur := g.dh[grp]; cur != nil {
		g.dhOld[grp] = cur.dh
	}
	g.dh[grp] = &ephemeralDH{dh: dh, retire: now.Add(dhReuseLife)}
	return dh, nil
}

// noteUnauthFailure counts a failure of an IKE SA the peer started that
// never authenticated, and logs one summary line per unauthLogEvery.
func (m *Manager) noteUnauthFailure(log *slog.Logger, reason string) {
	m.initFailed.Add(1)
	g := &m.guard
	g.mu.Lock()
	g.unauthN++
	g.unauthReason = reason
	now := m.clock.Now()
	if now.Before(g.unauthLogAt) {
		g.mu.Unlock()
		return
	}
	n, last := g.unauthN, g.unauthReason
	g.unauthN, g.unauthLogAt = 0, now.Add(unauthLogEvery)
	g.mu.Unlock()
	log.Warn("unauthenticated IKE SA setups failed (spoofed or misconfigured IKE_SA_INIT); the tunnel's IKE SA is unaffected",
		"count", n, "per", unauthLogEvery.String(), "last_reason", last)
}
