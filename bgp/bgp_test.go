package bgp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func TestNotificationName(t *testing.T) {
	for _, c := range []struct {
		code, sub uint8
		want      string
	}{
		{6, 1, "Cease / Maximum Number of Prefixes Reached"},
		{6, 2, "Cease / Administrative Shutdown"},
		{4, 0, "Hold Timer Expired"},
		{2, 2, "OPEN Message Error / Bad Peer AS"},
		{6, 99, "Cease / subcode 99"},
		{42, 1, "error code 42 / subcode 1"},
	} {
		if got := notificationName(c.code, c.sub); got != c.want {
			t.Errorf("notificationName(%d, %d) = %q, want %q", c.code, c.sub, got, c.want)
		}
	}
}

func TestPrefixWarning(t *testing.T) {
	for _, c := range []struct {
		count int
		limit uint32
		want  string // substring; "" = no warning
	}{
		{0, 0, ""},
		{1000, 0, ""},
		{89, 100, ""},
		{90, 100, "at least 90%"},
		{100, 100, "at least 90%"},
		{101, 100, "over the peer's limit"},
		{899, 1000, ""},
		{900, 1000, "at least 90%"},
		{1, 1, "at least 90%"},
	} {
		got := prefixWarning(c.count, c.limit)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("prefixWarning(%d, %d) = %q, want %q", c.count, c.limit, got, c.want)
		}
	}
}

func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestNeighborValidation(t *testing.T) {
	good := Neighbor{Name: "t1", PeerAddr: addr("169.254.15.193"), LocalAddr: addr("169.254.15.194"), PeerASN: 64512}
	n, err := good.normalize(65000)
	if err != nil {
		t.Fatal(err)
	}
	if n.HoldTime != 30*time.Second || n.Keepalive != 10*time.Second {
		t.Fatalf("defaults: hold %v keepalive %v, want 30s 10s", n.HoldTime, n.Keepalive)
	}
	for name, mod := range map[string]func(*Neighbor){
		"no name":        func(n *Neighbor) { n.Name = "" },
		"no peer":        func(n *Neighbor) { n.PeerAddr = netip.Addr{} },
		"family":         func(n *Neighbor) { n.LocalAddr = addr("fd00::2") },
		"same address":   func(n *Neighbor) { n.LocalAddr = n.PeerAddr },
		"no ASN":         func(n *Neighbor) { n.PeerASN = 0 },
		"iBGP":           func(n *Neighbor) { n.PeerASN = 65000 },
		"hold too short": func(n *Neighbor) { n.HoldTime = 2 * time.Second },
		"keepalive":      func(n *Neighbor) { n.HoldTime, n.Keepalive = 9*time.Second, 9*time.Second },
		"prepend":        func(n *Neighbor) { n.Prepend = 11 },
		"neg prepend":    func(n *Neighbor) { n.Prepend = -1 },
	} {
		n := good
		mod(&n)
		if _, err := n.normalize(65000); err == nil || !strings.HasPrefix(err.Error(), "bgp: ") {
			t.Errorf("%s: normalize error = %v", name, err)
		}
	}
	// The password never shows up in the description.
	good.Password = "s3cret-md5"
	if strings.Contains(good.String(), "s3cret") {
		t.Fatalf("String() leaks the password: %s", good.String())
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{RouterID: addr("192.0.2.1")},
		{ASN: 65000},
		{ASN: 65000, RouterID: addr("fd00::1")},
		{ASN: 65000, RouterID: addr("0.0.0.0")},
		{ASN: 65000, RouterID: addr("192.0.2.1"), ListenPort: -2},
		{ASN: 65000, RouterID: addr("192.0.2.1"), ListenPort: 70000},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

func TestMultipath(t *testing.T) {
	a := pfx("10.0.0.0/16")
	b := pfx("10.2.0.0/16")
	paths := []Path{
		{Prefix: a, Neighbor: "t2", ASPath: []uint32{64512}, MED: 100},
		{Prefix: a, Neighbor: "t1", ASPath: []uint32{64512}, MED: 100, Best: true},
		{Prefix: a, Neighbor: "t3", ASPath: []uint32{64512}, MED: 200},
		{Prefix: a, Neighbor: "t4", ASPath: []uint32{64512, 64512}, MED: 100},
		// No Best flag: the reference is the lowest MED.
		{Prefix: b, Neighbor: "t2", ASPath: []uint32{64512}, MED: 50},
		{Prefix: b, Neighbor: "t1", ASPath: []uint32{64512}, MED: 10},
	}
	var got []string
	for _, p := range Multipath(paths) {
		got = append(got, p.Prefix.String()+"@"+p.Neighbor)
	}
	want := []string{"10.0.0.0/16@t1", "10.0.0.0/16@t2", "10.2.0.0/16@t1"}
	if !slices.Equal(got, want) {
		t.Fatalf("Multipath = %v, want %v", got, want)
	}
	// Higher LOCAL_PREF wins over a shorter AS path.
	paths = []Path{
		{Prefix: a, Neighbor: "t1", ASPath: []uint32{1}, LocalPref: 100},
		{Prefix: a, Neighbor: "t2", ASPath: []uint32{1, 2}, LocalPref: 200},
	}
	if mp := Multipath(paths); len(mp) != 1 || mp[0].Neighbor != "t2" {
		t.Fatalf("Multipath = %v, want t2 only", mp)
	}
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(level slog.Level) (*slog.Logger, *syncBuf) {
	b := &syncBuf{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level})), b
}

func TestSlogAdapter(t *testing.T) {
	l, buf := testLogger(slog.LevelInfo)
	var seen []string
	a := &slogAdapter{l: l, observe: func(msg string, _ gobgplog.Fields) { seen = append(seen, msg) }}
	if a.GetLevel() != gobgplog.InfoLevel {
		t.Fatalf("GetLevel = %v at slog Info", a.GetLevel())
	}
	a.Info("Add a peer configuration", gobgplog.Fields{"Key": "192.0.2.1"})
	a.Debug("try to connect", nil)
	a.Warn("cannot set TTL (255) for TCPListener", nil)
	a.Warn("some warning", gobgplog.Fields{"Key": "192.0.2.1", "AuthPassword": "hunter2", "Err": errors.New("boom")})
	a.Fatal("code logic bug", nil) // must not exit
	a.Panic("unknown msg type", nil)
	out := buf.String()
	for _, s := range []string{"Add a peer configuration", "try to connect", "cannot set TTL", "hunter2"} {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
	for _, s := range []string{`level=WARN msg="gobgp: some warning"`, "err=boom", "key=192.0.2.1", `level=ERROR msg="gobgp: code logic bug"`, `msg="gobgp: unknown msg type"`} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %q:\n%s", s, out)
		}
	}
	if len(seen) != 6 {
		t.Errorf("observer saw %v, want every message", seen)
	}
	dl, _ := testLogger(slog.LevelDebug)
	if (&slogAdapter{l: dl}).GetLevel() != gobgplog.DebugLevel {
		t.Error("GetLevel is not Debug at slog Debug")
	}
}

// The observer turns GoBGP's log fields into LastError and the state log
// line carries the reason, once.
func TestObserveAndStateLog(t *testing.T) {
	l, buf := testLogger(slog.LevelInfo)
	s, err := New(Config{ASN: 65000, RouterID: addr("192.0.2.2"), Logger: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetNeighbors([]Neighbor{{Name: "t1", PeerAddr: addr("192.0.2.1"), PeerASN: 64512}}); err != nil {
		t.Fatal(err)
	}
	s.peerState("192.0.2.1", "Established")
	s.observe("received notification", gobgplog.Fields{"Key": "192.0.2.1", "Code": uint8(6), "Subcode": uint8(1), "Data": []byte{}})
	s.observe("Peer Down", gobgplog.Fields{"Key": "192.0.2.1", "Reason": "notification-received code 6(cease) subcode 1"})
	s.observe("received notification", gobgplog.Fields{"Key": "198.51.100.1", "Code": uint8(4)}) // unknown peer: ignored
	if !s.peerState("192.0.2.1", "Idle") {
		t.Fatal("state change not reported")
	}
	if s.peerState("192.0.2.1", "Idle") {
		t.Fatal("repeated state reported as a change")
	}
	st := s.Status()
	if len(st) != 1 || st[0].LastError != "received NOTIFICATION Cease / Maximum Number of Prefixes Reached" {
		t.Fatalf("Status = %+v", st)
	}
	out := buf.String()
	if !strings.Contains(out, `level=WARN msg="bgp: session down" neighbor=t1 peer=192.0.2.1 from=Established to=Idle reason="notification-received code 6(cease) subcode 1" error="received NOTIFICATION Cease / Maximum Number of Prefixes Reached"`) {
		t.Fatalf("no session-down line with reason:\n%s", out)
	}

	// A NOTIFICATION GoBGP sent on its own (a MessageError) and a hold
	// timer expiry.
	s.observe("sent notification", gobgplog.Fields{"Key": "192.0.2.1", "Data": bgp.NewMessageError(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_BAD_PEER_AS, nil, "bad peer AS 1")})
	if got := s.Status()[0].LastError; got != "sent NOTIFICATION OPEN Message Error / Bad Peer AS: bad peer AS 1" {
		t.Fatalf("LastError = %q", got)
	}
	s.observe("hold timer expired", gobgplog.Fields{"Key": "192.0.2.1"})
	if got := s.Status()[0].LastError; got != "hold timer expired" {
		t.Fatalf("LastError = %q", got)
	}
}

// offlineServer starts a Server that never sends a packet: it does not
// listen and its neighbors are administratively down.
func offlineServer(t *testing.T, ns []Neighbor) (*Server, *syncBuf) {
	t.Helper()
	l, buf := testLogger(slog.LevelInfo)
	s, err := New(Config{ASN: 65000, RouterID: addr("192.0.2.2"), ListenPort: -1, Logger: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetNeighbors(ns); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if err := s.SetPeerUp(n.Name, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, buf
}

func (s *Server) ribPrefixes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, a := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		err := s.gobgp().ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: family(a)}, func(d *api.Destination) {
			out = append(out, d.Prefix)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Server) peers(t *testing.T) map[string]*api.Peer {
	t.Helper()
	m := map[string]*api.Peer{}
	if err := s.gobgp().ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) { m[p.Conf.NeighborAddress] = p }); err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *Server) exportStatements(t *testing.T) []*api.Statement {
	t.Helper()
	var out []*api.Statement
	err := s.gobgp().ListPolicy(context.Background(), &api.ListPolicyRequest{Name: exportPolicyName}, func(p *api.Policy) { out = p.Statements })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestServerOffline(t *testing.T) {
	ns := []Neighbor{
		{Name: "t1", PeerAddr: addr("192.0.2.1"), LocalAddr: addr("192.0.2.2"), PeerASN: 64512, PrefixLimitWarn: 3},
		{Name: "t2", PeerAddr: addr("192.0.2.5"), LocalAddr: addr("192.0.2.6"), PeerASN: 64512, Prepend: 2, MED: 100},
		{Name: "v6", PeerAddr: addr("fd00::1"), LocalAddr: addr("fd00::2"), PeerASN: 64512},
	}
	s, buf := offlineServer(t, ns)

	// Prefixes: declarative diff, masked and deduplicated.
	if err := s.SetAdvertised([]netip.Prefix{pfx("10.1.0.0/24"), pfx("10.1.1.7/24"), pfx("10.1.1.0/24"), pfx("fd10::/48")}); err != nil {
		t.Fatal(err)
	}
	if got, want := s.ribPrefixes(t), []string{"10.1.0.0/24", "10.1.1.0/24", "fd10::/48"}; !slices.Equal(got, want) {
		t.Fatalf("RIB = %v, want %v", got, want)
	}
	if err := s.SetAdvertised([]netip.Prefix{pfx("10.1.1.0/24"), pfx("10.2.0.0/16"), pfx("10.3.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	if got, want := s.ribPrefixes(t), []string{"10.1.1.0/24", "10.2.0.0/16", "10.3.0.0/16"}; !slices.Equal(got, want) {
		t.Fatalf("RIB = %v, want %v", got, want)
	}
	if len(s.Learned()) != 0 {
		t.Fatalf("Learned() = %v; locally originated prefixes must not be listed", s.Learned())
	}
	if err := s.SetAdvertised([]netip.Prefix{{}}); err == nil {
		t.Fatal("invalid prefix accepted")
	}

	// Status before any session: Idle, admin down, prefix warning on t1
	// only (3 IPv4 prefixes against a limit of 3).
	st := s.Status()
	if len(st) != 3 || st[0].Name != "t1" || st[1].Name != "t2" || st[2].Name != "v6" {
		t.Fatalf("Status order: %+v", st)
	}
	for _, n := range st {
		if n.State != "Idle" || !n.AdminDown || n.Uptime != 0 {
			t.Errorf("status %+v: want Idle, admin down", n)
		}
	}
	if st[0].Warning == "" || st[1].Warning != "" {
		t.Errorf("warnings: t1 %q, t2 %q", st[0].Warning, st[1].Warning)
	}
	if !strings.Contains(buf.String(), `msg="bgp: prefix limit" neighbor=t1`) {
		t.Errorf("prefix-limit warning not logged:\n%s", buf.String())
	}

	// GoBGP peers: timers, families, local address, admin state.
	peers := s.peers(t)
	p1, p6 := peers["192.0.2.1"], peers["fd00::1"]
	if p1 == nil || p6 == nil || len(peers) != 3 {
		t.Fatalf("GoBGP peers: %v", peers)
	}
	if p1.Transport.LocalAddress != "192.0.2.2" || p1.Transport.PassiveMode || p1.Timers.Config.HoldTime != 30 || p1.Timers.Config.KeepaliveInterval != 10 || p1.Timers.Config.ConnectRetry != connectRetrySeconds {
		t.Errorf("t1 peer config: transport %v timers %v", p1.Transport, p1.Timers.Config)
	}
	if p1.State.AdminState != api.PeerState_DOWN {
		t.Errorf("t1 admin state %v, want DOWN", p1.State.AdminState)
	}
	if f := p6.AfiSafis[0].Config.Family; f.Afi != api.Family_AFI_IP6 {
		t.Errorf("v6 peer family %v", f)
	}

	// Export policy: one statement per neighbor, prepend and MED on t2.
	stmts := s.exportStatements(t)
	if len(stmts) != 3 {
		t.Fatalf("export statements: %v", stmts)
	}
	if a := stmts[1].Actions; a.AsPrepend.GetRepeat() != 2 || a.AsPrepend.GetAsn() != 65000 || a.Med.GetValue() != 100 || a.RouteAction != api.RouteAction_ACCEPT {
		t.Errorf("t2 export actions: %v", a)
	}
	if a := stmts[0].Actions; a.AsPrepend != nil || a.Med != nil {
		t.Errorf("t1 export actions: %v", a)
	}

	// Changing only the export keeps the GoBGP peer; changing the ASN
	// re-creates it (still admin down); removing deletes it.
	ns[1].Prepend = 0
	ns[0].PeerASN = 64513
	ns = ns[:2]
	if err := s.SetNeighbors(ns); err != nil {
		t.Fatal(err)
	}
	peers = s.peers(t)
	if len(peers) != 2 || peers["192.0.2.1"].Conf.PeerAsn != 64513 || peers["192.0.2.1"].State.AdminState != api.PeerState_DOWN {
		t.Fatalf("after SetNeighbors: %v", peers)
	}
	if a := s.exportStatements(t)[1].Actions; a.AsPrepend != nil || a.Med.GetValue() != 100 {
		t.Errorf("t2 export after change: %v", a)
	}
	if out := buf.String(); !strings.Contains(out, `msg="bgp: neighbor export changed" neighbor=t2`) || !strings.Contains(out, `msg="bgp: neighbor removed" neighbor=v6`) || !strings.Contains(out, `msg="bgp: neighbor changed, session resets" neighbor=t1`) {
		t.Errorf("log lacks the neighbor changes:\n%s", out)
	}

	// Validation is all-or-nothing.
	if err := s.SetNeighbors(append(ns, ns[0])); err == nil {
		t.Fatal("duplicate neighbor accepted")
	}
	if len(s.peers(t)) != 2 {
		t.Fatal("a rejected SetNeighbors changed the peers")
	}

	if err := s.SetPeerUp("nosuch", true); err == nil {
		t.Fatal("SetPeerUp of an unknown neighbor succeeded")
	}
	if err := s.SetPeerUp("t1", false); err != nil {
		t.Fatalf("repeating the admin state: %v", err)
	}

	s.Stop()
	s.Stop()
	if err := s.SetNeighbors(nil); !errors.Is(err, errStopped) {
		t.Fatalf("SetNeighbors after Stop: %v", err)
	}
	if s.Learned() != nil {
		t.Fatal("Learned after Stop")
	}
}

func TestOnUpdateDebounce(t *testing.T) {
	s, _ := offlineServer(t, nil)
	var calls atomic.Int32
	done := make(chan struct{}, 10)
	s.OnUpdate(func() {
		calls.Add(1)
		done <- struct{}{}
	})
	for range 50 {
		s.changed()
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("OnUpdate not called")
	}
	time.Sleep(3 * updateDebounce)
	if n := calls.Load(); n != 1 {
		t.Fatalf("50 changes in a burst gave %d calls, want 1", n)
	}
	// SetAdvertised and SetNeighbors do not call back synchronously, and
	// a nil callback is fine.
	s.OnUpdate(nil)
	s.changed()
	time.Sleep(2 * updateDebounce)
}

func TestBeforeStart(t *testing.T) {
	s, err := New(Config{ASN: 65000, RouterID: addr("192.0.2.2"), ListenPort: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetNeighbors([]Neighbor{{Name: "t1", PeerAddr: addr("192.0.2.1"), PeerASN: 64512}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdvertised([]netip.Prefix{pfx("10.1.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPeerUp("t1", false); err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	if len(st) != 1 || st[0].State != "Idle" || !st[0].AdminDown {
		t.Fatalf("Status before Start: %+v", st)
	}
	if s.Learned() != nil {
		t.Fatal("Learned before Start")
	}
	s.Stop()
	if err := s.Start(context.Background()); !errors.Is(err, errStopped) {
		t.Fatalf("Start after Stop: %v", err)
	}
}

// TestReconcileAdmin: when GoBGP's admin state of a neighbor differs from
// the one cgw asked for (GoBGP drops an Enable/DisablePeer while another is
// queued), ReconcileAdmin applies cgw's again, both ways, and so does
// StatusReconciled, from its one listing.
func TestReconcileAdmin(t *testing.T) {
	t.Run("ReconcileAdmin", func(t *testing.T) {
		testReconcileAdmin(t, (*Server).ReconcileAdmin)
	})
	t.Run("StatusReconciled", func(t *testing.T) {
		testReconcileAdmin(t, func(s *Server) error {
			st, err := s.StatusReconciled()
			if len(st) != 1 || st[0].Name != "t1" {
				t.Errorf("StatusReconciled: status %+v, want t1's", st)
			}
			return err
		})
	})
}

func testReconcileAdmin(t *testing.T, reconcile func(*Server) error) {
	s := startedServer(t, "192.0.2.1")
	if err := s.SetPeerUp("t1", false); err != nil {
		t.Fatal(err)
	}
	adminState := func() api.PeerState_AdminState {
		t.Helper()
		var st api.PeerState_AdminState = -1
		err := s.gobgp().ListPeer(context.Background(), &api.ListPeerRequest{Address: "192.0.2.1"}, func(p *api.Peer) { st = p.State.AdminState })
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	waitAdmin := func(want api.PeerState_AdminState) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if adminState() == want {
				return
			}
		}
		t.Fatalf("GoBGP admin state %v, want %v", adminState(), want)
	}
	waitAdmin(api.PeerState_DOWN)
	// cgw wants it down; GoBGP has it up (as if the disable was lost).
	if err := s.gobgp().EnablePeer(context.Background(), &api.EnablePeerRequest{Address: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	waitAdmin(api.PeerState_UP)
	if err := reconcile(s); err != nil {
		t.Fatal(err)
	}
	waitAdmin(api.PeerState_DOWN)
	// cgw wants it up; GoBGP has it down (the enable was lost).
	if err := s.SetPeerUp("t1", true); err != nil {
		t.Fatal(err)
	}
	waitAdmin(api.PeerState_UP)
	if err := s.gobgp().DisablePeer(context.Background(), &api.DisablePeerRequest{Address: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	waitAdmin(api.PeerState_DOWN)
	if err := reconcile(s); err != nil {
		t.Fatal(err)
	}
	waitAdmin(api.PeerState_UP)
}
