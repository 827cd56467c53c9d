package dataplane

import (
	"net/netip"
	"sync"
)

// elem is one packet on its way through the pipeline. Its buffer is
// reused for the whole trip: the inner packet is sealed in place, and
// received ESP packets are opened in place.
type elem struct {
	buf []byte // len(buf) == bufSize, or txBufSize when tx
	tx  bool   // from the TUN readers' free list (pools.getTxElem)
	// pkt is the current packet: outbound the inner packet, then the ESP
	// packet; inbound the ESP packet, then the inner packet.
	pkt      []byte
	seq      uint64
	innerLen int
	nextHdr  byte
	sa       *inboundSA     // inbound only
	remote   netip.AddrPort // inbound only: the datagram's source
	err      error          // set by the crypto stage
}

// outBatch is a batch of packets read from one tunnel's TUN device and
// sealed with one outbound SA. mu is locked from creation until the
// encryption worker is done with it.
type outBatch struct {
	mu    sync.Mutex
	sa    *outboundSA
	elems []*elem
}

// inBatch is a batch of ESP packets for one tunnel, possibly of several
// inbound SAs. mu is locked until the decryption worker is done.
type inBatch struct {
	mu    sync.Mutex
	t     *tunnel
	elems []*elem
}

// pools hands out buffers and batch containers. Free lists are bounded
// channels: Get allocates when the list is empty, Put drops when it is
// full, so memory held idle is capped while peaks never block.
type pools struct {
	elems   chan *elem
	txElems chan *elem // small buffers for the TUN readers
	outs    chan *outBatch
	ins     chan *inBatch
}

func newPools() *pools {
	return &pools{
		elems:   make(chan *elem, maxFreeBuffers),
		txElems: make(chan *elem, maxFreeBuffers),
		outs:    make(chan *outBatch, maxFreeBuffers/8),
		ins:     make(chan *inBatch, maxFreeBuffers/8),
	}
}

func (p *pools) getElem() *elem {
	select {
	case e := <-p.elems:
		return e
	default:
		return &elem{buf: make([]byte, bufSize)}
	}
}

// getTxElem returns an element with a txBufSize buffer, for a TUN
// reader: each tunnel's reader holds batchSize of them while it waits, so
// with hundreds of mostly idle tunnels a full bufSize buffer each would
// keep gigabytes of heap (docs/scale.md).
func (p *pools) getTxElem() *elem {
	select {
	case e := <-p.txElems:
		return e
	default:
		return &elem{buf: make([]byte, txBufSize), tx: true}
	}
}

func (p *pools) putElem(e *elem) {
	e.pkt = nil
	e.sa = nil
	e.err = nil
	free := p.elems
	if e.tx {
		free = p.txElems
	}
	select {
	case free <- e:
	default:
	}
}

func (p *pools) getOut() *outBatch {
	select {
	case b := <-p.outs:
		return b
	default:
		return &outBatch{elems: make([]*elem, 0, batchSize)}
	}
}

// putOut releases b and every element still in it.
func (p *pools) putOut(b *outBatch) {
	for i, e := range b.elems {
		p.putElem(e)
		b.elems[i] = nil
	}
	b.elems = b.elems[:0]
	b.sa = nil
	select {
	case p.outs <- b:
	default:
	}
}

func (p *pools) getIn() *inBatch {
	select {
	case b := <-p.ins:
		return b
	default:
		return &inBatch{elems: make([]*elem, 0, batchSize)}
	}
}

func (p *pools) putIn(b *inBatch) {
	for i, e := range b.elems {
		p.putElem(e)
		b.elems[i] = nil
	}
	b.elems = b.elems[:0]
	b.t = nil
	select {
	case p.ins <- b:
	default:
	}
}
