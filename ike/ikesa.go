package ike

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/internal/clock"
	"github.com/cgwproject/cgw/ipsec"
)

// ikeState is the life cycle of one IKE SA.
type ikeState int

const (
	ikeConnecting  ikeState = iota + 1 // IKE_SA_INIT / IKE_AUTH in progress
	ikeEstablished                     // authenticated
	ikeRekeyed                         // replaced by a rekey; waits for its DELETE
	ikeDeleting                        // our DELETE is in flight
	ikeDestroyed                       // gone; stale events find this and do nothing
	// ikePending is an IKE SA the peer created by rekeying while our own
	// rekey of the same IKE SA was in flight (RFC 7296, Section 2.8.2).
	// It answers requests but owns nothing until the collision is
	// resolved: then it either replaces the old IKE SA or, being
	// redundant, waits for the peer's DELETE.
	ikePending
)

func (s ikeState) String() string {
	switch s {
	case ikeConnecting:
		return "connecting"
	case ikeEstablished:
		return "established"
	case ikeRekeyed:
		return "rekeyed"
	case ikeDeleting:
		return "deleting"
	case ikeDestroyed:
		return "destroyed"
	case ikePending:
		return "pending"
	}
	return fmt.Sprintf("ikeState(%d)", int(s))
}

// ikeSA is one IKE SA. It is owned by its peer's goroutine: every field is
// read and written only there.
type ikeSA struct {
	p         *peer
	initiator bool // we are the original initiator (RFC 7296, Section 2.2)
	spiI      uint64
	spiR      uint64
	state     ikeState

	local, remote netip.AddrPort
	// Addresses of the message being processed (for NAT detection).
	rxLocal, rxRemote netip.AddrPort

	alg  ipsec.Algorithms
	prf  crypto.PRF
	keys *crypto.IKEKeys
	out  message.Cipher // protects what we send
	in   message.Cipher // verifies what we receive

	// IKE_SA_INIT state, kept for AUTH (RFC 7296, Section 2.15).
	ni, nr   []byte
	initReq  []byte
	initResp []byte

	// NAT-T (RFC 7296, Section 2.23).
	natdSeen  bool // the peer sent NAT_DETECTION payloads
	natLocal  bool // a NAT is in front of us
	natRemote bool // a NAT is in front of the peer
	encap     bool // ESP in UDP and IKE on 4500

	// IKE fragmentation (RFC 7383, fragment.go).
	fragOK bool                // both sides sent IKEV2_FRAGMENTATION_SUPPORTED
	reasm  message.Reassembler // the peer's fragmented messages

	peerID *message.ID
	// Certificate authentication: the peer's SIGNATURE_HASH_ALGORITHMS,
	// how each side signed, and the peer's end-entity certificate.
	peerHashes          []uint16
	localAuth, peerAuth string
	peerCert            *x509.Certificate
	initialCnt          bool // the peer's IKE_AUTH carried INITIAL_CONTACT
	tm                  *taskManager
	children            []*childSA
	established         time.Time
	rekeyAt             time.Time
	expireAt            time.Time
	timers              []clock.Timer
	lastInbound         time.Time // last authenticated IKE message from the peer
	dpdMisses           int
	halfOpenDone        bool // counted out of the manager's half-open total
	// redundant marks the losing IKE SA of a rekey collision (ours, which
	// we delete, or the peer's, whose DELETE we wait for): it never
	// carried the tunnel, so its end is not reported.
	redundant bool
}

func (sa *ikeSA) ourSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

func (sa *ikeSA) alive() bool { return sa.state != ikeDestroyed }

// after schedules f on the owner goroutine unless the SA is gone by then.
func (sa *ikeSA) after(d time.Duration, f func()) clock.Timer {
	t := sa.p.after(d, func() {
		if sa.alive() {
			f()
		}
	})
	sa.timers = append(sa.timers, t)
	return t
}

// setKeys derives the IKE SA keys and the SK ciphers (RFC 7296, Section 2.14).
func (sa *ikeSA) setKeys(keys *crypto.IKEKeys) error {
	prf, err := crypto.NewPRF(sa.alg.PRF)
	if err != nil {
		return err
	}
	ei, ai, er, ar := keys.SKei, keys.SKai, keys.SKer, keys.SKar
	if !sa.initiator {
		ei, ai, er, ar = er, ar, ei, ai
	}
	out, err := crypto.NewIKECipher(sa.alg, ei, ai)
	if err != nil {
		return err
	}
	in, err := crypto.NewIKECipher(sa.alg, er, ar)
	if err != nil {
		return err
	}
	sa.prf, sa.keys, sa.out, sa.in = prf, keys, out, in
	return nil
}

// header returns a header for a message we send on this SA.
func (sa *ikeSA) header(ex message.ExchangeType, mid uint32, response bool) message.Header {
	h := message.Header{
		SPIi: sa.spiI, SPIr: sa.spiR, MajorVersion: 2, Exchange: ex, MessageID: mid,
	}
	if sa.initiator {
		h.Flags |= message.FlagInitiator
	}
	if response {
		h.Flags |= message.FlagResponse
	}
	return h
}

// floatPorts moves IKE to UDP 4500 after NAT detection (RFC 7296, Section
// 2.23: the initiator switches as soon as it sends IKE_AUTH).
func (sa *ikeSA) floatPorts() {
	sa.local = netip.AddrPortFrom(sa.local.Addr(), 4500)
	sa.remote = netip.AddrPortFrom(sa.remote.Addr(), 4500)
}

// updateEndpoints follows the peer to a new address or port once a message
// from there authenticated (RFC 7296, Section 2.23: only when a NAT is in
// play, and never on an unauthenticated packet).
func (sa *ikeSA) updateEndpoints(local, remote netip.AddrPort) {
	if remote == sa.remote && (local == sa.local || !local.Addr().IsValid()) {
		return
	}
	if !sa.encap && !sa.natLocal && !sa.natRemote && remote.Port() != 4500 {
		return
	}
	old := sa.remote
	if local.Addr().IsValid() {
		sa.local = local
	}
	sa.remote = remote
	sa.p.log.Info("IKE endpoints changed", "ike_sa", sa.spiString(), "old_remote", old.String(), "remote", remote.String(), "local", sa.local.String())
	if len(sa.installedChildren()) > 0 {
		if err := sa.p.m.cfg.Installer.UpdateEndpoints(sa.p.cfg.Name, sa.local, sa.remote, sa.encap); err != nil {
			sa.p.log.Warn("dataplane refused new endpoints", "err", err)
		}
	}
}

func (sa *ikeSA) spiString() string {
	return fmt.Sprintf("%016x_i %016x_r", sa.spiI, sa.spiR)
}

// installedChildren returns the CHILD SAs that have SAs in the dataplane.
func (sa *ikeSA) installedChildren() []*childSA {
	var out []*childSA
	for _, c := range sa.children {
		if c.state != childDestroyed {
			out = append(out, c)
		}
	}
	return out
}

// activeChild returns the CHILD SA currently carrying traffic, or nil.
func (sa *ikeSA) activeChild() *childSA {
	for i := len(sa.children) - 1; i >= 0; i-- {
		if c := sa.children[i]; c.state == childInstalled || c.state == childRekeying {
			return c
		}
	}
	return nil
}

func (sa *ikeSA) childByInSPI(spi ipsec.SPI) *childSA {
	for _, c := range sa.children {
		if c.inSPI == spi && c.state != childDestroyed {
			return c
		}
	}
	return nil
}

func (sa *ikeSA) childByOutSPI(spi ipsec.SPI) *childSA {
	for _, c := range sa.children {
		if c.outSPI == spi && c.state != childDestroyed {
			return c
		}
	}
	return nil
}

// successorOf returns the peer-initiated replacement of old that waits for
// old's DELETE, or nil.
func (sa *ikeSA) successorOf(old *childSA) *childSA {
	for _, c := range sa.children {
		if c.replaces == old && c.state != childDestroyed {
			return c
		}
	}
	return nil
}

func (sa *ikeSA) removeChild(c *childSA) {
	for i, x := range sa.children {
		if x == c {
			sa.children = append(sa.children[:i], sa.children[i+1:]...)
			return
		}
	}
}

// childState is the life cycle of one CHILD SA.
type childState int

const (
	childInstalled childState = iota + 1
	childRekeying             // our rekey is in flight
	childRekeyed              // replaced; the inbound half lingers until deleted
	childDeleting             // our DELETE is in flight
	childDestroyed
)

// childSA is one negotiated ESP SA pair.
type childSA struct {
	sa            *ikeSA // current owner (changes on IKE rekey)
	inSPI, outSPI ipsec.SPI
	alg           ipsec.Algorithms
	pfs           ipsec.DHGroup // group for rekeys (RFC 7296, Section 1.3.3)
	tsLocal       []ipsec.TrafficSelector
	tsRemote      []ipsec.TrafficSelector
	state         childState
	outInstalled  bool
	established   time.Time
	rekeyAt       time.Time
	expireAt      time.Time
	timers        []clock.Timer
	// nonces of the exchange that created this CHILD SA, for collision
	// resolution (RFC 7296, Section 2.8.1).
	ni, nr []byte
	// replaces is the CHILD SA this one rekeyed when the peer initiated
	// the rekey. As responder we keep sending on the old SA until the
	// initiator deletes it, which proves it installed the new inbound SA
	// (strongSwan does the same); only then is our outbound half added.
	replaces *childSA
	// pendingOut is the outbound half not yet installed (see replaces).
	pendingOut *ipsec.SAParams
	// switchedFrom is the SA this one replaced when the peer sent on it
	// before deleting the old one (watchNewInbound): if that DELETE never
	// comes, we delete the old SA ourselves.
	switchedFrom *childSA
	// rekeyWanted is the reason of a rekey asked for while this SA was
	// not yet in service (replaces set); see deferRekey.
	rekeyWanted string
}

func (c *childSA) stopTimers() {
	for _, t := range c.timers {
		t.Stop()
	}
	c.timers = nil
}

// childKeys is the result of a CHILD SA negotiation before installation.
type childKeys struct {
	alg               ipsec.Algorithms
	inSPI, outSPI     ipsec.SPI
	encIn, integIn    []byte
	encOut, integOut  []byte
	tsLocal, tsRemote []ipsec.TrafficSelector
	ni, nr            []byte
}

// deriveChild computes KEYMAT for a CHILD SA (RFC 7296, Section 2.17).
// weInitiated tells whether we initiated the exchange that created it: the
// initiator's outbound keys come first.
func (sa *ikeSA) deriveChild(k *childKeys, shared []byte, weInitiated bool) error {
	ck, err := crypto.DeriveChildKeys(sa.alg.PRF, sa.keys.SKd, k.alg, shared, k.ni, k.nr)
	if err != nil {
		return err
	}
	if weInitiated {
		k.encOut, k.integOut, k.encIn, k.integIn = ck.EncI, ck.IntegI, ck.EncR, ck.IntegR
	} else {
		k.encOut, k.integOut, k.encIn, k.integIn = ck.EncR, ck.IntegR, ck.EncI, ck.IntegI
	}
	return nil
}

// params builds the SAParams of one direction.
func (sa *ikeSA) params(k *childKeys, dir ipsec.Direction) ipsec.SAParams {
	p := ipsec.SAParams{
		Tunnel: sa.p.cfg.Name, Dir: dir, Alg: k.alg,
		Local: sa.local, Remote: sa.remote, Encap: sa.encap,
		TSLocal: k.tsLocal, TSRemote: k.tsRemote,
	}
	if dir == ipsec.Inbound {
		p.SPI, p.EncKey, p.IntegKey = k.inSPI, k.encIn, k.integIn
		p.ReplayWindow = sa.p.cfg.ReplayWindow
	} else {
		p.SPI, p.EncKey, p.IntegKey = k.outSPI, k.encOut, k.integOut
	}
	return p
}

// installChild programs a negotiated CHILD SA, inbound first, so the peer
// may use it as soon as it has our response (make-before-break). With
// outbound=false only the inbound half is installed (a redundant SA of a
// rekey collision that we are about to delete).
func (sa *ikeSA) installChild(k *childKeys, outbound bool) (*childSA, error) {
	inst := sa.p.m.cfg.Installer
	if err := inst.AddSA(sa.params(k, ipsec.Inbound)); err != nil {
		return nil, fmt.Errorf("ike: installing inbound SA %s: %w", k.inSPI, err)
	}
	if outbound {
		if err := inst.AddSA(sa.params(k, ipsec.Outbound)); err != nil {
			_ = inst.DelSA(sa.p.cfg.Name, ipsec.Inbound, k.inSPI)
			return nil, fmt.Errorf("ike: installing outbound SA %s: %w", k.outSPI, err)
		}
	}
	now := sa.p.m.clock.Now()
	c := &childSA{
		sa: sa, inSPI: k.inSPI, outSPI: k.outSPI, alg: k.alg,
		pfs:     pfsGroup(sa.p.cfg.ESPProposals, k.alg, sa.alg.DH),
		tsLocal: k.tsLocal, tsRemote: k.tsRemote,
		state: childInstalled, outInstalled: outbound, established: now,
		ni: k.ni, nr: k.nr,
	}
	sa.children = append(sa.children, c)
	sa.p.scheduleChildTimers(c)
	return c, nil
}

// deleteChildSAs removes both directions of c from the dataplane. With
// linger, the inbound half stays for oldInboundLinger so packets the peer
// sent before switching are still accepted.
func (sa *ikeSA) deleteChildSAs(c *childSA, linger bool) {
	if c.state == childDestroyed {
		return
	}
	c.stopTimers()
	c.state = childDestroyed
	c.pendingOut, c.replaces = nil, nil
	inst := sa.p.m.cfg.Installer
	name := sa.p.cfg.Name
	if c.outInstalled {
		if err := inst.DelSA(name, ipsec.Outbound, c.outSPI); err != nil {
			sa.p.log.Warn("deleting outbound SA failed", "spi", c.outSPI.String(), "err", err)
		}
	}
	in := c.inSPI
	del := func() {
		if err := inst.DelSA(name, ipsec.Inbound, in); err != nil {
			sa.p.log.Warn("deleting inbound SA failed", "spi", in.String(), "err", err)
		}
	}
	if linger {
		sa.p.after(oldInboundLinger, del)
	} else {
		del()
	}
	sa.removeChild(c)
}

// childHalfOpen reports whether a CHILD SA exchange of ours is in flight on
// sa, a CHILD SA is being rekeyed or deleted, or a rekey we answered still
// waits for the peer to delete the old SA: the IKE SA must not be rekeyed
// under it (strongSwan's have_half_open_children). The last case is the
// peer's exchange that may still be in flight on its side (a collision we
// lost, whose answer it has to retransmit for): strongSwan 5.9 accepts an
// IKE rekey then, and the DELETE of the old IKE SA silently ends its CHILD
// rekey, leaving the old CHILD SA to expire unreplaced.
func (sa *ikeSA) childHalfOpen() bool {
	for _, k := range []taskKind{taskChildRekey, taskChildCreate, taskChildDelete} {
		if sa.tm.activeKind(k) != nil {
			return true
		}
	}
	for _, c := range sa.children {
		if c.state == childRekeying || c.state == childDeleting || c.replaces != nil {
			return true
		}
	}
	return false
}
