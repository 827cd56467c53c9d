package dataplane

import (
	"testing"
	"time"
)

// TestRxDemand: a reader starts with one buffer, doubles its batch after
// each read that filled it while reads follow each other closely, keeps
// it on partial reads, and drops back to one after a quiet gap.
func TestRxDemand(t *testing.T) {
	d := newRxDemand(batchSize)
	now := int64(time.Hour)
	step := int64(quietGap / 10)
	if got := d.read(1, now); got != 1 {
		t.Fatalf("first read: want 1, got %d", got)
	}
	want := 1
	for want < batchSize {
		now += step
		got := d.read(d.want, now) // every buffer filled
		want = min(2*want, batchSize)
		if got != want {
			t.Fatalf("after a full read: batch %d, want %d", got, want)
		}
	}
	now += step
	if got := d.read(3, now); got != batchSize {
		t.Fatalf("a partial read while busy: batch %d, want %d kept", got, batchSize)
	}
	now += 2 * int64(quietGap)
	if got := d.read(batchSize, now); got != 1 {
		t.Fatalf("a read after a quiet gap: batch %d, want 1", got)
	}
}

// TestRxTrim: buffers a quiet reader releases go to the free list, and
// the free list is emptied only once no socket reader is busy.
func TestRxTrim(t *testing.T) {
	e := New(Config{Workers: 1})
	defer e.Close()
	e.rxTrim.after = 20 * time.Millisecond
	e.rxResized(1, 4, nil) // reader A busy
	e.rxResized(1, 2, nil) // reader B busy
	extra := []*elem{e.pools.getElem(), e.pools.getElem(), e.pools.getElem()}
	e.rxResized(4, 1, extra) // A quiet again
	for i, el := range extra {
		if el != nil {
			t.Fatalf("released buffer %d still held", i)
		}
	}
	if n := len(e.pools.elems); n != 3 {
		t.Fatalf("free list has %d buffers, want the 3 released", n)
	}
	time.Sleep(10 * e.rxTrim.after)
	if n := len(e.pools.elems); n != 3 {
		t.Fatalf("free list trimmed to %d while reader B is busy", n)
	}
	e.rxResized(2, 1, []*elem{nil}) // B quiet: nobody busy
	deadline := time.Now().Add(5 * time.Second)
	for len(e.pools.elems) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("free list still has %d buffers after every reader went quiet", len(e.pools.elems))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRxTrimAfterBurst: after a burst through two engines, the receiving
// engine's socket reader returns to one buffer once traffic stops, and the
// receive buffers the burst left in the free list are dropped.
func TestRxTrimAfterBurst(t *testing.T) {
	ta, tb := newMemTUN(256), newMemTUN(256)
	pr := newPair(t, algGCM, ta, tb, TunnelConfig{})
	pr.b.rxTrim.mu.Lock()
	pr.b.rxTrim.after = 50 * time.Millisecond
	pr.b.rxTrim.mu.Unlock()
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = ipv4UDP(addrA, addrB, uint32(i), 1400)
	}
	timeout := time.NewTimer(time.Hour)
	for range 50 {
		roundTrip(t, ta, tb, pkts, timeout)
	}
	t.Logf("after the burst: %d busy readers, %d buffers in the free list", pr.b.rxTrim.busy.Load(), len(pr.b.pools.elems))
	deadline := time.Now().Add(5 * time.Second)
	for pr.b.rxTrim.busy.Load() != 0 || len(pr.b.pools.elems) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the burst: %d busy readers, %d buffers in the free list; want 0 and 0", pr.b.rxTrim.busy.Load(), len(pr.b.pools.elems))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRxTrimNotPostponed: readers that turn busy for a moment again and
// again (hundreds of tunnels on one socket) do not keep pushing the trim
// back.
func TestRxTrimNotPostponed(t *testing.T) {
	e := New(Config{Workers: 1})
	defer e.Close()
	e.rxTrim.after = 50 * time.Millisecond
	e.pools.putElem(e.pools.getElem())
	deadline := time.Now().Add(5 * time.Second)
	for len(e.pools.elems) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the free list was never trimmed while a reader kept turning busy and quiet")
		}
		e.rxResized(1, 2, nil)
		e.rxResized(2, 1, []*elem{nil})
		time.Sleep(10 * time.Millisecond)
	}
}
