package dataplane

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// roundTrip pushes the packets into A's device and waits for them at B.
// timeout is reused so that the test itself does not allocate.
func roundTrip(tb testing.TB, ta, tbDev *memTUN, pkts [][]byte, timeout *time.Timer) {
	roundTripN(tb, ta, tbDev, pkts, len(pkts), timeout)
}

// roundTripN is roundTrip for packets that arrive as want packets at B
// (fragments).
func roundTripN(tb testing.TB, ta, tbDev *memTUN, pkts [][]byte, want int, timeout *time.Timer) {
	for _, p := range pkts {
		ta.in <- p
	}
	timeout.Reset(10 * time.Second)
	defer timeout.Stop()
	for range want {
		select {
		case p := <-tbDev.out:
			tbDev.free <- p
		case <-timeout.C:
			tb.Fatal("packets lost in the pipeline")
		}
	}
}

// TestAllocs proves the steady path allocates nothing: TUN read, MSS
// check, sequence reservation, encryption, batched UDP send, batched
// receive and demux, decryption, replay update, checks (the inner source
// check included) and TUN write.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ta, tb := newMemTUN(256), newMemTUN(256)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{MSSClamp: 1379})
	// The inner source check runs on every decrypted packet.
	srcs := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("169.254.15.192/30")}
	if err := pr.b.SetTunnelSources("t", true, srcs); err != nil {
		t.Fatal(err)
	}
	if allocs := roundTripAllocs(t, ta, tb, 100, true); allocs != 0 {
		t.Errorf("%.2f allocations per round trip of 64 packets, want 0", allocs)
	}
}

// roundTripAllocs warms the pipeline from ta to tb with 64-packet round
// trips of 1400-byte packets, then returns the allocations per round trip
// over runs more: rounded down as testing.AllocsPerRun does, or exact.
func roundTripAllocs(t *testing.T, ta, tb *memTUN, runs int, rounded bool) float64 {
	t.Helper()
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = ipv4UDP(addrA, addrB, uint32(i), 1400)
	}
	timeout := time.NewTimer(time.Hour)
	for range 50 { // warm the pools
		roundTrip(t, ta, tb, pkts, timeout)
	}
	runtime.GC()
	if rounded {
		// AllocsPerRun counts the allocations of all goroutines.
		return testing.AllocsPerRun(runs, func() { roundTrip(t, ta, tb, pkts, timeout) })
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range runs {
		roundTrip(t, ta, tb, pkts, timeout)
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(runs)
}

// TestAllocsOversize proves that fragmenting before encryption (the
// default for IPv4 packets larger than the tunnel MTU) allocates nothing
// either: DF cleared, two fragments per packet from the buffer pool, each
// sealed, sent, opened and written on its own.
func TestAllocsOversize(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ta, tb := newMemTUN(256), newMemTUN(256)
	newPair(t, algGCM, ta, tb, TunnelConfig{MTU: 1000, MSSClamp: 1379})
	pkts := make([][]byte, 32)
	for i := range pkts {
		pkts[i] = withDF(ipv4UDP(addrA, addrB, uint32(i), 1400))
	}
	// Warm the pools with bursts larger than the measured ones: a round
	// may start before the previous round's sender has returned its
	// buffers, and the free lists must cover that overlap.
	warm := append(append(append([][]byte(nil), pkts...), pkts...), pkts...)
	timeout := time.NewTimer(time.Hour)
	for range 50 {
		roundTripN(t, ta, tb, warm, 2*len(warm), timeout)
	}
	runtime.GC()
	allocs := testing.AllocsPerRun(100, func() { roundTripN(t, ta, tb, pkts, 2*len(pkts), timeout) })
	if allocs != 0 {
		t.Errorf("%.2f allocations per round trip of %d oversize packets, want 0", allocs, len(pkts))
	}
}

// BenchmarkPipeline measures a round trip through two engines over
// loopback UDP with AES-128-GCM; run with -benchmem to see 0 allocs/op.
func BenchmarkPipeline(b *testing.B) {
	ta, tb := newMemTUN(256), newMemTUN(256)
	newPair(b, algGCM, ta, tb, TunnelConfig{})
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = ipv4UDP(addrA, addrB, uint32(i), 1400)
	}
	timeout := time.NewTimer(time.Hour)
	roundTrip(b, ta, tb, pkts, timeout)
	b.SetBytes(int64(len(pkts) * 1400))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip(b, ta, tb, pkts, timeout)
	}
}
