package message

import (
	"bytes"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Encrypted Fragment payload, SKF (RFC 7383, Section 2.5):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Fragment Number        |        Total Fragments        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Encrypted content                        ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The inner payload chain of the original message is cut into pieces; each
// piece is padded and sealed on its own, with additional data running from
// the IKE header to the end of Total Fragments (everything before the IV).
// Next Payload is the first inner payload type in fragment 1 and zero in
// the others. Fragment numbers start at 1. cgw sends the SKF payload as the
// only payload of each fragment message.
//
// Raw for fragmented messages: MarshalFragments sets m.Raw (and m.Header)
// to the first fragment, and a Message returned by Reassembler.Add has Raw
// and Header of fragment 1 (NextPayload SKF, Length of that datagram).
// Nothing signs those octets: AUTH covers only IKE_SA_INIT messages, which
// are never fragmented: only messages with an SK payload are (RFC 7383,
// Section 2.5). Fragment 1 is also what a responder can use to recognise a
// retransmitted request (RFC 7383, Section 2.6).

const (
	skfHeaderLen = genericHeaderLen + 4 // plus Fragment Number, Total Fragments

	// MaxFragments bounds how many fragments a Reassembler accepts for one
	// message; a message needing more is dropped.
	MaxFragments = 32
	// maxReassembled bounds the inner payload octets of one reassembled
	// message (an IKE_AUTH with certificate chains stays well below).
	maxReassembled = 64 << 10
	// FragmentTimeout is how long a Reassembler keeps an incomplete
	// message: a fragment arriving later for the same message starts it
	// afresh. The sender retransmits every fragment, so nothing older is
	// worth completing.
	FragmentTimeout = 30 * time.Second
)

// FragmentDrop names why Reassembler.Add refused a fragment. It is the Err
// of the *Error that Add returns, so a caller can count drops by reason
// with errors.As; its text is the metric label.
type FragmentDrop string

func (d FragmentDrop) Error() string { return string(d) }

// Reasons a fragment is dropped.
const (
	// DropFragMalformed: the SKF payload does not parse, or its Fragment
	// Number is 0 or larger than Total Fragments.
	DropFragMalformed FragmentDrop = "fragment_malformed"
	// DropFragUnauthentic: the fragment's integrity check failed (or
	// there are no keys yet); nothing of it is kept.
	DropFragUnauthentic FragmentDrop = "fragment_unauthentic"
	// DropFragTooMany: the message announces more than MaxFragments.
	DropFragTooMany FragmentDrop = "fragment_too_many"
	// DropFragTooLarge: the reassembled message would exceed 64 KiB; the
	// whole message is discarded.
	DropFragTooLarge FragmentDrop = "fragment_too_large"
	// DropFragDuplicate: a fragment already held.
	DropFragDuplicate FragmentDrop = "fragment_duplicate"
	// DropFragStale: a fragment of an older message than the one being
	// reassembled, or with a smaller Total Fragments.
	DropFragStale FragmentDrop = "fragment_stale"
)

// fragment is the part of an SKF payload after the generic header.
type fragment struct {
	Number, Total uint16
	body          []byte // IV || ciphertext || ICV
}

func (*fragment) Type() PayloadType { return PayloadSKF }

func (f *fragment) marshal(b *cryptobyte.Builder) {
	b.AddUint16(f.Number)
	b.AddUint16(f.Total)
	b.AddBytes(f.body)
}

func (f *fragment) unmarshal(s *cryptobyte.String) error {
	if !s.ReadUint16(&f.Number) || !s.ReadUint16(&f.Total) {
		return &Error{Reason: "SKF payload: shorter than Fragment Number and Total Fragments"}
	}
	if f.Number == 0 || f.Total == 0 || f.Number > f.Total {
		return &Error{Reason: fmt.Sprintf("SKF payload: Fragment Number %d of Total Fragments %d is out of range", f.Number, f.Total)}
	}
	f.body = []byte(*s) // opened right away, never retained
	*s = nil
	return nil
}

// MarshalFragments encodes m protected by c and, if the result would be
// longer than maxLen octets (the IKE message size limit, non-ESP marker
// excluded), splits it into SKF fragments of at most maxLen octets each
// (RFC 7383, Section 2.5). One element is returned when no fragmentation
// is needed; it is then a normal SK message. m.Header and m.Raw are set to
// those of the first datagram.
func (m *Message) MarshalFragments(c Cipher, maxLen int) ([][]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("ike: MarshalFragments needs a Cipher: only encrypted messages can be fragmented")
	}
	inner, first, err := encodeChain(m.Payloads)
	if err != nil {
		return nil, err
	}
	bs := max(c.BlockSize(), 1)
	whole := HeaderLen + genericHeaderLen + c.Overhead() + len(pad(inner, bs))
	if whole <= maxLen {
		out, err := seal(&m.Header, c, PayloadSK, first, nil, inner)
		if err != nil {
			return nil, err
		}
		m.Raw = out
		return [][]byte{out}, nil
	}
	avail := maxLen - HeaderLen - skfHeaderLen - c.Overhead()
	chunk := avail - avail%bs - 1 // room for the Pad Length octet
	if chunk < 1 {
		return nil, fmt.Errorf("ike: maxLen %d leaves no room for fragment data (need more than %d octets of headers, IV and ICV)", maxLen, maxLen-avail)
	}
	n := (len(inner) + chunk - 1) / chunk
	if n > 0xffff {
		return nil, fmt.Errorf("ike: message needs %d fragments of %d octets, more than Total Fragments can express", n, chunk)
	}
	out := make([][]byte, 0, n)
	var firstHeader Header
	for i := 0; i < n; i++ {
		piece := inner[i*chunk : min((i+1)*chunk, len(inner))]
		np := PayloadNone
		if i == 0 {
			np = first
		}
		fb := cryptobyte.NewBuilder(make([]byte, 0, 4))
		(&fragment{Number: uint16(i + 1), Total: uint16(n)}).marshal(fb)
		extra := fb.BytesOrPanic() // two uint16s cannot fail
		h := m.Header
		frag, err := seal(&h, c, PayloadSKF, np, extra, piece)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			firstHeader = h
		}
		out = append(out, frag)
	}
	m.Header = firstHeader
	m.Raw = out[0]
	return out, nil
}

// Reassembler collects the SKF fragments of the messages one peer sends on
// one IKE SA (RFC 7383, Section 2.6). The zero value is ready. It is not
// safe for concurrent use: the IKE SA's owner goroutine holds it.
//
// Each fragment is verified and decrypted on arrival; only authentic
// fragments are kept. At most one request and one response are assembled
// at a time, each with at most MaxFragments fragments and 64 KiB of
// content, for at most FragmentTimeout (with AddAt). Duplicate fragments
// are dropped. A fragment with a larger Total Fragments than the ones held
// restarts reassembly (the sender re-fragmented for a smaller MTU); one
// with a smaller total, or one for an older Message ID, is dropped.
type Reassembler struct {
	pending [2]*fragmentSet // [0] requests, [1] responses
}

type fragmentSet struct {
	header  Header // of fragment 1 once seen; MessageID always valid
	total   uint16
	first   PayloadType
	raw1    []byte
	parts   [][]byte
	have    int
	size    int
	started time.Time
}

// Add processes one received datagram (without the non-ESP marker).
// Unfragmented messages are passed straight to Parse, so callers can route
// every message of an IKE SA through Add. For a fragment, Add returns
// complete=false until the last missing fragment arrives, then the whole
// decoded Message (checked against the exchange rules). Errors are *Error;
// Notify 0 means drop silently. A refused fragment's *Error wraps a
// FragmentDrop. Incomplete messages never expire; use AddAt for that.
func (r *Reassembler) Add(b []byte, c Cipher) (m *Message, complete bool, err error) {
	return r.AddAt(b, c, time.Time{})
}

// dropErr is the *Error for a refused fragment.
func dropErr(d FragmentDrop, format string, args ...any) *Error {
	return &Error{Reason: fmt.Sprintf(format, args...), Err: d}
}

// AddAt is Add at time now: a message whose first fragment arrived more
// than FragmentTimeout before now is discarded before b is considered.
func (r *Reassembler) AddAt(b []byte, c Cipher, now time.Time) (m *Message, complete bool, err error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, false, err
	}
	if h.NextPayload != PayloadSKF {
		m, err := Parse(b, c)
		if err != nil {
			return nil, false, err
		}
		return m, true, nil
	}
	raws, err := splitChain(PayloadSKF, b[HeaderLen:])
	if err != nil {
		return nil, false, dropErr(DropFragMalformed, "SKF: %v", err)
	}
	raw := raws[0]
	var f fragment
	s := cryptobyte.String(raw.body)
	if err := f.unmarshal(&s); err != nil {
		return nil, false, dropErr(DropFragMalformed, "%v", err.(*Error).Reason)
	}
	if f.Total > MaxFragments {
		return nil, false, dropErr(DropFragTooMany, "SKF: message announces %d fragments, at most %d are accepted", f.Total, MaxFragments)
	}
	piece, err := open(c, PayloadSKF, b[:HeaderLen+skfHeaderLen], f.body)
	if err != nil {
		return nil, false, dropErr(DropFragUnauthentic, "SKF: fragment %d of %d of message %d did not verify, dropped", f.Number, f.Total, h.MessageID)
	}

	idx := 0
	if h.IsResponse() {
		idx = 1
	}
	set := r.pending[idx]
	if set != nil && !now.IsZero() && now.Sub(set.started) > FragmentTimeout {
		set = nil // timed out: whatever it held is discarded
	}
	switch {
	case set == nil || int32(h.MessageID-set.header.MessageID) > 0:
		set = newFragmentSet(h, f.Total, now)
	case h.MessageID != set.header.MessageID:
		return nil, false, dropErr(DropFragStale, "SKF: fragment of message %d while message %d is being reassembled, dropped", h.MessageID, set.header.MessageID)
	case f.Total > set.total:
		set = newFragmentSet(h, f.Total, now)
	case f.Total < set.total:
		return nil, false, dropErr(DropFragStale, "SKF: fragment says %d fragments but %d are expected, dropped", f.Total, set.total)
	}
	r.pending[idx] = set
	if set.parts[f.Number-1] != nil {
		return nil, false, dropErr(DropFragDuplicate, "SKF: fragment %d of message %d is a duplicate, dropped", f.Number, h.MessageID)
	}
	if set.size+len(piece) > maxReassembled {
		r.pending[idx] = nil
		return nil, false, dropErr(DropFragTooLarge, "SKF: reassembled message %d exceeds %d octets, dropped", h.MessageID, maxReassembled)
	}
	if piece == nil {
		piece = []byte{}
	}
	set.parts[f.Number-1] = piece
	set.have++
	set.size += len(piece)
	if f.Number == 1 {
		set.header = h
		set.first = raw.next
		set.raw1 = bytes.Clone(b)
	}
	if set.have < int(set.total) {
		return nil, false, nil
	}

	r.pending[idx] = nil
	ps, err := decodeChain(set.first, bytes.Join(set.parts, nil))
	if err != nil {
		return nil, false, err
	}
	m = &Message{Header: set.header, Payloads: ps, Raw: set.raw1}
	if err := checkRules(m, 0, true); err != nil {
		return nil, false, err
	}
	return m, true, nil
}

func newFragmentSet(h Header, total uint16, now time.Time) *fragmentSet {
	return &fragmentSet{header: h, total: total, parts: make([][]byte, total), started: now}
}

// Reset discards every incomplete message.
func (r *Reassembler) Reset() { r.pending = [2]*fragmentSet{} }

// Pending reports how many messages are being reassembled (0 to 2) and the
// octets they hold, for tests and status.
func (r *Reassembler) Pending() (messages, octets int) {
	for _, s := range r.pending {
		if s != nil {
			messages++
			octets += s.size
		}
	}
	return messages, octets
}
