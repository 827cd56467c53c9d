package dataplane

import "sync"

/* Inline fast path (issue 18).
 *
 * At moderate packet rates a TUN or socket read returns a handful of
 * packets, and handing each such batch to a crypto worker and then to the
 * tunnel's sequential stage costs two goroutine wake-ups (futex calls and
 * thread switches), which the profiles showed to be the largest share of
 * cgwd's CPU per packet, larger than the crypto. So a small batch whose
 * tunnel has nothing queued in that direction is sealed and sent (or
 * opened and written to the TUN) by the reading goroutine itself:
 *
 *   - outbound, the TUN reader is the only producer of the tunnel's
 *     batches: when outInflight is 0 every batch it queued before has
 *     been sent, so sending inline keeps the order;
 *   - inbound, two socket readers (IPv4, IPv6) may deliver to one tunnel:
 *     the reader claims the tunnel with a compare-and-swap of inInflight
 *     from 0, and the sequential stage runs under rxMu whether inline or
 *     in RoutineSequentialReceiver, so batches still leave in the order
 *     they were queued and the anti-replay state has one user at a time.
 *
 * Larger batches, and any batch while others are in flight, take the
 * parallel path as before.
 */

// inlineMax is the largest batch handled inline.
const inlineMax = 16

// inlineState is the per-tunnel state of the inline path.
type inlineState struct {
	// snd is the TUN reader's own sender (it is used by that goroutine
	// only); rcv is the inline receiver, used under rxMu.
	snd *seqSender
	rcv *seqReceiver
	// rxMu is held by whoever runs the sequential receive stage.
	rxMu sync.Mutex
}

func (t *tunnel) initInline() {
	t.inl.snd = newSeqSender(t, false)
	t.inl.rcv = newSeqReceiver(t, false)
}

// sealBatch seals b's packets in place (RoutineEncryption's work).
func sealBatch(b *outBatch) {
	tr := b.sa.tr
	for _, el := range b.elems {
		start, end, err := tr.Seal(el.buf, tunReadOffset, el.innerLen, el.seq)
		if err != nil {
			el.err = err
			continue
		}
		el.pkt = el.buf[start:end]
	}
}

// openBatch verifies and decrypts b's packets in place
// (RoutineDecryption's work).
func openBatch(b *inBatch) {
	for _, el := range b.elems {
		inner, nh, seq, err := el.sa.tr.Open(el.pkt)
		el.err = err
		el.pkt = inner
		el.nextHdr = nh
		el.seq = seq
	}
}

// sendInline seals and sends b on the TUN reader's goroutine when b is
// small and nothing of the tunnel's is queued for sending; it reports
// whether it did. b must not be locked.
func (t *tunnel) sendInline(b *outBatch) bool {
	if len(b.elems) > inlineMax || t.outInflight.Load() != 0 {
		return false
	}
	sealBatch(b)
	t.inl.snd.add(b)
	t.inl.snd.flush()
	return true
}

// receiveInline opens b and delivers it to the TUN on the socket reader's
// goroutine when b is small and nothing of the tunnel's is queued for
// receiving; it reports whether it did. The caller holds t.inMu for
// reading with the tunnel open; b must not be locked.
func (t *tunnel) receiveInline(b *inBatch) bool {
	if len(b.elems) > inlineMax || !t.inInflight.CompareAndSwap(0, 1) {
		return false
	}
	openBatch(b)
	t.inl.rxMu.Lock()
	r := t.inl.rcv
	r.start()
	r.add(b)
	r.flush()
	t.inl.rxMu.Unlock()
	t.inInflight.Add(-1)
	return true
}
