package dataplane

import (
	"errors"
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
	for {
		for i := range elems {
			if elems[i] == nil {
				elems[i] = e.pools.getElem()
			}
			bufs[i] = elems[i].buf
		}
		n, err := t.dev.Read(bufs, sizes, tunReadOffset)
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

// processOutbound filters the packets just read and queues a batch. Each
// element that enters the batch is removed from elems (set to nil).
func (t *tunnel) processOutbound(elems []*elem, sizes []int, p *packet.Parsed) {
	e := t.e
	sa := t.out.Load()
	var b *outBatch
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
		if n > int(t.mtu.Load()) {
			t.tooBig(pkt, p)
			continue
		}
		if !sa.ts.outboundOK(p) {
			t.drop(dropTSMismatch, 1)
			continue
		}
		if sa.hardBytes > 0 && sa.stats.bytes.Load() >= sa.hardBytes {
			t.drop(dropExpired, 1)
			continue
		}
		seq, soft, err := sa.tr.NextSeq()
		if err != nil {
			if isSeqExhausted(err) {
				e.fireSoftExpire(sa)
				t.drop(dropSeqExhausted, 1)
			} else {
				t.drop(dropMalformed, 1)
			}
			continue
		}
		if soft {
			e.fireSoftExpire(sa)
		}
		if t.mss != 0 && p.Proto == packet.ProtoTCP {
			p.ClampMSS(pkt, t.mss)
		}
		el.seq = seq
		el.innerLen = n
		el.pkt = pkt
		if b == nil {
			b = e.pools.getOut()
			b.sa = sa
		}
		b.elems = append(b.elems, el)
		elems[i] = nil
	}
	if b == nil {
		return
	}
	if sa.softBytes > 0 && sa.stats.bytes.Load() >= sa.softBytes {
		e.fireSoftExpire(sa)
	}
	b.mu.Lock() // unlocked by RoutineEncryption
	t.queue.outbound <- b
	e.queue.encryption <- b
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

// RoutineSequentialSender sends the tunnel's sealed batches in order, each
// in one batched UDP send to the SA's peer.
func (t *tunnel) RoutineSequentialSender() {
	defer t.wg.Done()
	e := t.e
	e.log.Debug("routine started", "routine", "SequentialSender", "tunnel", t.name)
	defer e.log.Debug("routine stopped", "routine", "SequentialSender", "tunnel", t.name)
	pkts := make([][]byte, 0, batchSize)
	var w *udp.Writer
	var wsock *socket
	loggedErr := false
	for b := range t.queue.outbound {
		b.mu.Lock() // wait for RoutineEncryption
		sa := b.sa
		pkts = pkts[:0]
		inner := 0
		for _, el := range b.elems {
			if el.err != nil {
				t.drop(dropMalformed, 1)
				continue
			}
			pkts = append(pkts, el.pkt)
			inner += el.innerLen
		}
		ep := sa.ep.Load()
		if len(pkts) > 0 {
			s := e.nattSocket(ep.remote.Addr())
			if s == nil {
				t.drop(dropUDPSend, len(pkts))
			} else {
				if s != wsock {
					w, wsock = s.conn.NewWriter(), s
				}
				if err := w.Send(pkts, ep.local.Addr(), ep.remote); err != nil {
					t.drop(dropUDPSend, len(pkts))
					if !loggedErr {
						e.log.Warn("sending ESP failed", "tunnel", t.name, "remote", ep.remote, "err", err)
						loggedErr = true
					}
				} else {
					loggedErr = false
					now := time.Now().UnixNano()
					t.c.outPackets.Add(uint64(len(pkts)))
					t.c.outBytes.Add(uint64(inner))
					t.c.lastOutbound.Store(now)
					sa.stats.add(uint64(len(pkts)), uint64(inner), now)
				}
			}
		}
		b.mu.Unlock()
		e.pools.putOut(b)
	}
}
