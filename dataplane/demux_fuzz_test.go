package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cgwproject/cgw/dataplane/udp"
)

// FuzzDemux feeds arbitrary datagrams to the port-4500 demultiplexer of an
// engine with a live tunnel and SA (RFC 3948, Section 2.2), from the
// tunnel's peer or from a stranger. It must never panic or stall; a
// datagram starting with the non-ESP marker reaches the IKE handler with
// the marker stripped and nothing else does; ESP for the known SPI goes
// through the real decryption and receive stages (and is dropped there
// unless authentic).
func FuzzDemux(f *testing.F) {
	devA, devB := newMemTUN(64), newMemTUN(64)
	pr := newPair(f, algGCM, devA, devB, TunnelConfig{})
	e := pr.b
	go func() { // drain what reaches B's TUN so the receiver never blocks
		for p := range devB.out {
			select {
			case devB.free <- p:
			default:
			}
		}
	}()
	var ike [][]byte
	e.SetIKEHandler(func(_, _ netip.AddrPort, data []byte) { ike = append(ike, append([]byte(nil), data...)) })
	sock := e.nattSocket(pr.bEP.Addr())
	_, nattPort := e.Ports()

	esp := func(spi uint32, seq uint32, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, spi)
		b = binary.BigEndian.AppendUint32(b, seq)
		return append(b, body...)
	}
	f.Add([]byte{0xff}, true)                                               // NAT-keepalive from the peer
	f.Add([]byte{0xff}, false)                                              // stray keepalive
	f.Add([]byte{0, 0, 0, 0}, true)                                         // marker, empty IKE
	f.Add(append([]byte{0, 0, 0, 0}, bytes.Repeat([]byte{7}, 28)...), true) // marker + IKE header size
	f.Add(esp(uint32(pr.spiAB), 1, bytes.Repeat([]byte{1}, 40)), true)      // known SPI, bad ICV
	f.Add(esp(uint32(pr.spiAB), 0, nil), false)                             // known SPI, from elsewhere, no payload
	f.Add(esp(0xdeadbeef, 1, bytes.Repeat([]byte{2}, 64)), true)            // unknown SPI from the peer
	f.Add([]byte{0, 0, 1}, true)                                            // too short for anything
	f.Add([]byte{}, false)
	stranger := netip.MustParseAddrPort("127.0.0.9:4500")
	f.Fuzz(func(t *testing.T, data []byte, fromPeer bool) {
		remote := stranger
		if fromPeer {
			remote = pr.aEP
		}
		ike = ike[:0]
		el := e.pools.getElem()
		n := copy(el.buf[rxOffset:], data)
		if n == 0 {
			e.pools.putElem(el)
			return // a zero-length read is skipped before demux
		}
		rx := &rxState{now: time.Now().UnixNano(), sad: e.sad.Load(), port: nattPort}
		m := &udp.Message{N: n, Remote: remote, Local: pr.bEP.Addr()}
		if !e.demux(sock, rx, el, n, m) {
			e.pools.putElem(el)
		}
		for _, b := range rx.pending {
			e.dispatchInbound(b)
		}
		data = data[:n]
		isIKE := n >= nonESPMarkerLen && binary.BigEndian.Uint32(data) == 0
		switch {
		case isIKE && (len(ike) != 1 || !bytes.Equal(ike[0], data[nonESPMarkerLen:])):
			t.Fatalf("IKE datagram delivered as %q, want the %d bytes after the marker once", ike, n-nonESPMarkerLen)
		case !isIKE && len(ike) != 0:
			t.Fatalf("non-IKE datagram %x delivered to the IKE handler", data)
		}
	})
}
