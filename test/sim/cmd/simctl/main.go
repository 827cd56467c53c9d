// Command simctl starts, inspects and tears down the AWS VPN simulator of
// package sim by hand:
//
//	simctl up [-id ID] [-tunnels 1|2] [-nat] [-routing bgp|static] [-customer strongswan] [-aws none]
//	simctl status -id ID
//	simctl down -id ID | -all
//
// `up` leaves everything running, writes the AWS configuration XML to
// /tmp/cgw-sim-ID/aws.xml and prints the namespace names; `down` kills the
// processes inside the namespaces and deletes them.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cgwproject/cgw/test/sim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "simctl:", err)
		os.Exit(1)
	}
}

func stateDir(id string) string { return filepath.Join(os.TempDir(), "cgw-sim-"+id) }

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: simctl up|status|down [flags]")
	}
	fs := flag.NewFlagSet("simctl "+args[0], flag.ContinueOnError)
	id := fs.String("id", "", "simulation id (lowercase letters/digits); up: default random")
	tunnels := fs.Int("tunnels", 2, "number of AWS tunnels (1 or 2)")
	nat := fs.Bool("nat", false, "put the customer behind NAT in inet")
	routing := fs.String("routing", "bgp", "bgp or static")
	customer := fs.String("customer", "", `"" (nothing in cust) or strongswan`)
	aws := fs.String("aws", "", `"" (strongSwan + BIRD) or none`)
	all := fs.Bool("all", false, "down: tear down every simulation found")
	v6out := fs.Bool("ipv6-outside", false, "IPv6 outside addresses (2001:db8::/32) for both tunnels")
	v6in := fs.Bool("ipv6-inside", false, "an IPv6-inside connection (/126 per tunnel, fd01: LAN and VPC; BGP, no strongSwan customer)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "up":
		opts := sim.Options{
			ID: *id, Tunnels: *tunnels, NAT: *nat, Routing: sim.Routing(*routing),
			Customer: sim.CustomerMode(*customer), AWS: sim.AWSMode(*aws), KeepDir: true,
			IPv6Outside: *v6out, IPv6Inside: *v6in,
			Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
		}
		if opts.ID == "" {
			r, err := sim.RandomID()
			if err != nil {
				return err
			}
			opts.ID = r
		}
		opts.Dir = stateDir(opts.ID)
		s, err := sim.New(opts)
		if err != nil {
			return err
		}
		xmlPath := filepath.Join(s.Dir(), "aws.xml")
		if err := os.WriteFile(xmlPath, s.AWSXML(), 0o600); err != nil {
			return err
		}
		fmt.Printf("id %s\ndir %s\naws xml %s\n", s.ID(), s.Dir(), xmlPath)
		for _, r := range sim.Roles {
			fmt.Printf("  %-8s ip netns exec %s ...\n", r, s.NS(r))
		}
		return nil
	case "status":
		if *id == "" {
			fmt.Println(strings.Join(sim.List(), "\n"))
			return nil
		}
		s, err := sim.Attach(stateDir(*id))
		if err != nil {
			return err
		}
		return status(s)
	case "down":
		ids := []string{*id}
		if *all {
			ids = sim.List()
		} else if *id == "" {
			return errors.New("down: -id or -all required")
		}
		var errs []error
		for _, x := range ids {
			if s, err := sim.Attach(stateDir(x)); err == nil {
				errs = append(errs, s.Close())
			} else {
				errs = append(errs, sim.Teardown(x))
			}
			errs = append(errs, os.RemoveAll(stateDir(x)))
			fmt.Println("down", x)
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func status(s *sim.Sim) error {
	o := s.Options()
	for i := 1; i <= 2; i++ {
		if !s.EndpointEnabled(i) || o.AWS == sim.AWSNone {
			continue
		}
		fmt.Printf("endpoint %d (%s):\n", i, sim.Endpoints[i-1].Outside)
		sas, err := s.ListSAs(i)
		if err != nil {
			fmt.Printf("  SAs: %v\n", err)
		}
		for _, sa := range sas {
			fmt.Printf("  IKE %s %s %s:%d <-> %s:%d %s/%s/%s/%s nat-any=%v\n", sa.Name, sa.State, sa.LocalHost, sa.LocalPort,
				sa.RemoteHost, sa.RemotePort, sa.EncrAlg, sa.IntegAlg, sa.PRFAlg, sa.DHGroup, sa.NATAny)
			for _, c := range sa.Children {
				fmt.Printf("    CHILD %s %s spi in %s out %s %s-%d/%s in %d B out %d B ts %v <-> %v\n", c.Name, c.State, c.SPIIn, c.SPIOut,
					c.EncrAlg, c.EncrKeySize, c.IntegAlg, c.BytesIn, c.BytesOut, c.LocalTS, c.RemoteTS)
			}
		}
		if o.Routing == sim.RoutingBGP {
			st, err := s.BGPState(i)
			if err != nil {
				fmt.Printf("  BGP: %v\n", err)
			} else {
				fmt.Printf("  BGP %s (%s) neighbor %s AS%d imported %d exported %d %s\n", st.BGPState, st.Info, st.Neighbor, st.NeighborAS, st.Imported, st.Exported, st.LastError)
			}
		}
	}
	return nil
}
