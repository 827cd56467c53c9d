package traffic

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	b := make([]byte, 40)
	h := Header{Flow: 7, Seq: 1<<40 + 3, SentNs: 1234567890123}
	h.Put(b)
	got, err := ParseHeader(b)
	if err != nil || got != h {
		t.Fatalf("ParseHeader = %+v, %v; want %+v", got, err, h)
	}
	for n := 0; n < HeaderLen; n++ {
		if _, err := ParseHeader(b[:n]); err == nil {
			t.Errorf("ParseHeader accepted a %d-byte prefix", n)
		}
	}
	b[0] ^= 1
	if _, err := ParseHeader(b); err == nil {
		t.Error("ParseHeader accepted a bad magic")
	}
}

func TestParseProfile(t *testing.T) {
	p, err := ParseProfile("imix")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for _, s := range p.Sizes {
		counts[s]++
	}
	if counts[64] != 7 || counts[576] != 4 || counts[1400] != 1 || len(p.Sizes) != 12 {
		t.Errorf("imix = %v, want 7:4:1 of 64/576/1400", p.Sizes)
	}
	if p.Payload(6) != 1400-28 || p.Payload(12) != 64-28 {
		t.Errorf("Payload(6), Payload(12) = %d, %d", p.Payload(6), p.Payload(12))
	}
	for _, bad := range []string{"", "51", "9001", "big", "-64"} {
		if _, err := ParseProfile(bad); err == nil {
			t.Errorf("ParseProfile(%q) accepted", bad)
		}
	}
}

// The pacer releases exactly rate*t packets over time in batches of at
// least Burst, and forfeits (not bursts) a backlog beyond Depth.
func TestPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := NewPacer(10000, 100*time.Microsecond, 64, t0) // batches of 1 packet per 100 µs
	if p.Burst != 1 {
		t.Fatalf("Burst = %d, want 1", p.Burst)
	}
	p = NewPacer(100000, 100*time.Microsecond, 64, t0) // 10 per 100 µs
	if p.Burst != 10 || p.Depth != 200 {               // 2 ms of backlog
		t.Fatalf("Burst, Depth = %d, %d", p.Burst, p.Depth)
	}
	if n, wait := p.Take(t0, 64); n != 0 || wait != 100*time.Microsecond {
		t.Fatalf("Take(t0) = %d, %v; want 0, 100µs", n, wait)
	}
	if n, wait := p.Take(t0.Add(50*time.Microsecond), 64); n != 0 || wait != 50*time.Microsecond {
		t.Fatalf("Take(50µs) = %d, %v; want 0, 50µs", n, wait)
	}
	// Called on time for one second: exactly 100000 packets, none skipped.
	var total int
	now := t0
	for now.Before(t0.Add(time.Second)) {
		n, wait := p.Take(now, 64)
		total += n
		if n == 0 {
			if wait <= 0 {
				t.Fatalf("Take returned 0 packets and wait %v at %v", wait, now.Sub(t0))
			}
			now = now.Add(wait)
		} else if n < p.Burst {
			t.Fatalf("batch of %d < Burst %d", n, p.Burst)
		}
	}
	if n, _ := p.Take(t0.Add(time.Second), 64); true {
		total += n
	}
	if total != 100000 || p.Skipped() != 0 || p.Issued() != 100000 {
		t.Fatalf("after 1 s: issued %d (Issued %d), skipped %d; want 100000, 0", total, p.Issued(), p.Skipped())
	}
	// A sender late by 100 ms gets at most Depth, the rest is forfeited.
	late := t0.Add(1100 * time.Millisecond)
	var got int
	for {
		n, _ := p.Take(late, 64)
		if n == 0 {
			break
		}
		got += n
	}
	// Batches of at most 64 until less than a Burst is left.
	if got <= p.Depth-p.Burst || got > p.Depth || p.Skipped() != uint64(10000-p.Depth) {
		t.Fatalf("late by 100 ms: got %d, skipped %d; want (%d, %d] and %d", got, p.Skipped(), p.Depth-p.Burst, p.Depth, 10000-p.Depth)
	}
	p.Unissue(5)
	if p.Issued() != uint64(100000+got-5) || p.Skipped() != uint64(10000-p.Depth+5) {
		t.Fatalf("Unissue: Issued = %d", p.Issued())
	}
}

func payload(flow uint32, seq uint64, sent int64) []byte {
	b := make([]byte, 36)
	Header{Flow: flow, Seq: seq, SentNs: sent}.Put(b)
	return b
}

func TestAccounting(t *testing.T) {
	a := new(accounting)
	// flow 0: 0 1 3 2 4 4 6 (5 lost, 2 reordered, 4 duplicated)
	for _, s := range []uint64{0, 1, 3, 2, 4, 4, 6} {
		a.add(payload(0, s, 1000), 1000+int64(s+1)*1000)
	}
	// flow 1: 5 .. 0 (everything after the first reordered), plus a seq past 64 bits of bitmap
	for s := 5; s >= 0; s-- {
		a.add(payload(1, uint64(s), 0), 2000)
	}
	a.add(payload(1, 100000, 0), 2000)
	a.add([]byte("short"), 0)
	a.add(payload(MaxFlows, 0, 0), 0)
	a.add(payload(2, maxSeqBits, 0), 0)
	r := a.report()
	if r.Malformed != 3 {
		t.Errorf("Malformed = %d, want 3", r.Malformed)
	}
	want := []FlowReport{
		{Flow: 0, Received: 6, Duplicates: 1, Reordered: 1, HighestSeq: 6},
		{Flow: 1, Received: 7, Reordered: 5, HighestSeq: 100000},
	}
	if len(r.Flows) != 2 || r.Flows[0] != want[0] || r.Flows[1] != want[1] {
		t.Fatalf("flows = %+v\nwant %+v", r.Flows, want)
	}
	if r.Received != 13 || r.Duplicates != 1 || r.Reordered != 6 {
		t.Errorf("totals = %d/%d/%d", r.Received, r.Duplicates, r.Reordered)
	}
	if r.Bytes != 13*64 {
		t.Errorf("Bytes = %d, want %d", r.Bytes, 13*64)
	}
	// Loss from the sender's counts: flow 0 sent 8 (0..7): 2 lost; flow 1
	// "sent" 5 but 7 distinct arrived: no negative loss; flow 2 sent 4, none arrived.
	m := Merge(SendReport{Sent: 17, PerFlow: []uint64{8, 5, 4}}, r)
	if m.Lost != 6 || m.LossPct < 35.29 || m.LossPct > 35.30 {
		t.Errorf("Merge: lost %d (%.2f %%), want 6 (35.29 %%)", m.Lost, m.LossPct)
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram quantile != 0")
	}
	for v := uint64(1); v <= 100000; v++ {
		h.Add(v * 1000) // 1 µs .. 100 ms
	}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 50e6}, {0.99, 99e6}, {0.999, 99.9e6}, {1, 100e6}} {
		got := float64(h.Quantile(c.q))
		if got < c.want || got > c.want*1.016 {
			t.Errorf("Quantile(%v) = %.0f, want %.0f (+1.6 %%)", c.q, got, c.want)
		}
	}
	for v := uint64(0); v < 1<<20; v = v*3/2 + 1 {
		if i := bucketOf(v); bucketHigh(i) < v || (i > 0 && bucketHigh(i-1) >= v) {
			t.Fatalf("value %d in bucket %d with bounds (%d, %d]", v, i, bucketHigh(i-1), bucketHigh(i))
		}
	}
}

// Send to a Sink over loopback at a low rate: every datagram arrives, in
// order, once, and the sender's counts match the sink's per flow.
func TestLoopback(t *testing.T) {
	// gso: datagrams leave as UDP GSO superpackets of up to 8 (batches
	// of 20 per 1 ms interval, 3 flows) and must arrive as datagrams.
	for _, tc := range []struct {
		size     string
		gso      int
		rate     float64
		interval time.Duration
		most     uint64
	}{
		{"imix", 0, 2000, 0, 1000},
		{"1400", 8, 20000, time.Millisecond, 10000},
	} {
		t.Run(fmt.Sprintf("%s-gso%d", tc.size, tc.gso), func(t *testing.T) {
			testLoopback(t, tc.size, tc.gso, tc.rate, tc.interval, tc.most)
		})
	}
}

func testLoopback(t *testing.T, size string, gso int, rate float64, interval time.Duration, most uint64) {
	sink, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sink.Run() }()
	prof, _ := ParseProfile(size)
	rep, err := Send(context.Background(), SendConfig{To: sink.Addr(), Flows: 3, Threads: 2, Rate: rate, Interval: interval,
		Duration: 500 * time.Millisecond, Profile: prof, GSO: gso})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sink.Report().Received < rep.Sent && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	sink.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r := Merge(rep, sink.Report())
	if rep.Sent == 0 || rep.Sent > most || len(rep.PerFlow) != 3 {
		t.Fatalf("sent %d in %v flows; want 1..%d in 3", rep.Sent, rep.PerFlow, most)
	}
	if r.Lost != 0 || r.Recv.Duplicates != 0 || r.Recv.Reordered != 0 || r.Recv.Malformed != 0 || r.Recv.Received != rep.Sent {
		t.Fatalf("loopback: %+v", r)
	}
	if r.Recv.Bytes != rep.Bytes {
		t.Errorf("bytes: sink %d, sender %d", r.Recv.Bytes, rep.Bytes)
	}
	for i, f := range r.Recv.Flows {
		if f.Received != rep.PerFlow[i] || f.HighestSeq != rep.PerFlow[i]-1 {
			t.Errorf("flow %d: received %d up to seq %d, sender sent %d", i, f.Received, f.HighestSeq, rep.PerFlow[i])
		}
	}
	if r.Recv.LatencyUs.P50 <= 0 || r.Recv.LatencyUs.P50 > r.Recv.LatencyUs.Max {
		t.Errorf("latency = %+v", r.Recv.LatencyUs)
	}
}

func TestSendConfigErrors(t *testing.T) {
	prof, _ := ParseProfile("64")
	ok := SendConfig{To: netip.MustParseAddrPort("127.0.0.1:9"), Flows: 1, Rate: 1, Duration: time.Second, Profile: prof}
	for name, mod := range map[string]func(*SendConfig){
		"no to":     func(c *SendConfig) { c.To = netip.AddrPort{} },
		"ipv6":      func(c *SendConfig) { c.To = netip.MustParseAddrPort("[::1]:9") },
		"0 flows":   func(c *SendConfig) { c.Flows = 0 },
		"1025":      func(c *SendConfig) { c.Flows = MaxFlows + 1 },
		"rate":      func(c *SendConfig) { c.Rate = 0 },
		"unbounded": func(c *SendConfig) { c.Duration = 0 },
		"ports":     func(c *SendConfig) { c.BasePort, c.Flows = 65535, 2 },
		"threads":   func(c *SendConfig) { c.Threads = -1 },
		"profile":   func(c *SendConfig) { c.Profile = Profile{} },
		"gso":       func(c *SendConfig) { c.GSO = maxGSO + 1 },
		"gso imix":  func(c *SendConfig) { c.GSO, c.Profile = 2, imixProfile() },
	} {
		c := ok
		mod(&c)
		if _, err := Send(context.Background(), c); err == nil {
			t.Errorf("%s: Send accepted %+v", name, c)
		}
	}
}

func imixProfile() Profile { p, _ := ParseProfile("imix"); return p }
