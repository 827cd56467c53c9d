package dataplane

import (
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
)

// ICMP error rate limit per tunnel (RFC 4443, Section 2.4 (f) requires
// one for ICMPv6; RFC 1812, Section 4.3.2.8 recommends it for IPv4): a
// burst of icmpBurst, then icmpRate per second. A sender reacts to the
// first error; the rest only repeat it.
const (
	icmpBurst = 10
	icmpRate  = 100
)

// rateLimit is a token bucket. The zero value is full; not safe for
// concurrent use.
type rateLimit struct {
	tokens int
	last   int64 // unix nanoseconds of the last refill; 0 = never used
}

func (r *rateLimit) allow(now int64) bool {
	if r.last == 0 {
		r.tokens, r.last = icmpBurst, now
	}
	if add := (now - r.last) * icmpRate / int64(time.Second); add > 0 {
		r.tokens = int(min(int64(r.tokens)+add, icmpBurst))
		r.last = now
	}
	if r.tokens == 0 {
		return false
	}
	r.tokens--
	return true
}

// tooBig drops an inner packet larger than the tunnel MTU that may not be
// fragmented here and tells its sender the MTU with ICMP "fragmentation
// needed" (IPv4 with DF, RFC 1191) or ICMPv6 "packet too big" (RFC 4443,
// Section 3.2), written back to the TUN device. Called only from
// RoutineReadFromTUN.
func (t *tunnel) tooBig(pkt []byte, p *packet.Parsed, mtu int) {
	t.drop(dropMTU, 1)
	if !t.icmp.allow(time.Now().UnixNano()) {
		return
	}
	reply := t.e.pools.getElem()
	defer t.e.pools.putElem(reply)
	n := packet.BuildTooBig(reply.buf[tunWriteOffset:], pkt, p, mtu)
	if n == 0 {
		return
	}
	t.icmpBuf[0] = reply.buf[:tunWriteOffset+n]
	_, err := t.dev.Write(t.icmpBuf[:], tunWriteOffset)
	t.icmpBuf[0] = nil
	if err != nil {
		t.drop(dropTUNWrite, 1)
		return
	}
	t.c.tooBigSent.Add(1)
}
