package dataplane

import (
	"runtime"
	"testing"
	"time"
)

// roundTrip pushes the packets into A's device and waits for them at B.
// timeout is reused so that the test itself does not allocate.
func roundTrip(tb testing.TB, ta, tbDev *memTUN, pkts [][]byte, timeout *time.Timer) {
	for _, p := range pkts {
		ta.in <- p
	}
	timeout.Reset(10 * time.Second)
	defer timeout.Stop()
	for range pkts {
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
// receive and demux, decryption, replay update, checks and TUN write.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ta, tb := newMemTUN(256), newMemTUN(256)
	newPair(t, algGCM, ta, tb, TunnelConfig{MSSClamp: 1379})
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = ipv4UDP(addrA, addrB, uint32(i), 1400)
	}
	timeout := time.NewTimer(time.Hour)
	for range 50 { // warm the pools
		roundTrip(t, ta, tb, pkts, timeout)
	}
	runtime.GC()
	// AllocsPerRun counts the allocations of all goroutines.
	allocs := testing.AllocsPerRun(100, func() { roundTrip(t, ta, tb, pkts, timeout) })
	if allocs != 0 {
		t.Errorf("%.2f allocations per round trip of %d packets, want 0", allocs, len(pkts))
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
