package traffic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SendConfig describes one bounded sending run.
type SendConfig struct {
	To       netip.AddrPort // destination (the sink)
	From     netip.Addr     // source address; zero: chosen by the kernel
	BasePort uint16         // flow i uses source port BasePort+i; 0: ephemeral ports
	Flows    int            // 1..MaxFlows
	Rate     float64        // offered packets per second, all flows together
	Duration time.Duration
	Profile  Profile
	Batch    int           // largest sendmmsg batch, default 64
	Interval time.Duration // pacing interval (batch spacing at Rate), default 100 µs
	// Threads splits the flows over this many sending goroutines (at most
	// Flows), each pacing its share of Rate. On a namespace path the
	// kernel forwards a datagram through every hop in the sender's system
	// call, so one thread can be the limit of a fast path. Default 1.
	Threads int
	// GSO, when above 1, sends up to GSO datagrams of a flow's batch as
	// one UDP GSO send (UDP_SEGMENT): they leave the host as one
	// superpacket, as a NIC's GRO would have merged them, and a router
	// with UDP GSO offloads (a TUN device) may receive them as one. One
	// packet size only (not imix).
	GSO int
}

// SendReport is what a sender did.
type SendReport struct {
	Profile   string   `json:"profile"`
	Flows     int      `json:"flows"`
	TargetPPS float64  `json:"target_pps"`
	Sent      uint64   `json:"sent"`     // datagrams that left, all flows
	PerFlow   []uint64 `json:"per_flow"` // datagrams that left, by flow ID
	Bytes     uint64   `json:"ip_bytes"` // IPv4 bytes of the datagrams sent
	Seconds   float64  `json:"seconds"`  // from the first to the last batch
	PPS       float64  `json:"pps"`      // achieved offered rate
	Skipped   uint64   `json:"skipped"`  // pacer tokens forfeited: sender was late
	Errors    uint64   `json:"errors"`   // failed sendmmsg calls (datagrams not sent)
	LastError string   `json:"last_error,omitempty"`
}

func (c *SendConfig) check() error {
	switch {
	case !c.To.IsValid() || !c.To.Addr().Is4():
		return fmt.Errorf("destination %v: want an IPv4 address and port", c.To)
	case c.Flows < 1 || c.Flows > MaxFlows:
		return fmt.Errorf("flows %d: want 1..%d", c.Flows, MaxFlows)
	case c.Rate <= 0 || c.Rate > 100e6:
		return fmt.Errorf("rate %.0f pps: want 1..100000000", c.Rate)
	case c.Duration <= 0 || c.Duration > time.Hour:
		return fmt.Errorf("duration %v: want 1ns..1h (every run is bounded)", c.Duration)
	case len(c.Profile.Sizes) == 0:
		return errors.New("no packet size profile")
	case c.Threads < 0 || c.Threads > 64:
		return fmt.Errorf("threads %d: want 1..64", c.Threads)
	case c.BasePort != 0 && int(c.BasePort)+c.Flows > 65536:
		return fmt.Errorf("base port %d + %d flows exceeds 65535", c.BasePort, c.Flows)
	case c.GSO < 0 || c.GSO > maxGSO:
		return fmt.Errorf("gso %d: want 0..%d datagrams per send", c.GSO, maxGSO)
	case c.GSO > 1 && len(c.Profile.Sizes) != 1:
		return errors.New("gso: needs a single packet size, not imix")
	case c.GSO > 1 && c.GSO*(c.Profile.Sizes[0]-ipUDPLen) > 65000:
		return fmt.Errorf("gso %d × %d-byte packets exceeds one 64 KiB UDP send", c.GSO, c.Profile.Sizes[0])
	}
	c.GSO = max(c.GSO, 1)
	if c.Batch <= 0 {
		c.Batch = 64
	}
	if c.Interval <= 0 {
		c.Interval = 100 * time.Microsecond
	}
	c.Threads = min(max(c.Threads, 1), c.Flows)
	return nil
}

// Send runs one paced, bounded run: it opens one connected UDP socket per
// flow (distinct source ports), then sends Rate datagrams per second in
// batches, flows interleaved packet by packet, until Duration has passed
// or ctx is done.
func Send(ctx context.Context, cfg SendConfig) (SendReport, error) {
	if err := cfg.check(); err != nil {
		return SendReport{}, err
	}
	conns := make([]*net.UDPConn, cfg.Flows)
	bcs := make([]*batchConn, cfg.Flows)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		var laddr *net.UDPAddr
		if cfg.From.IsValid() || cfg.BasePort != 0 {
			laddr = &net.UDPAddr{IP: cfg.From.AsSlice()}
			if cfg.BasePort != 0 {
				laddr.Port = int(cfg.BasePort) + i
			}
		}
		c, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(cfg.To))
		if err != nil {
			return SendReport{}, fmt.Errorf("flow %d: %w", i, err)
		}
		conns[i] = c
		_ = setBuffer(c, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, 4<<20)
		if cfg.GSO > 1 {
			if err := setGSO(c, cfg.Profile.Sizes[0]-ipUDPLen); err != nil {
				return SendReport{}, fmt.Errorf("flow %d: UDP_SEGMENT: %w", i, err)
			}
		}
		if bcs[i], err = newBatchConn(c, cfg.Batch, cfg.GSO*(cfg.Profile.MaxIPSizeOf()-ipUDPLen)); err != nil {
			return SendReport{}, err
		}
	}
	// Thread k sends flows k, k+T, k+2T, … at its share of the rate.
	senders := make([]*sender, cfg.Threads)
	for k := range senders {
		s := &sender{cfg: cfg}
		for f := k; f < cfg.Flows; f += cfg.Threads {
			s.ids = append(s.ids, uint32(f))
			s.bcs = append(s.bcs, bcs[f])
		}
		s.cfg.Rate = cfg.Rate * float64(len(s.ids)) / float64(cfg.Flows)
		s.seq, s.count = make([]uint64, len(s.ids)), make([]int, len(s.ids))
		senders[k] = s
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(ctx, start) }()
	}
	wg.Wait()
	rep := SendReport{Profile: cfg.Profile.Name, Flows: cfg.Flows, TargetPPS: cfg.Rate, PerFlow: make([]uint64, cfg.Flows)}
	var last time.Time
	for _, s := range senders {
		for i, id := range s.ids {
			rep.PerFlow[id] = s.seq[i]
			rep.Sent += s.seq[i]
		}
		rep.Bytes += s.bytes
		rep.Skipped += s.skipped
		rep.Errors += s.errors
		if s.lastErr != "" {
			rep.LastError = s.lastErr
		}
		if s.last.After(last) {
			last = s.last
		}
	}
	if !last.IsZero() {
		rep.Seconds = last.Sub(start).Seconds()
	}
	if el := time.Since(start).Seconds(); el > 0 {
		rep.PPS = float64(rep.Sent) / el
	}
	return rep, nil
}

// sender is one sending goroutine and the flows it owns.
type sender struct {
	cfg   SendConfig // Rate is this sender's share
	ids   []uint32   // flow IDs, parallel to bcs
	bcs   []*batchConn
	seq   []uint64 // next sequence number per flow = datagrams sent
	count []int    // datagrams of this batch per flow
	pkt   uint64   // packets issued in total (size profile index)
	next  int      // index of the flow of the next packet

	// results
	bytes, skipped, errors uint64
	lastErr                string
	last                   time.Time // end of the last batch
}

func (s *sender) run(ctx context.Context, start time.Time) {
	cfg := s.cfg
	nf := len(s.bcs)
	p := NewPacer(cfg.Rate, cfg.Interval, cfg.Batch*nf, start)
	end := start.Add(cfg.Duration)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		now := time.Now()
		if !now.Before(end) || ctx.Err() != nil {
			break
		}
		n, wait := p.Take(now, cfg.Batch*nf)
		if n == 0 {
			wait = min(wait, end.Sub(now))
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
			continue
		}
		unsent := s.sendBatch(n, now.UnixNano())
		if unsent > 0 {
			p.Unissue(unsent)
		}
		s.last = time.Now()
	}
	s.skipped = p.Skipped()
}

// sendBatch sends n datagrams spread over the flows round-robin and
// returns how many could not be sent. Sequence numbers of unsent
// datagrams are reused, so every flow's sequence stays dense.
func (s *sender) sendBatch(n int, now int64) int {
	nf := len(s.bcs)
	clear(s.count)
	for k := 0; k < n; k++ {
		f := (s.next + k) % nf
		s.count[f]++
	}
	s.next = (s.next + n) % nf
	unsent := 0
	for f, c := range s.count {
		if c == 0 {
			continue
		}
		bc := s.bcs[f]
		// Message j carries datagrams [j*gso, (j+1)*gso) of this flow's
		// c; without GSO one each.
		gso := s.cfg.GSO
		msgs := (c + gso - 1) / gso
		for j := 0; j < msgs; j++ {
			off := 0
			for i := j * gso; i < min((j+1)*gso, c); i++ {
				size := s.cfg.Profile.Payload(s.pkt + uint64(i))
				Header{Flow: s.ids[f], Seq: s.seq[f] + uint64(i), SentNs: now}.Put(bc.b.bufs[j][off : off+size])
				off += size
			}
			bc.b.setLen(j, off)
		}
		sentMsgs, err := bc.sendmmsg(msgs)
		done := min(sentMsgs*gso, c)
		for i := 0; i < done; i++ {
			s.bytes += uint64(s.cfg.Profile.Payload(s.pkt+uint64(i)) + ipUDPLen)
		}
		s.pkt += uint64(done)
		s.seq[f] += uint64(done)
		if err != nil {
			s.errors++
			s.lastErr = err.Error()
			unsent += c - done
		}
	}
	return unsent
}
