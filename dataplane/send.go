package dataplane

import (
	"errors"
	"os"
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
	"github.com/cgwproject/cgw/dataplane/udp"
	"golang.zx2c4.com/wireguard/tun"
)

/* Outbound path (wireguard-go device/send.go is the model):
 *
 *   RoutineReadFromTUN ──▶ queue.encryption ──▶ RoutineEncryption (×workers)
 *          │                                           │ unlock batch
 *          └──────────▶ tunnel.queue.outbound ──▶ RoutineSequentialSender ──▶ UDP
 *
 * The reader reserves sequence numbers in read order, so batches and the
 * packets in them carry increasing sequence numbers; the sequential sender
 * keeps that order on the wire.
 */

// RoutineReadFromTUN reads batches of inner packets from the tunnel's TUN
// device, checks and clamps them, reserves sequence numbers on the active
// outbound SA and queues them for encryption.
func (t *tunnel) RoutineReadFromTUN() {
	defer t.wg.Done()
	defer close(t.queue.outbound)
	e := t.e
	e.log.Debug("routine started", "routine", "ReadFromTUN", "tunnel", t.name)
	defer e.log.Debug("routine stopped", "routine", "ReadFromTUN", "tunnel", t.name)

	elems := make([]*elem, batchSize)
	bufs := make([][]byte, batchSize)
	sizes := make([]int, batchSize)
	defer func() {
		for _, el := range elems {
			if el != nil {
				e.pools.putElem(el)
			}
		}
	}()
	var p packet.Parsed
	errorsInARow := 0
	waiter := newTUNWaiter(t.dev)
	lastRead, quiet := time.Now(), true // no buffers until the first packet
	for {
		if waiter != nil && quiet {
			t.releaseTxElems(elems)
			waiter.wait()
		} else if waiter != nil {
			waiter.hold(lastRead)
		}
		for i := range elems {
			if elems[i] == nil {
				elems[i] = e.pools.getTxElem()
			}
			bufs[i] = elems[i].buf
		}
		n, err := t.dev.Read(bufs, sizes, tunReadOffset)
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			quiet = true // hold's deadline: nothing came, wait without the buffers
			continue
		}
		now := time.Now()
		quiet, lastRead = now.Sub(lastRead) > quietGap, now
		if n > 0 {
			t.processOutbound(elems[:n], sizes[:n], &p)
		}
		if err == nil {
			errorsInARow = 0
			continue
		}
		if errors.Is(err, tun.ErrTooManySegments) {
			// The packets that fit were handled above; the rest of the
			// superpacket is lost, as in wireguard-go.
			t.drop(dropMalformed, 1)
			continue
		}
		select {
		case <-t.stop:
			return
		default:
		}
		if isClosed(err) {
			return
		}
		errorsInARow++
		if errorsInARow == 1 {
			e.log.Warn("reading from TUN device failed", "tunnel", t.name, "err", err)
		}
		if errorsInARow > 16 {
			time.Sleep(10 * time.Millisecond) // do not spin on a broken device
		}
	}
}

// processOutbound filters, clamps and, when they exceed the tunnel MTU,
// fragments the packets just read, and queues them for encryption in
// batches. Each element that enters a batch is removed from elems (set to
// nil); the caller keeps the others.
func (t *tunnel) processOutbound(elems []*elem, sizes []int, p *packet.Parsed) {
	q := outQueue{t: t, sa: t.out.Load()}
	mtu := int(t.mtu.Load())
	mss := uint16(t.mss.Load())
	for i, el := range elems {
		n := sizes[i]
		if n <= 0 {
			continue
		}
		pkt := el.buf[tunReadOffset : tunReadOffset+n]
		if err := p.Decode(pkt); err != nil {
			t.drop(dropNotIP, 1)
			continue
		}
		sa := q.sa
		if sa == nil {
			t.drop(dropNoSA, 1)
			continue
		}
		if p.Length != n {
			// Trailing garbage after the IP packet: a kernel TUN never
			// produces it; drop rather than encrypt it.
			t.drop(dropMalformed, 1)
			continue
		}
		if !sa.ts.outboundOK(p) {
			t.drop(dropTSMismatch, 1)
			continue
		}
		if sa.hardBytes > 0 {
			// Counted at admission, not after encryption: with batches in
			// flight the sealed count lags by up to a batch per worker.
			if sa.admitted.Load() >= sa.hardBytes {
				t.drop(dropExpired, 1)
				continue
			}
			sa.admitted.Add(uint64(n))
		}
		if mss != 0 && p.Proto == packet.ProtoTCP {
			p.ClampMSS(pkt, mss)
		}
		if n > mtu {
			if t.oversized(&q, el, pkt, p, mtu) {
				elems[i] = nil
			}
			continue
		}
		if q.add(el, n) {
			elems[i] = nil
		}
	}
	q.flush()
}

// outQueue collects one read's packets into batches for one outbound SA.
type outQueue struct {
	t  *tunnel
	sa *outboundSA
	b  *outBatch
}

// add reserves a sequence number for el, whose inner packet of n octets
// starts at tunReadOffset, and appends it to the current batch, queueing
// the batch when it is full. It reports false, counting the drop, when the
// SA has no sequence number left; el then still belongs to the caller.
func (q *outQueue) add(el *elem, n int) bool {
	t, sa := q.t, q.sa
	seq, soft, err := sa.tr.NextSeq()
	if err != nil {
		if isSeqExhausted(err) {
			t.e.fireSoftExpire(sa)
			t.drop(dropSeqExhausted, 1)
		} else {
			t.drop(dropMalformed, 1)
		}
		return false
	}
	if soft {
		t.e.fireSoftExpire(sa)
	}
	el.seq = seq
	el.innerLen = n
	el.pkt = el.buf[tunReadOffset : tunReadOffset+n]
	if q.b == nil {
		q.b = t.e.pools.getOut()
		q.b.sa = sa
	}
	q.b.elems = append(q.b.elems, el)
	if len(q.b.elems) >= batchSize {
		q.flush()
	}
	return true
}

// flush hands the current batch, if any, to the encryption workers and
// the tunnel's sequential sender.
func (q *outQueue) flush() {
	b := q.b
	if b == nil {
		return
	}
	q.b = nil
	t, sa := q.t, q.sa
	if sa.softBytes > 0 && sa.stats.bytes.Load() >= sa.softBytes {
		t.e.fireSoftExpire(sa)
	}
	b.mu.Lock() // unlocked by RoutineEncryption
	t.queue.outbound <- b
	t.e.queue.encryption <- b
}

// maxFragments bounds the fragments of one inner packet: a 64 KiB packet
// at a 1100-octet tunnel MTU. With the device at DeviceMTU a packet never
// needs more than a few.
const maxFragments = 64

// oversized handles an inner packet larger than the tunnel MTU as
// t.oversize says (see Oversize) and reports whether el was queued.
func (t *tunnel) oversized(q *outQueue, el *elem, pkt []byte, p *packet.Parsed, mtu int) bool {
	if p.Version == 6 {
		// RFC 8200, Section 5: only the source fragments IPv6.
		t.tooBig(pkt, p, mtu)
		return false
	}
	if packet.DF(pkt) {
		if t.oversize == OversizeICMP {
			t.tooBig(pkt, p, mtu) // RFC 1191, Section 4
			return false
		}
		// AWS "clear_df_bit": the packet becomes fragmentable and needs
		// an Identification of its own (RFC 6864, Section 4.3).
		t.fragID++
		packet.ClearDF(pkt, t.fragID)
	}
	return t.fragment(q, el, pkt, mtu)
}

// fragment splits the IPv4 packet pkt (el's, DF clear) into fragments of
// at most mtu octets (RFC 791, Section 3.2) and queues them in order, each
// to be encrypted as its own ESP packet (AWS
// "fragmentation_before_encryption"). The first fragment is made in place
// in el; the others in buffers from the pool. It reports whether el was
// queued.
func (t *tunnel) fragment(q *outQueue, el *elem, pkt []byte, mtu int) bool {
	n, err := packet.IPv4FragmentCount(pkt, mtu)
	if err != nil {
		t.drop(dropMalformed, 1)
		return false
	}
	if n > maxFragments {
		t.drop(dropMTU, 1)
		return false
	}
	var frags [maxFragments]*elem
	var lens [maxFragments]int
	release := func(from int) {
		for i := from; i < n; i++ {
			if frags[i] != nil {
				t.e.pools.putElem(frags[i])
			}
		}
	}
	// The later fragments first: they are read from the unmodified packet.
	for i := n - 1; i >= 1; i-- {
		f := t.e.pools.getElem()
		frags[i] = f
		l, err := packet.FragmentIPv4(f.buf[tunReadOffset:], pkt, mtu, i)
		if err != nil {
			release(i)
			t.drop(dropMalformed, 1)
			return false
		}
		lens[i] = l
	}
	l, err := packet.FragmentIPv4(pkt, pkt, mtu, 0)
	if err != nil {
		release(1)
		t.drop(dropMalformed, 1)
		return false
	}
	if !q.add(el, l) {
		release(1)
		return false
	}
	t.c.fragmented.Add(1)
	for i := 1; i < n; i++ {
		if !q.add(frags[i], lens[i]) {
			// No sequence numbers left: the receiver discards the
			// incomplete datagram when its reassembly timer expires.
			release(i)
			break
		}
	}
	return true
}

// RoutineEncryption seals the packets of queued batches in place.
func (e *Engine) RoutineEncryption(id int) {
	defer e.workersWG.Done()
	e.log.Debug("routine started", "routine", "Encryption", "worker", id)
	defer e.log.Debug("routine stopped", "routine", "Encryption", "worker", id)
	for b := range e.queue.encryption {
		tr := b.sa.tr
		for _, el := range b.elems {
			start, end, err := tr.Seal(el.buf, tunReadOffset, el.innerLen, el.seq)
			if err != nil {
				el.err = err
				continue
			}
			el.pkt = el.buf[start:end]
		}
		b.mu.Unlock()
	}
}

// RoutineSequentialSender sends the tunnel's sealed batches in order. When
// more batches are already queued behind the one it took (the sender fell
// behind the reader), it sends them together, up to udp.IdealBatch packets
// in one sendmmsg: runs of equal-sized packets then leave as one UDP GSO
// superpacket, so the per-packet kernel cost falls as the load rises
// instead of the queue overflowing (issue 18). Order is unchanged: batches
// are taken from the queue in order and their packets appended in order.
func (t *tunnel) RoutineSequentialSender() {
	defer t.wg.Done()
	e := t.e
	e.log.Debug("routine started", "routine", "SequentialSender", "tunnel", t.name)
	defer e.log.Debug("routine stopped", "routine", "SequentialSender", "tunnel", t.name)
	s := &seqSender{t: t, pkts: make([][]byte, 0, udp.IdealBatch), batches: make([]*outBatch, 0, udp.IdealBatch)}
	for b := range t.queue.outbound {
		s.add(b)
		open := true
	gather:
		for len(s.pkts) < udp.IdealBatch && len(s.batches) < cap(s.batches) {
			select {
			case b2, ok := <-t.queue.outbound:
				if !ok {
					open = false
					break gather
				}
				s.add(b2)
			default:
				break gather
			}
		}
		s.flush()
		if !open {
			return
		}
	}
}

// seqSender is the sequential sender's accumulation of sealed packets for
// one sendmmsg: packets of consecutive batches of one SA.
type seqSender struct {
	t         *tunnel
	w         *udp.Writer
	wsock     *socket
	loggedErr bool

	sa      *outboundSA
	pkts    [][]byte
	inner   int
	batches []*outBatch // sent or dropped with the next flush
}

// add waits for b's encryption and appends its packets, sending what was
// gathered first when b belongs to another SA or would overflow the send.
func (s *seqSender) add(b *outBatch) {
	b.mu.Lock() // wait for RoutineEncryption
	if s.sa != nil && (b.sa != s.sa || len(s.pkts)+len(b.elems) > udp.IdealBatch) {
		s.flush()
	}
	s.sa = b.sa
	for _, el := range b.elems {
		if el.err != nil {
			s.t.drop(dropMalformed, 1)
			continue
		}
		s.pkts = append(s.pkts, el.pkt)
		s.inner += el.innerLen
	}
	s.batches = append(s.batches, b)
}

// flush sends the gathered packets to the SA's peer in one batched send
// and releases their batches.
func (s *seqSender) flush() {
	t, e, sa := s.t, s.t.e, s.sa
	if sa != nil && len(s.pkts) > 0 {
		ep := sa.ep.Load()
		sock := e.sendSocket(ep)
		if sock == nil {
			t.drop(dropUDPSend, len(s.pkts))
		} else {
			if sock != s.wsock {
				s.w, s.wsock = sock.conn.NewWriter(), sock
			}
			if err := s.w.Send(s.pkts, ep.local.Addr(), ep.remote); err != nil {
				t.drop(dropUDPSend, len(s.pkts))
				if !s.loggedErr {
					e.log.Warn("sending ESP failed", "tunnel", t.name, "remote", ep.remote, "err", err)
					s.loggedErr = true
				}
			} else {
				s.loggedErr = false
				now := time.Now().UnixNano()
				t.c.outPackets.Add(uint64(len(s.pkts)))
				t.c.outBytes.Add(uint64(s.inner))
				t.c.lastOutbound.Store(now)
				sa.stats.add(uint64(len(s.pkts)), uint64(s.inner), now)
			}
		}
	}
	clear(s.pkts)
	s.pkts = s.pkts[:0]
	s.inner = 0
	s.sa = nil
	for i, b := range s.batches {
		b.mu.Unlock()
		e.pools.putOut(b)
		s.batches[i] = nil
	}
	s.batches = s.batches[:0]
}
