package ike_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/ike/iketest"
	"github.com/cgwproject/cgw/ipsec"
)

// newSeededPair is newPair with the random sources seeded by seed, so that
// rekey fuzz differs between runs.
func newSeededPair(t *testing.T, seed string, edit func(cgw, aws *ike.PeerConfig)) *pair {
	t.Helper()
	n := iketest.NewNetwork()
	rnd := func(addr string) func(*ike.Config) {
		return func(c *ike.Config) { c.Rand = iketest.NewRand(seed + addr) }
	}
	p := &pair{net: n, cgw: n.AddWith(cgwAddr, testLogger(t), rnd(cgwAddr)), aws: n.AddWith(awsAddr, testLogger(t), rnd(awsAddr))}
	cc := peerConfig(t, "aws-t1", cgwAddr, awsAddr, ike.StartInitiate)
	ac := peerConfig(t, "cgw", awsAddr, cgwAddr, ike.StartRespond)
	if edit != nil {
		edit(&cc, &ac)
	}
	must(t, p.aws.Manager.AddPeer(ac))
	must(t, p.cgw.Manager.AddPeer(cc))
	t.Cleanup(func() { p.cgw.Manager.Close(); p.aws.Manager.Close() })
	p.net.Deliver()
	wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	return p
}

// The rekey moment is lifetime - margin - random(0 .. margin*fuzz/100) and
// the hard expiry is the lifetime, for the IKE and the CHILD SA; the zero
// config gets AWS's defaults (8 h / 1 h / 270 s / 100 % with RekeyFuzz
// 100 as config sets it).
func TestRekeySchedule(t *testing.T) {
	for _, tc := range []struct {
		name               string
		ike, child, margin time.Duration // zero: defaults
		fuzz               int
		wantIKE, wantChild time.Duration // effective lifetimes
		wantMargin         time.Duration
		wantSpread         bool
	}{
		{"AWS defaults", 0, 0, 0, 100, 28800 * time.Second, 3600 * time.Second, 270 * time.Second, true},
		{"no fuzz", 2 * time.Hour, 30 * time.Minute, time.Minute, 0, 2 * time.Hour, 30 * time.Minute, time.Minute, false},
		{"fuzz 50", 90 * time.Second, 30 * time.Second, 10 * time.Second, 50, 90 * time.Second, 30 * time.Second, 10 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ikeDelays, childDelays []time.Duration
			for seed := range 8 {
				p := newSeededPair(t, fmt.Sprint(seed), func(c, a *ike.PeerConfig) {
					c.IKELifetime, c.ChildLifetime, c.RekeyMargin, c.RekeyFuzz = tc.ike, tc.child, tc.margin, tc.fuzz
				})
				st := status(t, p.cgw)
				now := p.net.Clock.Now()
				maxFuzz := tc.wantMargin * time.Duration(tc.fuzz) / 100
				for _, l := range []struct {
					what              string
					rekeyAt, expireAt time.Time
					lifetime          time.Duration
					out               *[]time.Duration
				}{
					{"IKE", st.RekeyAt, st.ExpireAt, tc.wantIKE, &ikeDelays},
					{"CHILD", st.Children[0].RekeyAt, st.Children[0].ExpireAt, tc.wantChild, &childDelays},
				} {
					soft, hard := l.rekeyAt.Sub(now), l.expireAt.Sub(now)
					if hard != l.lifetime {
						t.Errorf("seed %d: %s hard expiry in %s, want %s", seed, l.what, hard, l.lifetime)
					}
					if hi, lo := l.lifetime-tc.wantMargin, l.lifetime-tc.wantMargin-maxFuzz; soft > hi || soft < lo {
						t.Errorf("seed %d: %s rekey in %s, want %s..%s", seed, l.what, soft, lo, hi)
					}
					*l.out = append(*l.out, soft)
				}
			}
			for _, d := range [][]time.Duration{ikeDelays, childDelays} {
				spread := false
				for _, x := range d {
					spread = spread || x != d[0]
				}
				if spread != tc.wantSpread {
					t.Errorf("rekey delays %v: spread %v, want %v", d, spread, tc.wantSpread)
				}
			}
		})
	}
}

// At the IKE SA's soft lifetime cgw rekeys it with CREATE_CHILD_SA (RFC
// 7296 1.3.2), not by re-authenticating with IKE_SA_INIT/IKE_AUTH: the
// CHILD SA is carried over untouched.
func TestIKERekeyAtSoftLifetimeIsNotReauth(t *testing.T) {
	p := established(t, func(c, a *ike.PeerConfig) {
		c.RekeyFuzz = 0 // rekey at exactly 8h - 270s
		a.IKELifetime, a.ChildLifetime = 24*time.Hour, 24*time.Hour
		c.ChildLifetime = 24 * time.Hour // keep CHILD rekeys out of the picture
	})
	before := status(t, p.cgw)
	rekeyAt := before.RekeyAt
	if d := rekeyAt.Sub(p.net.Clock.Now()); d != 8*time.Hour-270*time.Second {
		t.Fatalf("IKE rekey in %s, want 8h - 270s", d)
	}
	var seen []string
	p.net.Drop = func(from *iketest.Node, pk iketest.Packet) bool {
		seen = append(seen, exchangesOf(t, []iketest.Packet{pk})...)
		return false
	}
	p.net.Advance(rekeyAt.Sub(p.net.Clock.Now())-time.Second, 5*time.Second)
	if st := status(t, p.cgw); st.SPIi != before.SPIi {
		t.Fatalf("IKE SA rekeyed before its soft lifetime")
	}
	seen = nil
	p.net.Advance(2*time.Second, time.Second)
	after := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	var setup []string
	for _, ex := range seen {
		if ex != "INFORMATIONAL req" && ex != "INFORMATIONAL resp" { // DPD, DELETE
			setup = append(setup, ex)
		}
	}
	if want := []string{"CREATE_CHILD_SA req", "CREATE_CHILD_SA resp"}; strings.Join(setup, ",") != strings.Join(want, ",") {
		t.Errorf("exchanges at the soft lifetime %v, want one CREATE_CHILD_SA and no IKE_SA_INIT/IKE_AUTH (a rekey, not a reauthentication)", seen)
	}
	if after.SPIi == before.SPIi || !after.Initiator {
		t.Errorf("IKE SA not rekeyed by cgw")
	}
	if after.Children[0].InSPI != before.Children[0].InSPI || after.Children[0].OutSPI != before.Children[0].OutSPI {
		t.Errorf("CHILD SA replaced: a rekey must carry it over")
	}
	if d := after.ExpireAt.Sub(p.net.Clock.Now()); d < 8*time.Hour-2*time.Second || d > 8*time.Hour {
		t.Errorf("the new IKE SA expires in %s, want its own 8h lifetime", d)
	}
	if k := p.cgw.Listener.Kinds(); len(k) != 1 || k[0] != ike.EventIKERekeyed {
		t.Errorf("events %v, want IKERekeyed", k)
	}
}

// The peer deletes a CHILD SA we do not have (already deleted, or never
// ours): the DELETE is answered, the unknown SPI ignored (RFC 7296 1.4.1),
// and a known SPI in the same payload is still deleted.
func TestDeleteUnknownChildSPI(t *testing.T) {
	p := established(t, nil)
	st := status(t, p.cgw)
	/* <-- HDR, SK {D(ESP, 0x0badf00d)}
	   HDR, SK {} --> */
	must(t, ike.SendChildDelete(p.aws.Manager, "cgw", 0x0badf00d))
	p.net.Deliver()
	if in, out := p.cgw.Installer.Count(); in != 1 || out != 1 {
		t.Fatalf("an unknown SPI's DELETE changed the installed SAs: %d/%d", in, out)
	}
	if k := p.cgw.Listener.Kinds(); len(k) != 0 {
		t.Fatalf("events %v for an unknown SPI", k)
	}
	checkChildPair(t, p.cgw, p.aws)
	/* <-- HDR, SK {D(ESP, 0x0badf00d, real SPI)}
	   HDR, SK {D(ESP, our inbound SPI)} --> */
	must(t, ike.SendChildDelete(p.aws.Manager, "cgw", 0x0badf00d, st.Children[0].OutSPI))
	p.net.Deliver()
	if in, out := p.cgw.Installer.Count(); in != 0 || out != 0 {
		t.Fatalf("the known SPI was not deleted: %d/%d SAs left", in, out)
	}
	if !p.cgw.Listener.Has(ike.EventChildDown) {
		t.Errorf("no ChildDown for the deleted CHILD SA")
	}
	// cgw keeps the tunnel up: a new CHILD SA follows.
	p.net.Advance(5*time.Second, time.Second)
	wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
}

// We rekey a CHILD SA the peer no longer has (its DELETE never reached us,
// or it lost the state): it answers CHILD_SA_NOT_FOUND (RFC 7296 2.25), and
// we remove the SA and negotiate a new one instead of retrying the rekey.
func TestRekeyChildSANotFound(t *testing.T) {
	p := established(t, nil)
	old := status(t, p.cgw).Children[0]
	must(t, ike.ForgetChild(p.aws.Manager, "cgw"))
	p.cgw.Listener.Events(true)
	/* HDR, SK {N(REKEY_SA, old), SA, Ni, KEi, TSi, TSr} -->
	   <-- HDR, SK {N(CHILD_SA_NOT_FOUND)}
	   HDR, SK {SA, Ni, KEi, TSi, TSr} -->   (a new CHILD SA)
	   <-- HDR, SK {SA, Nr, KEr, TSi, TSr} */
	must(t, p.cgw.Manager.Rekey("aws-t1", false))
	p.net.Deliver()
	st := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if c := st.Children[0]; c.InSPI == old.InSPI {
		t.Fatalf("the unknown CHILD SA is still in use")
	}
	checkChildPair(t, p.cgw, p.aws)
	if k := p.cgw.Listener.Kinds(); len(k) != 2 || k[0] != ike.EventChildDown || k[1] != ike.EventChildUp {
		t.Errorf("events %v, want ChildDown, ChildUp", k)
	}
	for _, n := range []*iketest.Node{p.cgw, p.aws} {
		if in, out := n.Installer.Count(); in != 1 || out != 1 {
			t.Errorf("%s: %d/%d SAs installed, want one pair", n.Addr, in, out)
		}
	}
}

// The peer refuses every rekey of the CHILD SA (here: it cannot install
// SAs). The old SA stays in service until its hard lifetime, then it is
// deleted and a new CHILD SA negotiated.
func TestChildHardExpiryAfterFailedRekeys(t *testing.T) {
	p := established(t, func(c, a *ike.PeerConfig) {
		a.ChildLifetime = 2 * time.Hour // cgw rekeys first
	})
	old := status(t, p.cgw).Children[0]
	p.aws.Installer.SetFailAdd(true)
	/* at the soft lifetime and at each retry:
	   HDR, SK {N(REKEY_SA), SA, Ni, KEi, TSi, TSr} -->
	   <-- HDR, SK {N(NO_ADDITIONAL_SAS)} */
	p.net.Advance(old.ExpireAt.Sub(p.net.Clock.Now())-5*time.Second, 5*time.Second)
	st := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if c := st.Children[0]; c.InSPI != old.InSPI {
		t.Fatalf("the CHILD SA changed although every rekey failed")
	}
	failures := count(p.cgw, ike.EventNegotiationFailed)
	if failures < 2 {
		t.Errorf("%d failed rekeys reported, want the first one and a retry", failures)
	}
	/* at the hard lifetime:
	   HDR, SK {D(ESP, old)} -->     <-- HDR, SK {D(ESP, old)}
	   HDR, SK {SA, Ni, KEi, TSi, TSr} -->  <-- HDR, SK {SA, Nr, KEr, TSi, TSr} */
	p.aws.Installer.SetFailAdd(false)
	p.net.Advance(10*time.Second, time.Second)
	st = wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if c := st.Children[0]; c.InSPI == old.InSPI {
		t.Fatalf("the CHILD SA outlived its hard lifetime")
	}
	for _, n := range []*iketest.Node{p.cgw, p.aws} {
		for _, spi := range []ipsec.SPI{old.InSPI, old.OutSPI} {
			for _, d := range []ipsec.Direction{ipsec.Inbound, ipsec.Outbound} {
				if _, ok := n.Installer.Installed(d, spi); ok {
					t.Errorf("%s: expired SA %s %s still installed", n.Addr, d, spi)
				}
			}
		}
	}
	checkChildPair(t, p.cgw, p.aws)
	k := p.cgw.Listener.Kinds()
	if len(k) < 2 || k[len(k)-2] != ike.EventChildDown || k[len(k)-1] != ike.EventChildUp {
		t.Errorf("events %v, want ChildDown, ChildUp at the end", k)
	}
}

// Every rekey, collision and DPD step is one log line that says why.
func TestRekeyLogLines(t *testing.T) {
	var buf bytes.Buffer
	n := iketest.NewNetwork()
	h := slog.NewTextHandler(&lockedWriter{w: &buf}, nil)
	p := &pair{net: n, cgw: n.Add(cgwAddr, slog.New(h)), aws: n.Add(awsAddr, testLogger(t))}
	must(t, p.aws.Manager.AddPeer(peerConfig(t, "cgw", awsAddr, cgwAddr, ike.StartRespond)))
	must(t, p.cgw.Manager.AddPeer(peerConfig(t, "aws-t1", cgwAddr, awsAddr, ike.StartInitiate)))
	t.Cleanup(func() { p.cgw.Manager.Close(); p.aws.Manager.Close() })
	n.Deliver()
	must(t, p.cgw.Manager.Rekey("aws-t1", false))
	n.Deliver()
	must(t, p.aws.Manager.Rekey("cgw", false))
	n.Deliver()
	must(t, p.cgw.Manager.Rekey("aws-t1", true))
	n.Deliver()
	ike.SetNonceFirstByte(p.cgw.Manager, 0x00, 0xff)
	must(t, p.cgw.Manager.Rekey("aws-t1", false))
	must(t, p.aws.Manager.Rekey("cgw", false))
	n.Deliver()
	n.Drop = func(*iketest.Node, iketest.Packet) bool { return true }
	n.Advance(60*time.Second, time.Second)
	p.cgw.Manager.Flush()
	out := buf.String()
	lines := strings.Split(out, "\n")
	for _, want := range [][2]string{
		{`msg="IKE phase 1 Negotiating"`, `reason="startup action initiate"`},
		{`msg="CHILD SA rekey started"`, `reason="operator request" old_in_spi=`},
		{`msg="IKE phase 2 Established (rekeyed)"`, `reason="operator request" old_in_spi=`},
		{`msg="IKE phase 2 Established (rekeyed)"`, `reason="rekeyed by the peer" old_in_spi=`},
		{`msg="IKE SA rekey started"`, `reason="operator request" ike_sa=`},
		{`msg="IKE phase 1 Established (rekeyed)"`, `reason="operator request" old_ike_sa=`},
		{`msg="CHILD SA rekey collision lost: our new SA holds the lowest nonce`, `redundant_in_spi=`},
		{`msg="DPD probe unanswered, retransmitting"`, `reason="no answer within 10s"`},
		{`msg="peer is dead"`, `reason="DPD timed out after 3 unanswered probes 10s apart"`},
		{`msg="IKE phase 1 Negotiating"`, `reason="DPD action restart: the peer was declared dead"`},
	} {
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, want[0]) && strings.Contains(l, want[1])
		}
		if !found {
			t.Errorf("log lacks a line %s ... %s", want[0], want[1])
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "rekeyed)") && (!strings.Contains(l, " in_spi=") && !strings.Contains(l, " ike_sa=")) {
			t.Errorf("rekey line without the new SPIs: %s", l)
		}
	}
}

// lockedWriter serialises log writes from the peer goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// The responder of a CHILD rekey keeps sending on the old SA until the
// initiator's DELETE for it proves the initiator has the new inbound SA;
// only then does it switch. Without a DELETE (and without traffic on the
// new SA, which would switch it at once) it asks after 30 s by rekeying the
// old SA itself; the initiator, still deleting that SA, answers
// TEMPORARY_FAILURE until its retransmitted DELETE gets through.
func TestChildRekeyResponderSwitchesOnDelete(t *testing.T) {
	for _, lostDelete := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete lost=%v", lostDelete), func(t *testing.T) {
			p := established(t, nil)
			old := status(t, p.aws).Children[0]
			must(t, p.cgw.Manager.Rekey("aws-t1", false))
			/* HDR, SK {N(REKEY_SA), SA, Ni, KEi, TSi, TSr} --> */
			p.net.Step()
			nw := status(t, p.aws).Children[0]
			if nw.InSPI == old.InSPI {
				t.Fatalf("aws did not answer the rekey")
			}
			if _, ok := p.aws.Installer.Installed(ipsec.Inbound, nw.InSPI); !ok {
				t.Fatalf("aws answered before installing the new inbound SA")
			}
			if got := p.aws.Installer.ActiveOutbound(); got != old.OutSPI {
				t.Fatalf("aws sends on %s right after answering, want the old SA %s", got, old.OutSPI)
			}
			/* <-- HDR, SK {SA, Nr, KEr, TSi, TSr}: cgw switches at once */
			p.net.Step()
			if got := p.cgw.Installer.ActiveOutbound(); got != nw.InSPI {
				t.Fatalf("cgw sends on %s after the answer, want the new SA %s", got, nw.InSPI)
			}
			if lostDelete {
				p.net.Drop = func(from *iketest.Node, _ iketest.Packet) bool { return from == p.cgw }
				p.net.Advance(29*time.Second, time.Second)
				if got := p.aws.Installer.ActiveOutbound(); got != old.OutSPI {
					t.Fatalf("aws switched to %s without the DELETE before 30 s", got)
				}
				p.net.Drop = nil
				p.net.Advance(20*time.Second, time.Second)
			} else {
				/* HDR, SK {D(ESP, old)} --> : aws switches */
				p.net.Step()
			}
			if got := p.aws.Installer.ActiveOutbound(); got != nw.OutSPI {
				t.Fatalf("aws sends on %s, want the new SA %s", got, nw.OutSPI)
			}
			p.net.Advance(40*time.Second, time.Second)
			checkConverged(t, p)
			if n := count(p.aws, ike.EventChildRekeyed); n != 1 {
				t.Errorf("aws: %d ChildRekeyed events, want 1", n)
			}
		})
	}
}

// The IKE SA's rekey gets no answer (the peer drops it) until the hard
// lifetime: then the IKE SA and its CHILD SA leave at once, although the
// rekey is still being retransmitted, the peer is told with a DELETE, and
// a new IKE SA is negotiated from scratch.
func TestIKEHardExpiryDuringUnansweredRekey(t *testing.T) {
	p := established(t, func(c, a *ike.PeerConfig) {
		c.IKELifetime, c.RekeyMargin, c.RekeyFuzz = 10*time.Minute, time.Minute, 0
		c.ChildLifetime = 24 * time.Hour
		a.IKELifetime, a.ChildLifetime = 24*time.Hour, 24*time.Hour
	})
	before := status(t, p.cgw)
	expire := before.ExpireAt
	p.net.Drop = func(from *iketest.Node, pk iketest.Packet) bool {
		ex := exchangesOf(t, []iketest.Packet{pk})
		return from == p.cgw && ex[0] == "CREATE_CHILD_SA req"
	}
	/* at 9 min: HDR, SK {SA, Ni, KEi} --> (lost, retransmitted) */
	p.net.Advance(expire.Sub(p.net.Clock.Now())-time.Second, time.Second)
	st := wantState(t, p.cgw, ike.StateRekeying, ike.StateEstablished)
	if st.SPIi != before.SPIi {
		t.Fatalf("IKE SA replaced before its hard lifetime")
	}
	/* at 10 min: HDR, SK {D(IKE)} -->, then IKE_SA_INIT, IKE_AUTH */
	p.cgw.Listener.Events(true)
	p.net.Drop = nil
	p.net.Advance(2*time.Second, time.Second)
	if _, ok := p.cgw.Installer.Installed(ipsec.Inbound, before.Children[0].InSPI); ok {
		t.Errorf("expired CHILD SA still installed")
	}
	p.net.Advance(10*time.Second, time.Second)
	checkConverged(t, p)
	st = status(t, p.cgw)
	if st.SPIi == before.SPIi || st.Children[0].InSPI == before.Children[0].InSPI {
		t.Errorf("no new IKE and CHILD SA after the hard lifetime")
	}
	want := []ike.EventKind{ike.EventChildDown, ike.EventIKEDown, ike.EventIKEUp, ike.EventChildUp}
	if k := p.cgw.Listener.Kinds(); fmt.Sprint(k) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", k, want)
	}
}
