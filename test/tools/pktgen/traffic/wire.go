// Package traffic is the engine of the pktgen test tool: the datagram
// header, packet-size profiles, a batch pacer, a batched UDP sender and a
// sink that accounts per flow for loss, reordering, duplicates and one-way
// latency.
//
// Sender and sink run on the same machine (in different network
// namespaces), so the send timestamp in every datagram and the receive
// time are read from one clock (CLOCK_REALTIME via time.Now) and the
// difference is the one-way latency.
//
// Nothing here is safe for concurrent use unless stated: a Sender and a
// Sink each belong to one goroutine.
package traffic

import (
	"encoding/binary"
	"errors"
)

// Datagram header, at the start of every UDP payload, big-endian:
//
//	0                   1                   2                   3
//	0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Magic "pgt1"                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Flow ID                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sequence number (64 bits, from 0)             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             Send time (64 bits, ns since the Unix epoch)      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The rest of the payload is zero padding up to the profile's size.
const (
	Magic      = 0x70677431 // "pgt1"
	HeaderLen  = 24
	ipUDPLen   = 20 + 8 // IPv4 + UDP headers: sizes are IPv4 packet lengths
	MinIPSize  = ipUDPLen + HeaderLen
	MaxIPSize  = 9000
	MaxFlows   = 1024
	maxSeqBits = 1 << 31 // per flow; bounds the sink's duplicate bitmap (256 MiB worst case)
)

// Header is one decoded datagram header.
type Header struct {
	Flow   uint32
	Seq    uint64
	SentNs int64
}

// errMalformed is returned for a datagram that is not ours.
var errMalformed = errors.New("traffic: datagram too short or bad magic")

// Put writes h into the first HeaderLen bytes of b.
func (h Header) Put(b []byte) {
	_ = b[HeaderLen-1]
	binary.BigEndian.PutUint32(b[0:], Magic)
	binary.BigEndian.PutUint32(b[4:], h.Flow)
	binary.BigEndian.PutUint64(b[8:], h.Seq)
	binary.BigEndian.PutUint64(b[16:], uint64(h.SentNs))
}

// ParseHeader decodes the header at the start of a UDP payload.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen || binary.BigEndian.Uint32(b) != Magic {
		return Header{}, errMalformed
	}
	return Header{
		Flow:   binary.BigEndian.Uint32(b[4:]),
		Seq:    binary.BigEndian.Uint64(b[8:]),
		SentNs: int64(binary.BigEndian.Uint64(b[16:])),
	}, nil
}
