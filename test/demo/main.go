// Command demo is `make demo`: it brings up the simulated AWS side (two
// strongSwan endpoints with BIRD, a VPC host behind them, a LAN host behind
// the customer gateway), imports the simulated connection's AWS XML with
// `cgwctl import-aws`, runs cgwd against it, and shows the tunnels carrying
// traffic. Everything runs in network namespaces it creates and removes.
//
//	go run ./test/demo [-keep] [-nat] [-static] [-seconds 5]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/control/client"
	"github.com/cgwproject/cgw/test/sim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	keep := flag.Bool("keep", false, "leave the simulation and cgwd running (tear down later with: go run ./test/sim/cmd/simctl down -id ID)")
	nat := flag.Bool("nat", false, "put the customer gateway behind a NAT")
	static := flag.Bool("static", false, "static routing instead of BGP")
	seconds := flag.Int("seconds", 5, "iperf3 duration")
	flag.Parse()
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the demo creates network namespaces and TUN devices")
	}
	bin := os.Getenv("CGW_BIN")
	if bin == "" {
		bin = "bin"
	}
	bin, _ = filepath.Abs(bin)
	for _, b := range []string{"cgwd", "cgwctl"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%s not built: run `make build` first (make demo does)", filepath.Join(bin, b))
		}
	}
	if err := sim.CheckTools(sim.Options{}); err != nil {
		return fmt.Errorf("%v (make demo runs test/deps.sh to install them)", err)
	}

	step("Bringing up the simulated AWS side (strongSwan + BIRD per tunnel endpoint, a VPC host, a LAN host)")
	opts := sim.Options{NAT: *nat, KeepDir: *keep, Logf: func(f string, a ...any) { fmt.Printf("  "+f+"\n", a...) }}
	if *static {
		opts.Routing = sim.RoutingStatic
	}
	s, err := sim.New(opts)
	if err != nil {
		return err
	}
	teardown := func() {
		if *keep {
			fmt.Printf("\nLeft running (simulation %s, files in %s).\n", s.ID(), s.Dir())
			fmt.Printf("  cgwctl: CGW_SOCKET=%s %s/cgwctl status\n", s.CgwdSocket(sim.Cust), bin)
			fmt.Printf("  ping:   ip netns exec %s ping %s\n", s.NS(sim.LAN), sim.VPCHostAddr)
			fmt.Printf("  stop:   go run ./test/sim/cmd/simctl down -id %s\n", s.ID())
			return
		}
		step("Tearing down")
		s.Close()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		s.Close()
		os.Exit(130)
	}()

	step("Importing the connection's AWS configuration XML with cgwctl import-aws")
	xmlPath := filepath.Join(s.Dir(), "aws.xml")
	if err := os.WriteFile(xmlPath, s.AWSXML(), 0o600); err != nil {
		teardown()
		return err
	}
	args := []string{"import-aws", "--xml", xmlPath, "--local-address", sim.CustPublicAddr.String()}
	if *static {
		args = append(args, "--remote-prefix", sim.DefaultVPC.String())
	} else {
		args = append(args, "--advertise", sim.DefaultLAN.String())
	}
	fmt.Printf("  $ cgwctl %s\n", strings.Join(args, " "))
	out, err := exec.Command(filepath.Join(bin, "cgwctl"), args...).Output()
	if err != nil {
		teardown()
		return fmt.Errorf("cgwctl import-aws: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil {
		teardown()
		return err
	}
	sock := s.CgwdSocket(sim.Cust)
	doc["control"] = map[string]any{"socket": sock}
	cfg, _ := yaml.Marshal(doc)

	step("Starting cgwd in the customer namespace")
	start := time.Now()
	proc, err := s.StartCgwd(sim.Cust, filepath.Join(bin, "cgwd"), string(cfg))
	if err != nil {
		teardown()
		return err
	}
	c := client.New(sock)
	st, err := waitUp(c, proc, 90*time.Second)
	if err != nil {
		fmt.Println(proc.Tail(40))
		teardown()
		return err
	}
	fmt.Printf("  both tunnels up %.1f s after cgwd started\n", time.Since(start).Seconds())
	_ = st

	step("cgwctl status")
	status, _ := exec.Command(filepath.Join(bin, "cgwctl"), "status", "--socket", sock).CombinedOutput()
	fmt.Println(indent(string(status)))

	step("What the AWS side (strongSwan) sees")
	for i := 1; i <= 2; i++ {
		sas, err := s.ListSAs(i)
		if err != nil {
			fmt.Printf("  endpoint %d: %v\n", i, err)
			continue
		}
		for _, sa := range sas {
			fmt.Printf("  AWS endpoint %d: IKE SA %s, %d CHILD SA(s) installed\n", i, sa.State, len(sa.Installed()))
		}
	}

	step(fmt.Sprintf("ping LAN host %s -> VPC host %s through the tunnel", sim.LANHostAddr, sim.VPCHostAddr))
	if err := s.WaitPing(sim.LAN, sim.VPCHostAddr, 30*time.Second); err != nil {
		teardown()
		return fmt.Errorf("ping did not pass: %w", err)
	}
	loss, err := s.Ping(sim.LAN, sim.VPCHostAddr, 10, 200*time.Millisecond)
	fmt.Printf("  10 pings, %.0f%% loss %v\n", loss, errText(err))

	step(fmt.Sprintf("iperf3 LAN -> VPC, %d s, one TCP stream", *seconds))
	r, err := s.Iperf3(sim.LAN, sim.VPCHostAddr, *seconds, 1, false)
	if err != nil {
		fmt.Printf("  iperf3: %v\n", err)
	} else {
		fmt.Printf("  %.2f Gbit/s, %d retransmits (the AWS side is strongSwan's userspace libipsec, usually the bottleneck)\n", r.Gbps, r.Retransmits)
	}
	teardown()
	return nil
}

func waitUp(c *client.Client, proc *sim.Process, timeout time.Duration) (*control.Status, error) {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if ok, err := proc.Exited(); ok {
			return nil, fmt.Errorf("cgwd exited: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := c.Status(ctx)
		cancel()
		if err == nil {
			up, desc := 0, []string{}
			for _, cn := range st.Connections {
				for _, t := range cn.Tunnels {
					if t.State == "up" {
						up++
					}
					d := fmt.Sprintf("%s: %s (IKE %s, CHILD %s", t.Name, t.State, t.IKEState, t.ChildState)
					if t.BGP != nil {
						d += ", BGP " + t.BGP.State
					}
					desc = append(desc, d+")")
				}
			}
			line := strings.Join(desc, "; ")
			if line != last {
				fmt.Println("  " + line)
				last = line
			}
			if up == 2 {
				return st, nil
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return nil, fmt.Errorf("tunnels not up within %v", timeout)
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

func errText(err error) string {
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return ""
}
