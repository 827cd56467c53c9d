// Command dptest runs one dataplane Engine with one tunnel and fixed SA
// keys (no IKE), for the dataplane's network-namespace test: start one
// instance per namespace with mirrored SPIs and endpoints, then send
// traffic through the TUN devices. On SIGINT/SIGTERM it prints the
// tunnel's counters as JSON on stdout and exits.
//
// It prints "ready" on stdout once the TUN device is up and the SAs are
// installed. The keys are derived from -key (a test seed, not a secret).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/cgwproject/cgw/dataplane"
	"github.com/cgwproject/cgw/dataplane/tun"
	"github.com/cgwproject/cgw/ipsec"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dptest:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		tunName  = flag.String("tun", "cgwdp0", "TUN device name")
		mtu      = flag.Int("mtu", 1400, "tunnel MTU")
		devMTU   = flag.Int("device-mtu", dataplane.DeviceMTU, "TUN device MTU (the daemon uses dataplane.DeviceMTU)")
		oversize = flag.String("oversize", "fragment", "packets above the tunnel MTU: fragment or icmp")
		addr     = flag.String("addr", "", "TUN address with prefix, e.g. 169.254.10.2/30")
		local    = flag.String("local", "", "our NAT-T endpoint ip:port")
		remote   = flag.String("remote", "", "peer NAT-T endpoint ip:port")
		spiOut   = flag.Uint("spi-out", 0x1001, "outbound SPI")
		spiIn    = flag.Uint("spi-in", 0x2002, "inbound SPI")
		alg      = flag.String("alg", "aes128gcm16", "aes128gcm16, aes256gcm16 or aes128-sha256")
		seed     = flag.Int("key", 1, "key seed; the peer uses the same")
		mss      = flag.Uint("mss", 0, "TCP MSS clamp (0 = off)")
		ikePort  = flag.Uint("ike-port", 500, "IKE port")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile to this file")
		verbose  = flag.Bool("v", false, "debug logging")
		workers  = flag.Int("workers", 0, "crypto workers (0 = GOMAXPROCS)")
		keepaliv = flag.Duration("keepalive", 0, "NAT keepalive interval (0 = default)")
	)
	flag.Parse()
	prefix, err := netip.ParsePrefix(*addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	lap, err := netip.ParseAddrPort(*local)
	if err != nil {
		return fmt.Errorf("-local: %w", err)
	}
	rap, err := netip.ParseAddrPort(*remote)
	if err != nil {
		return fmt.Errorf("-remote: %w", err)
	}
	var a ipsec.Algorithms
	switch *alg {
	case "aes128gcm16":
		a = ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 128}
	case "aes256gcm16":
		a = ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256}
	case "aes128-sha256":
		a = ipsec.Algorithms{Encr: ipsec.EncrAESCBC, KeyBits: 128, Integ: ipsec.IntegHMACSHA2_256_128}
	default:
		return fmt.Errorf("-alg %q: want aes128gcm16, aes256gcm16 or aes128-sha256", *alg)
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	var ov dataplane.Oversize
	switch *oversize {
	case "fragment":
		ov = dataplane.OversizeFragment
	case "icmp":
		ov = dataplane.OversizeICMP
	default:
		return fmt.Errorf("-oversize %q: want fragment or icmp", *oversize)
	}
	dev, err := tun.Create(*tunName, *devMTU, prefix)
	if err != nil {
		return err
	}
	e := dataplane.New(dataplane.Config{Logger: log, Workers: *workers})
	defer e.Close()
	if err := e.Listen(uint16(*ikePort), lap.Port()); err != nil {
		dev.Close()
		return err
	}
	if err := e.AddTunnel(dataplane.TunnelConfig{Name: "t", Device: dev, MTU: *mtu, MSSClamp: uint16(*mss), NATKeepalive: *keepaliv, Oversize: ov}); err != nil {
		dev.Close()
		return err
	}
	// Keys by direction: the lower SPI's direction uses seed, the other
	// seed+1, so both instances agree with mirrored SPIs.
	key := func(spi uint) []byte {
		s := *seed
		if spi == max(*spiOut, *spiIn) {
			s++
		}
		n := a.KeyBits / 8
		if a.Encr == ipsec.EncrAESGCM16 {
			n += 4
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(s*31 + i)
		}
		return b
	}
	integ := func(spi uint) []byte {
		if a.Integ == ipsec.IntegNone {
			return nil
		}
		b := key(spi)
		return append(b, b...)[:32]
	}
	for _, p := range []ipsec.SAParams{
		{Tunnel: "t", SPI: ipsec.SPI(*spiIn), Dir: ipsec.Inbound, Alg: a, EncKey: key(*spiIn), IntegKey: integ(*spiIn), Local: lap, Remote: rap, Encap: true, ReplayWindow: 1024},
		{Tunnel: "t", SPI: ipsec.SPI(*spiOut), Dir: ipsec.Outbound, Alg: a, EncKey: key(*spiOut), IntegKey: integ(*spiOut), Local: lap, Remote: rap, Encap: true},
	} {
		if err := e.AddSA(p); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	st, err := e.TunnelStats("t")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(st)
}
