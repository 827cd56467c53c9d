package bgp_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cgwproject/cgw/bgp"
)

// TestNetnsLAN peers a bgp.Server with two BIRDs: one plays AWS (a tunnel
// neighbor), one an on-premises router (a LAN neighbor).
//
//	cgwlan-b BIRD AS64512 <- 169.254.15.193/30 -> cgwlan-a bgp.Server AS65000 <- 10.1.0.1/24 -> cgwlan-c BIRD AS65100
//	advertises 10.0.0.0/16                                                                    advertises 10.1.0.0/24, 10.2.0.0/24,
//	                                                                                          0.0.0.0/0, 169.254.0.0/16, 10.1.9.0/24 via AS 64512
const (
	lanNSA, lanNSB, lanNSC = "cgwlan-a", "cgwlan-b", "cgwlan-c"
	lanOurAddr             = "10.1.0.1"
	lanRouterAddr          = "10.1.0.254"
	lanSockEnv             = "CGWBGP_LAN_SOCK"
	lanChildEnv            = "CGWBGP_LAN_CHILD"
)

const lanAWSBird = `
log stderr all;
router id 169.254.15.193;
protocol device {}
protocol static vpc { ipv4; route 10.0.0.0/16 unreachable; }
protocol bgp aws {
	local 169.254.15.193 as 64512;
	neighbor 169.254.15.194 as 65000;
	connect delay time 1; connect retry time 2; error wait time 1, 3;
	ipv4 { import all; export where source = RTS_STATIC; };
}
`

const lanRouterBird = `
log stderr all;
router id 10.1.0.254;
protocol device {}
protocol static onprem {
	ipv4;
	route 10.1.0.0/24 unreachable;
	route 10.2.0.0/24 unreachable;
	route 0.0.0.0/0 unreachable;
	route 169.254.0.0/16 unreachable;
	route 10.1.9.0/24 unreachable;
}
protocol bgp cgw {
	local 10.1.0.254 as 65100;
	neighbor 10.1.0.1 as 65000;
	hold time 9; keepalive time 3;
	connect delay time 1; connect retry time 2; error wait time 1, 3;
	ipv4 {
		import all;
		export filter {
			if source != RTS_STATIC then reject;
			# A path through AWS's ASN: cgw must not hand it back to AWS.
			if net = 10.1.9.0/24 then bgp_path.prepend(64512);
			accept;
		};
	};
}
`

func TestNetnsLAN(t *testing.T) {
	if os.Getenv(lanChildEnv) == "1" {
		lanChild(t)
		return
	}
	run := netnsSetup(t, lanNSA, lanNSB, lanNSC)
	run("ip", "-n", lanNSA, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", lanNSB)
	run("ip", "-n", lanNSA, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", lanNSC)
	run("ip", "-n", lanNSA, "addr", "add", ourAddr+"/30", "dev", "va")
	run("ip", "-n", lanNSB, "addr", "add", awsAddr+"/30", "dev", "vb")
	run("ip", "-n", lanNSA, "addr", "add", lanOurAddr+"/24", "dev", "lan0")
	run("ip", "-n", lanNSC, "addr", "add", lanRouterAddr+"/24", "dev", "eth0")
	run("ip", "-n", lanNSA, "link", "set", "va", "up")
	run("ip", "-n", lanNSA, "link", "set", "lan0", "up")
	run("ip", "-n", lanNSB, "link", "set", "vb", "up")
	run("ip", "-n", lanNSC, "link", "set", "eth0", "up")
	awsSock := startNetnsBird(t, lanNSB, lanAWSBird)
	routerSock := startNetnsBird(t, lanNSC, lanRouterBird)
	runNetnsChild(t, lanNSA, "TestNetnsLAN", lanChildEnv+"=1", sockEnv+"="+awsSock, lanSockEnv+"="+routerSock)
}

// routerRoutes is what the LAN router's BIRD learned from cgw.
func routerRoutes(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("birdc", "-s", os.Getenv(lanSockEnv), "show", "route", "protocol", "cgw", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("birdc: %v: %s", err, out)
	}
	return string(out)
}

func lanChild(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := bgp.New(bgp.Config{ASN: 65000, RouterID: netip.MustParseAddr(ourAddr), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if err := srv.SetNeighbors([]bgp.Neighbor{{Name: "t1", PeerAddr: netip.MustParseAddr(awsAddr),
		LocalAddr: netip.MustParseAddr(ourAddr), PeerASN: 64512}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetAdvertised([]netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	router := bgp.LANNeighbor{Name: "core", PeerAddr: netip.MustParseAddr(lanRouterAddr), LocalAddr: netip.MustParseAddr(lanOurAddr),
		PeerASN: 65100, HoldTime: 9 * time.Second}
	if err := srv.SetLAN(bgp.LANConfig{Neighbors: []bgp.LANNeighbor{router}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The router learns the VPC prefix: next hop self, AS path through
	// us, MED of the preferred tunnel (0).
	waitFor(t, 25*time.Second, "router learned 10.0.0.0/16", func() bool {
		out := routerRoutes(t)
		return strings.Contains(out, "10.0.0.0/16") && strings.Contains(out, "BGP.next_hop: "+lanOurAddr) &&
			strings.Contains(out, "BGP.as_path: 65000 64512") && strings.Contains(out, "BGP.med: 0")
	})
	if out := routerRoutes(t); strings.Contains(out, "10.1.0.0/16") {
		t.Errorf("the router was sent our own bgp.advertise prefix:\n%s", out)
	}
	// AWS learns the allowed on-premises prefixes and nothing the rules
	// refuse: the default route, link-local, a path through AWS's ASN.
	awsHas := func(p string) bool { return strings.Contains(birdc(t, "show", "route", "protocol", "aws"), p+" ") }
	waitFor(t, 10*time.Second, "AWS learned 10.1.0.0/24 and 10.2.0.0/24", func() bool { return awsHas("10.1.0.0/24") && awsHas("10.2.0.0/24") })
	for _, p := range []string{"0.0.0.0/0", "169.254.0.0/16", "10.1.9.0/24"} {
		if awsHas(p) {
			t.Errorf("AWS received %s:\n%s", p, birdc(t, "show", "route", "protocol", "aws", "all"))
		}
	}
	if out := birdc(t, "show", "route", "10.1.0.0/24", "all"); !strings.Contains(out, "BGP.as_path: 65000 65100") || !strings.Contains(out, "BGP.next_hop: "+ourAddr) {
		t.Errorf("AWS's path to 10.1.0.0/24:\n%s", out)
	}
	if out := birdc(t, "show", "route", "10.1.0.0/24", "all"); strings.Contains(out, "BGP.large_community") {
		t.Errorf("cgw's internal tags leaked to AWS:\n%s", out)
	}
	waitFor(t, 10*time.Second, "all 5 router prefixes received", func() bool { return srv.LANStatus()[0].Received == 5 })
	st := srv.LANStatus()
	if len(st) != 1 || st[0].State != "Established" || st[0].Received != 5 || st[0].Accepted != 2 || st[0].Advertised != 1 {
		t.Errorf("LANStatus = %+v; want Established, 5 received, 2 accepted, 1 advertised", st)
	}
	if ls := srv.LANSessions(); len(ls) != 1 || ls[0].Name != "core" || ls[0].State != "Established" {
		t.Errorf("LANSessions = %+v; want core Established", ls)
	}
	if adv := srv.Advertised("core"); len(adv) != 1 || adv[0].Prefix != netip.MustParsePrefix("10.0.0.0/16") {
		t.Errorf("Advertised(core) = %+v", adv)
	}

	// An allow-list narrows what reaches AWS, without a session reset.
	router.Allow = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	if err := srv.SetLAN(bgp.LANConfig{Neighbors: []bgp.LANNeighbor{router}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "10.2.0.0/24 withdrawn from AWS", func() bool { return !awsHas("10.2.0.0/24") && awsHas("10.1.0.0/24") })

	// The tunnel becomes a backup tunnel: the LAN sees a worse MED.
	if err := srv.SetLAN(bgp.LANConfig{Neighbors: []bgp.LANNeighbor{router}, Backup: []string{"t1"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "MED 100 toward the LAN", func() bool { return strings.Contains(routerRoutes(t), "BGP.med: 100") })

	// Every tunnel down: the VPC prefix leaves the LAN at once.
	if err := srv.SetPeerUp("t1", false); err != nil {
		t.Fatal(err)
	}
	if el := waitFor(t, 5*time.Second, "10.0.0.0/16 withdrawn from the LAN", func() bool { return !strings.Contains(routerRoutes(t), "10.0.0.0/16") }); el > 2*time.Second {
		t.Errorf("withdrawal took %v", el)
	}
	if err := srv.SetPeerUp("t1", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 25*time.Second, "10.0.0.0/16 back at the LAN", func() bool { return strings.Contains(routerRoutes(t), "10.0.0.0/16") })

	// Drain: withdrawn from the LAN, the LAN session and AWS's on-premises
	// routes stay.
	if err := srv.SetLAN(bgp.LANConfig{Neighbors: []bgp.LANNeighbor{router}, Drained: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "drained: 10.0.0.0/16 withdrawn from the LAN", func() bool { return !strings.Contains(routerRoutes(t), "10.0.0.0/16") })
	if !awsHas("10.1.0.0/24") || srv.LANStatus()[0].State != "Established" || !srv.LANDrained() {
		t.Errorf("drain lost more than the LAN announcements: AWS routes %s, LAN %+v", birdc(t, "show", "route", "protocol", "aws"), srv.LANStatus())
	}
	if err := srv.SetLAN(bgp.LANConfig{Neighbors: []bgp.LANNeighbor{router}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "undrained: 10.0.0.0/16 back at the LAN", func() bool { return strings.Contains(routerRoutes(t), "10.0.0.0/16") })

	// Removing the LAN neighbor withdraws its prefixes from AWS.
	if err := srv.SetLAN(bgp.LANConfig{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "on-premises prefixes withdrawn from AWS", func() bool { return !awsHas("10.1.0.0/24") })
}
