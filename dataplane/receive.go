package dataplane

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/cgwproject/cgw/dataplane/packet"
	"github.com/cgwproject/cgw/dataplane/udp"
)

/* Inbound path (wireguard-go device/receive.go is the model):
 *
 *   RoutineReceive ──demux──▶ queue.decryption ──▶ RoutineDecryption (×workers)
 *        │  IKE → handler                                │ unlock batch
 *        │  0xFF → keepalive                             ▼
 *        └──────────────▶ tunnel.queue.inbound ──▶ RoutineSequentialReceiver ──▶ TUN
 */

// RoutineReceive reads batches from one socket and demultiplexes them.
func (e *Engine) RoutineReceive(s *socket) {
	defer e.socketWG.Done()
	name := "RoutineReceive"
	e.log.Debug("routine started", "routine", name, "port", s.conn.Port(), "ipv6", s.conn.IPv6())
	defer e.log.Debug("routine stopped", "routine", name, "port", s.conn.Port(), "ipv6", s.conn.IPv6())

	n := batchSize
	if !s.natt && !s.raw {
		n = ikeReadBatch
	}
	msgs := make([]udp.Message, n)
	held := make([]*elem, n)
	segs := make([]*elem, 0, udp.MaxSegments*2)
	rx := &rxState{pending: make([]*inBatch, 0, 8)}
	defer func() {
		for _, el := range held {
			if el != nil {
				e.pools.putElem(el)
			}
		}
	}()
	errorsInARow := 0
	demand := newRxDemand(n) // rxdemand.go
	for {
		for i := range demand.want {
			if held[i] == nil {
				held[i] = e.pools.getElem()
			}
			msgs[i].Buf = held[i].buf[rxOffset:]
		}
		demand.arm(s.conn)
		k, err := s.conn.ReadBatch(msgs[:demand.want])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				e.rxResized(demand.timedOut(), 1, held[1:])
				continue
			}
			errorsInARow++
			if errorsInARow == 1 {
				e.log.Warn("receiving from UDP socket failed", "port", s.conn.Port(), "err", err)
			}
			if errorsInARow > 16 {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		errorsInARow = 0
		rx.now = time.Now().UnixNano()
		prev := demand.want
		want := demand.read(k, rx.now)
		rx.sad = e.sad.Load()
		rx.port = s.conn.Port()
		for i := range k {
			m := &msgs[i]
			if m.N <= 0 {
				continue
			}
			size := m.N
			segs = segs[:0]
			if m.GSOSize > 0 && m.N > m.GSOSize {
				// UDP GRO coalesced several datagrams. Copy all but the
				// first out before the first can enter the pipeline, so
				// that no stage touches the buffer while we copy.
				for off := m.GSOSize; off < m.N; off += m.GSOSize {
					end := min(off+m.GSOSize, m.N)
					el := e.pools.getElem()
					el.innerLen = copy(el.buf[rxOffset:], m.Buf[off:end])
					segs = append(segs, el)
				}
				size = m.GSOSize
			}
			if e.demux(s, rx, held[i], size, m) {
				held[i] = nil
			}
			for _, el := range segs {
				if !e.demux(s, rx, el, el.innerLen, m) {
					e.pools.putElem(el)
				}
			}
		}
		for _, b := range rx.pending {
			e.dispatchInbound(b)
		}
		clear(rx.pending)
		rx.pending = rx.pending[:0]
		if want != prev {
			e.rxResized(prev, want, held[want:])
		}
	}
}

// rxState is a receive routine's per-read context.
type rxState struct {
	now     int64
	sad     *sad
	port    uint16
	pending []*inBatch // one per tunnel seen in this read
}

// demux classifies one datagram (RFC 3948, Section 2.2 on port 4500; only
// IKE on port 500) and reports whether el entered the pipeline.
func (e *Engine) demux(s *socket, rx *rxState, el *elem, n int, m *udp.Message) bool {
	pkt := el.buf[rxOffset+m.Off : rxOffset+n]
	if s.raw {
		goto esp // IP protocol 50: no marker, no keepalives
	}
	if !s.natt {
		e.deliverIKE(netip.AddrPortFrom(m.Local, rx.port), m.Remote, pkt)
		return false
	}
	if n == 1 && pkt[0] == natKeepalive {
		// NAT-keepalive (RFC 3948, Section 2.3): counted, nothing
		// more. It is unauthenticated (anyone can send one from the
		// peer's address), so it is not inbound traffic: it does not
		// move LastInbound, the traffic counters or DPD.
		if t := rx.sad.byPeer[m.Remote.Addr()]; t != nil {
			t.c.keepalivesRx.Add(1)
		} else {
			e.counters.strayKeepalives.Add(1)
		}
		return false
	}
	if n >= nonESPMarkerLen && binary.BigEndian.Uint32(pkt) == 0 {
		e.deliverIKE(netip.AddrPortFrom(m.Local, rx.port), m.Remote, pkt[nonESPMarkerLen:])
		return false
	}
esp:
	spi, ok := parseSPI(pkt)
	if !ok {
		e.counters.malformed.Add(1)
		return false
	}
	sa := rx.sad.bySPI[spi]
	if sa == nil {
		if t := rx.sad.byPeer[m.Remote.Addr()]; t != nil {
			t.drop(dropUnknownSPI, 1)
		} else {
			e.counters.unknownSPI.Add(1)
		}
		return false
	}
	el.pkt = pkt
	el.sa = sa
	el.remote = m.Remote
	var b *inBatch
	for _, pb := range rx.pending {
		if pb.t == sa.t {
			b = pb
			break
		}
	}
	if b == nil {
		b = e.pools.getIn()
		b.t = sa.t
		rx.pending = append(rx.pending, b)
	}
	b.elems = append(b.elems, el)
	if len(b.elems) == batchSize {
		for i, pb := range rx.pending {
			if pb == b {
				rx.pending = append(rx.pending[:i], rx.pending[i+1:]...)
				break
			}
		}
		e.dispatchInbound(b)
	}
	return true
}

func (e *Engine) deliverIKE(local, remote netip.AddrPort, data []byte) {
	if h := e.ikeHandler.Load(); h != nil {
		e.counters.ikeIn.Add(1)
		(*h)(local, remote, data)
	}
}

// dispatchInbound queues b for decryption and for its tunnel's receiver,
// or releases it when the tunnel is being removed.
func (e *Engine) dispatchInbound(b *inBatch) {
	t := b.t
	t.inMu.RLock()
	if t.inClosed {
		t.inMu.RUnlock()
		e.pools.putIn(b)
		return
	}
	b.mu.Lock() // unlocked by RoutineDecryption
	t.queue.inbound <- b
	e.queue.decryption <- b
	t.inMu.RUnlock()
}

// RoutineDecryption verifies and decrypts queued batches in place.
func (e *Engine) RoutineDecryption(id int) {
	defer e.workersWG.Done()
	e.log.Debug("routine started", "routine", "Decryption", "worker", id)
	defer e.log.Debug("routine stopped", "routine", "Decryption", "worker", id)
	for b := range e.queue.decryption {
		for _, el := range b.elems {
			inner, nh, seq, err := el.sa.tr.Open(el.pkt)
			el.err = err
			el.pkt = inner
			el.nextHdr = nh
			el.seq = seq
		}
		b.mu.Unlock()
	}
}

// RoutineSequentialReceiver takes the tunnel's decrypted batches in order,
// updates the anti-replay windows, checks the inner packets and writes
// them to the TUN device in one batch. Batches already queued behind the
// one it took are written with it (up to batchSize packets), so a receiver
// that fell behind catches up with fewer, larger writes (which the TUN's
// GRO coalesces further) instead of letting the queues overflow.
func (t *tunnel) RoutineSequentialReceiver() {
	defer t.wg.Done()
	e := t.e
	e.log.Debug("routine started", "routine", "SequentialReceiver", "tunnel", t.name)
	defer e.log.Debug("routine stopped", "routine", "SequentialReceiver", "tunnel", t.name)
	r := &seqReceiver{t: t, bufs: make([][]byte, 0, 2*batchSize), batches: make([]*inBatch, 0, batchSize)}
	for b := range t.queue.inbound {
		r.start()
		r.add(b)
		open := true
	gather:
		for len(r.bufs) < batchSize && len(r.batches) < cap(r.batches) {
			select {
			case b2, ok := <-t.queue.inbound:
				if !ok {
					open = false
					break gather
				}
				r.add(b2)
			default:
				break gather
			}
		}
		r.flush()
		if !open {
			return
		}
	}
}

// seqReceiver is the sequential receiver's state for one TUN write.
type seqReceiver struct {
	t         *tunnel
	p         packet.Parsed
	loggedErr bool

	now       int64
	mss       uint16
	bufs      [][]byte
	bytes     uint64
	authentic bool
	batches   []*inBatch
}

func (r *seqReceiver) start() {
	r.now = time.Now().UnixNano()
	r.mss = uint16(r.t.mss.Load())
}

// add waits for b's decryption and checks its packets in order, appending
// those to deliver.
func (r *seqReceiver) add(b *inBatch) {
	t := r.t
	b.mu.Lock() // wait for RoutineDecryption
	r.batches = append(r.batches, b)
	var last *inboundSA
	var saPackets, saBytes uint64
	for _, el := range b.elems {
		if el.err != nil {
			t.drop(dropForOpenError(el.err), 1)
			continue
		}
		sa := el.sa
		// RFC 4303, Section 3.4.3: update the window only for packets
		// whose ICV verified.
		if !sa.tr.Accept(el.seq) {
			t.drop(dropReplay, 1)
			continue
		}
		// Authentic: proof that the peer is alive, whatever follows.
		r.authentic = true
		if el.seq > sa.topSeq {
			// Newer than anything seen: the peer's current mapping
			// (mapping.go). One atomic load when nothing changed. Raw
			// ESP (port 0) on a UDP SA, or UDP on a raw one, is
			// accepted but moves nothing (rawesp.go).
			sa.topSeq = el.seq
			if ep := sa.ep.Load(); el.remote != ep.remote && ep.encap && el.remote.Port() != 0 {
				t.followMapping(sa, el.remote, r.now)
			}
		}
		if t.peerEncap.Load() != peerEncapOf(el.remote) {
			t.notePeerEncap(sa, el.remote)
		}
		if sa != last {
			if last != nil {
				last.stats.add(saPackets, saBytes, r.now)
			}
			last, saPackets, saBytes = sa, 0, 0
		}
		if sa.hardBytes > 0 && sa.stats.bytes.Load()+saBytes >= sa.hardBytes {
			t.drop(dropExpired, 1)
			continue
		}
		inner := el.pkt
		if d := t.checkInner(sa, el.nextHdr, inner, &r.p); d != dropNone {
			t.drop(d, 1)
			continue
		}
		inner = inner[:r.p.Length] // strip TFC padding (RFC 4303, Section 2.7)
		if r.mss != 0 && r.p.Proto == packet.ProtoTCP {
			r.p.ClampMSS(inner, r.mss)
		}
		off, ok := offsetIn(el.buf, inner)
		if !ok {
			t.drop(dropMalformed, 1)
			continue
		}
		if off != tunWriteOffset {
			copy(el.buf[tunWriteOffset:], inner)
		}
		r.bufs = append(r.bufs, el.buf[:tunWriteOffset+len(inner)])
		saPackets++
		saBytes += uint64(len(inner))
		r.bytes += uint64(len(inner))
	}
	if last != nil {
		last.stats.add(saPackets, saBytes, r.now)
	}
}

// flush writes the gathered packets to the TUN device and releases their
// batches.
func (r *seqReceiver) flush() {
	t, e := r.t, r.t.e
	if r.authentic {
		t.c.lastInbound.Store(r.now)
	}
	if len(r.bufs) > 0 {
		if _, err := t.dev.Write(r.bufs, tunWriteOffset); err != nil {
			t.drop(dropTUNWrite, len(r.bufs))
			if !r.loggedErr && !isClosed(err) {
				e.log.Warn("writing to TUN device failed", "tunnel", t.name, "err", err)
				r.loggedErr = true
			}
		} else {
			r.loggedErr = false
			t.c.inPackets.Add(uint64(len(r.bufs)))
			t.c.inBytes.Add(r.bytes)
		}
	}
	clear(r.bufs)
	r.bufs = r.bufs[:0]
	r.bytes = 0
	r.authentic = false
	for i, b := range r.batches {
		b.mu.Unlock()
		e.pools.putIn(b)
		r.batches[i] = nil
	}
	r.batches = r.batches[:0]
}

// dropNone means "keep the packet".
const dropNone dropReason = -1

// checkInner validates a decrypted tunnel-mode payload: its Next Header
// must announce IPv4 or IPv6 (RFC 4303, Section 2.6) matching the packet's
// version, the packet must parse, and it must lie within the SA's traffic
// selectors (RFC 4301, Section 5.2, step 4) and, when the tunnel has a
// source set (SetTunnelSources), come from a source the tunnel may carry.
// p receives the parse.
func (t *tunnel) checkInner(sa *inboundSA, nextHdr byte, inner []byte, p *packet.Parsed) dropReason {
	var want uint8
	switch nextHdr {
	case packet.ProtoIPv4:
		want = 4
	case packet.ProtoIPv6:
		want = 6
	default:
		return dropMalformed
	}
	if err := p.Decode(inner); err != nil || p.Version != want {
		return dropMalformed
	}
	if !sa.ts.inboundOK(p) {
		return dropTSMismatch
	}
	if src := t.sources.Load(); src != nil && !src.contains(p.Src) {
		return dropSource
	}
	return dropNone
}

// offsetIn returns the index of sub[0] inside buf, which sub must alias.
func offsetIn(buf, sub []byte) (int, bool) {
	if len(sub) == 0 {
		return 0, false
	}
	d := uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	if d > uintptr(len(buf)) || int(d)+len(sub) > len(buf) {
		return 0, false
	}
	return int(d), true
}
