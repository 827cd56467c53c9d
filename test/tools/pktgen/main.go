// Command pktgen is a paced UDP traffic generator and sink for measuring
// a tunnel's packet rate: cheap per packet (sendmmsg/recvmmsg batches, no
// per-packet allocation or sleep) so that the path under test, not the
// tool, is the bottleneck.
//
//	pktgen send -to ADDR:PORT -rate PPS -size SIZE -flows N -duration D [-threads T]
//	pktgen sink -listen ADDR:PORT [-result FILE] [-max D]
//	pktgen run  -to ADDR:PORT -rate PPS -size SIZE -flows N -duration D
//
// send prints a JSON SendReport (datagrams sent per flow, achieved rate)
// when it finishes. sink prints "listening ADDR" once bound, reads until
// SIGINT/SIGTERM or -max, then writes a JSON SinkReport (received,
// duplicates, reordering, one-way latency quantiles) to -result or
// stdout. run does both in one process (sink on the -to address, which
// must be local) and prints the merged result with the loss.
//
// SIZE is an IPv4 packet length (IP + UDP headers + payload, 52..9000) or
// "imix" (64/576/1400 bytes, 7:4:1). Flow i sends from source port
// -port+i (ephemeral ports when -port is 0). See package traffic for the
// datagram format. It is a test tool: it sends only to the address given,
// for a bounded time, and is meant for the bench's network namespaces.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cgwproject/cgw/test/tools/pktgen/traffic"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "send":
		err = cmdSend(os.Args[2:], false)
	case "run":
		err = cmdSend(os.Args[2:], true)
	case "sink":
		err = cmdSink(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pktgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: pktgen send|run -to ADDR:PORT -rate PPS -size SIZE|imix -flows N -duration D\n       pktgen sink -listen ADDR:PORT [-result FILE] [-max D]")
	os.Exit(2)
}

func cmdSend(args []string, local bool) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	to := fs.String("to", "", "destination ADDR:PORT (the sink)")
	from := fs.String("from", "", "source address (default: chosen by the kernel)")
	port := fs.Uint("port", 0, "source port of flow 0; flow i uses port+i (0: ephemeral)")
	flows := fs.Int("flows", 1, "number of flows (distinct source ports)")
	rate := fs.String("rate", "10k", "offered packets per second, all flows together (k and M suffixes)")
	size := fs.String("size", "1400", "IPv4 packet length in bytes, or imix")
	dur := fs.Duration("duration", 10*time.Second, "length of the run")
	batch := fs.Int("batch", 64, "largest sendmmsg batch per flow")
	threads := fs.Int("threads", 1, "sending goroutines, flows split among them (at most -flows)")
	interval := fs.Duration("interval", 100*time.Microsecond, "pacing interval: batches of rate*interval packets")
	gso := fs.Int("gso", 0, "send up to this many datagrams of a flow's batch as one UDP GSO superpacket, as a NIC's GRO would merge them (one size only)")
	drain := fs.Duration("drain", 500*time.Millisecond, "run: wait this long after sending before reading the sink")
	fs.Parse(args)
	cfg := traffic.SendConfig{Flows: *flows, Duration: *dur, Batch: *batch, Interval: *interval, Threads: *threads, GSO: *gso}
	var err error
	if cfg.To, err = netip.ParseAddrPort(*to); err != nil {
		return fmt.Errorf("-to %q: want ADDR:PORT: %w", *to, err)
	}
	if *from != "" {
		if cfg.From, err = netip.ParseAddr(*from); err != nil {
			return fmt.Errorf("-from %q: %w", *from, err)
		}
	}
	if *port > 65535 {
		return fmt.Errorf("-port %d: want 0..65535", *port)
	}
	cfg.BasePort = uint16(*port)
	if cfg.Rate, err = parseRate(*rate); err != nil {
		return err
	}
	if cfg.Profile, err = traffic.ParseProfile(*size); err != nil {
		return fmt.Errorf("-size: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !local {
		rep, err := traffic.Send(ctx, cfg)
		if err != nil {
			return err
		}
		return printJSON(os.Stdout, rep)
	}
	sink, err := traffic.Listen(cfg.To, 16<<20)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- sink.Run() }()
	rep, err := traffic.Send(ctx, cfg)
	if err == nil {
		time.Sleep(*drain)
	}
	sink.Close()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	return printJSON(os.Stdout, traffic.Merge(rep, sink.Report()))
}

func cmdSink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	listen := fs.String("listen", "", "ADDR:PORT to receive on")
	result := fs.String("result", "", "write the JSON report to this file (default stdout)")
	maxDur := fs.Duration("max", 10*time.Minute, "stop by itself after this long")
	rcvbuf := fs.Int("rcvbuf", 16<<20, "socket receive buffer in bytes")
	fs.Parse(args)
	addr, err := netip.ParseAddrPort(*listen)
	if err != nil {
		return fmt.Errorf("-listen %q: want ADDR:PORT: %w", *listen, err)
	}
	if *maxDur <= 0 {
		return fmt.Errorf("-max %v: want a positive duration", *maxDur)
	}
	sink, err := traffic.Listen(addr, *rcvbuf)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- sink.Run() }()
	fmt.Printf("listening %s\n", sink.Addr())
	select {
	case <-sig:
	case <-time.After(*maxDur):
	case err := <-done:
		return err
	}
	sink.Close()
	if err := <-done; err != nil {
		return err
	}
	rep := sink.Report()
	if *result == "" {
		return printJSON(os.Stdout, rep)
	}
	// Write then rename, so a reader never sees half a report.
	tmp := filepath.Join(filepath.Dir(*result), "."+filepath.Base(*result)+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := printJSON(f, rep); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, *result)
}

func printJSON(f *os.File, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	return err
}

// parseRate accepts a packet rate with an optional k (1e3) or M (1e6)
// suffix: "64k", "1.4M", "20000".
func parseRate(s string) (float64, error) {
	mult := 1.0
	t := strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1e6, t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*mult > 100e6 {
		return 0, fmt.Errorf("-rate %q: want packets per second, 1..100M, e.g. 64k", s)
	}
	return v * mult, nil
}
