package traffic

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SinkReport is what a sink received. Loss needs the sender's counts:
// see Merge. The latency quantiles are one-way (send timestamp in the
// datagram to the return of the recvmmsg call that read it), so they
// include the time a datagram waited in the sink's socket buffer.
type SinkReport struct {
	Received   uint64       `json:"received"` // distinct datagrams, all flows
	Duplicates uint64       `json:"duplicates"`
	Reordered  uint64       `json:"reordered"` // arrived after a higher sequence number of its flow
	Malformed  uint64       `json:"malformed"` // not ours: short, bad magic, flow or sequence out of range, truncated
	Bytes      uint64       `json:"ip_bytes"`  // IPv4 bytes of the distinct datagrams
	Seconds    float64      `json:"seconds"`   // first to last datagram
	PPS        float64      `json:"pps"`       // Received / Seconds
	LatencyUs  Latency      `json:"latency_us"`
	Flows      []FlowReport `json:"flows"`
}

// Latency quantiles in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// FlowReport is the receive accounting of one flow.
type FlowReport struct {
	Flow       uint32 `json:"flow"`
	Received   uint64 `json:"received"`
	Duplicates uint64 `json:"duplicates"`
	Reordered  uint64 `json:"reordered"`
	HighestSeq uint64 `json:"highest_seq"`
}

// Sink receives pktgen datagrams on one UDP socket and accounts for them.
// Run reads until Close; Report may be called after Run returned.
type Sink struct {
	conn *net.UDPConn
	bc   *batchConn

	mu  sync.Mutex // guards acc against Report during Run
	acc *accounting
}

// accounting is the per-flow state and the latency histogram.
type accounting struct {
	flows       [MaxFlows]*flowStats // by flow ID
	nflows      int
	lat         Histogram
	malformed   uint64
	bytes       uint64
	first, last int64
}

// Listen opens a sink on addr with a receive buffer of rcvbuf bytes.
func Listen(addr netip.AddrPort, rcvbuf int) (*Sink, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	if err := setBuffer(c, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, rcvbuf); err != nil {
		c.Close()
		return nil, fmt.Errorf("receive buffer: %w", err)
	}
	bc, err := newBatchConn(c, 128, 2048)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Sink{conn: c, bc: bc, acc: new(accounting)}, nil
}

// Addr is the bound address.
func (s *Sink) Addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close stops Run.
func (s *Sink) Close() error { return s.conn.Close() }

// Run reads datagrams until Close and returns nil then.
func (s *Sink) Run() error {
	for {
		n, err := s.bc.recvmmsg()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		s.mu.Lock()
		for i := 0; i < n; i++ {
			h := &s.bc.b.hdrs[i]
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				s.acc.malformed++
				continue
			}
			s.acc.add(s.bc.b.bufs[i][:h.Len], now)
		}
		s.mu.Unlock()
	}
}

// add accounts one datagram payload received at now (ns).
func (a *accounting) add(p []byte, now int64) {
	h, err := ParseHeader(p)
	if err != nil || h.Flow >= MaxFlows || h.Seq >= maxSeqBits {
		a.malformed++
		return
	}
	f := a.flows[h.Flow]
	if f == nil {
		f = &flowStats{}
		a.flows[h.Flow] = f
		a.nflows++
	}
	if !f.add(h.Seq) {
		return
	}
	if a.first == 0 {
		a.first = now
	}
	a.last = now
	a.bytes += uint64(len(p) + ipUDPLen)
	a.lat.Add(uint64(max(now-h.SentNs, 0)))
}

// Report summarises what was received so far.
func (s *Sink) Report() SinkReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acc.report()
}

func (a *accounting) report() SinkReport {
	var r SinkReport
	for id := uint32(0); id < MaxFlows && len(r.Flows) < a.nflows; id++ {
		f := a.flows[id]
		if f == nil {
			continue
		}
		r.Flows = append(r.Flows, FlowReport{Flow: id, Received: f.received, Duplicates: f.dup, Reordered: f.reorder, HighestSeq: f.next - 1})
		r.Received += f.received
		r.Duplicates += f.dup
		r.Reordered += f.reorder
	}
	r.Malformed, r.Bytes = a.malformed, a.bytes
	if a.last > a.first {
		r.Seconds = float64(a.last-a.first) / 1e9
		r.PPS = float64(r.Received) / r.Seconds
	}
	us := func(ns uint64) float64 { return float64(ns) / 1e3 }
	r.LatencyUs = Latency{P50: us(a.lat.Quantile(0.5)), P99: us(a.lat.Quantile(0.99)), P999: us(a.lat.Quantile(0.999)), Max: us(a.lat.Max())}
	return r
}

// Result joins what a sender sent with what the sink received.
type Result struct {
	Send    SendReport `json:"send"`
	Recv    SinkReport `json:"recv"`
	Lost    uint64     `json:"lost"`     // sent - received, all flows (never negative per flow)
	LossPct float64    `json:"loss_pct"` // Lost / sent * 100
}

// Merge computes loss per flow from the sender's counts and the sink's.
// A flow the sink received more distinct datagrams of than were sent
// (stray traffic from an earlier run with the same flow IDs) counts as
// no loss, not as negative loss.
func Merge(s SendReport, r SinkReport) Result {
	res := Result{Send: s, Recv: r}
	got := map[uint32]uint64{}
	for _, f := range r.Flows {
		got[f.Flow] = f.Received
	}
	for id, sent := range s.PerFlow {
		if g := got[uint32(id)]; g < sent {
			res.Lost += sent - g
		}
	}
	if s.Sent > 0 {
		res.LossPct = float64(res.Lost) / float64(s.Sent) * 100
	}
	return res
}
