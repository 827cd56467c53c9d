package message

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// Parse decodes a whole IKE message b (without the non-ESP marker).
//
// If the message carries an SK payload, c must be non-nil: the SK payload
// is verified and decrypted with it, and Payloads holds the payloads found
// before SK (if any) followed by the inner payloads, in wire order. An
// integrity failure, or SK without a Cipher, is an *Error with Notify 0
// (drop silently). A message made of an SKF fragment (RFC 7383) is
// rejected here; feed it to a Reassembler instead, whose Add also accepts
// unfragmented messages.
//
// After decoding, the per-exchange payload rules are enforced (see
// rules.go). m.Raw aliases b: callers that reuse b must copy it first.
func Parse(b []byte, c Cipher) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	raws, err := splitChain(h.NextPayload, b[HeaderLen:])
	if err != nil {
		return nil, err
	}
	m := &Message{Header: h, Raw: b}
	sawSK := false
	plain := 0
	for _, r := range raws {
		switch r.typ {
		case PayloadSK:
			start := HeaderLen + r.off
			aad := b[:start+genericHeaderLen]
			var e encrypted
			body := cryptobyte.String(r.body)
			e.unmarshal(&body)
			inner, err := open(c, PayloadSK, aad, e.body)
			if err != nil {
				return nil, err
			}
			ps, err := decodeChain(r.next, inner)
			if err != nil {
				return nil, err
			}
			plain = len(m.Payloads)
			m.Payloads = append(m.Payloads, ps...)
			sawSK = true
		case PayloadSKF:
			return nil, &Error{Reason: "message is an SKF fragment (RFC 7383); pass it to a Reassembler"}
		default:
			p, err := decodePayload(r)
			if err != nil {
				return nil, err
			}
			m.Payloads = append(m.Payloads, p)
		}
	}
	if !sawSK {
		plain = len(m.Payloads)
	}
	if err := checkRules(m, plain, sawSK); err != nil {
		return nil, err
	}
	return m, nil
}

// Marshal encodes m. With a nil Cipher the payloads are written in the
// clear (IKE_SA_INIT); with a Cipher, all Payloads go inside one SK
// payload (RFC 7296, Section 3.14). NextPayload and Length in m.Header are
// computed; a zero version is written as 2.0. m.Raw is set to the result.
func (m *Message) Marshal(c Cipher) ([]byte, error) {
	inner, first, err := encodeChain(m.Payloads)
	if err != nil {
		return nil, err
	}
	var out []byte
	if c != nil {
		out, err = seal(&m.Header, c, PayloadSK, first, nil, inner)
		if err != nil {
			return nil, err
		}
	} else {
		out, err = m.marshalPlain(first, inner)
		if err != nil {
			return nil, err
		}
	}
	m.Raw = out
	return out, nil
}

func (m *Message) marshalPlain(first PayloadType, chain []byte) ([]byte, error) {
	h := &m.Header
	total := HeaderLen + len(chain)
	if uint64(total) > 0xffffffff {
		return nil, fmt.Errorf("ike: message of %d octets is too long", total)
	}
	h.NextPayload = first
	h.Length = uint32(total)
	if h.MajorVersion == 0 && h.MinorVersion == 0 {
		h.MajorVersion = majorVersion
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, total))
	h.marshal(b)
	b.AddBytes(chain)
	return b.Bytes()
}

// Get returns the first payload of type t, or nil.
func (m *Message) Get(t PayloadType) Payload {
	for _, p := range m.Payloads {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

// Notify returns the first Notify payload of type t, or nil.
func (m *Message) Notify(t NotifyType) *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.Kind == t {
			return n
		}
	}
	return nil
}

// Notifies returns every Notify payload of type t in order (for example the
// NAT_DETECTION_SOURCE_IP notifies, of which there may be several).
func (m *Message) Notifies(t NotifyType) []*Notify {
	var out []*Notify
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.Kind == t {
			out = append(out, n)
		}
	}
	return out
}

// ErrorNotify returns the first Notify payload of an error type (below
// 16384, RFC 7296 Section 3.10.1), or nil.
func (m *Message) ErrorNotify() *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.Kind.IsError() {
			return n
		}
	}
	return nil
}

// Add appends payloads and returns m, for building messages fluently.
func (m *Message) Add(p ...Payload) *Message {
	m.Payloads = append(m.Payloads, p...)
	return m
}

// String summarises the message for logs in the strongSwan style, e.g.
// "IKE_SA_INIT request 0 [ SA KE Nonce N(NAT_DETECTION_SOURCE_IP) ]".
// It never includes key material, nonces or AUTH data.
func (m *Message) String() string {
	var sb strings.Builder
	sb.WriteString(m.Header.Exchange.String())
	if m.Header.IsResponse() {
		sb.WriteString(" response ")
	} else {
		sb.WriteString(" request ")
	}
	fmt.Fprintf(&sb, "%d [", m.Header.MessageID)
	for _, p := range m.Payloads {
		sb.WriteByte(' ')
		switch p := p.(type) {
		case *Notify:
			fmt.Fprintf(&sb, "N(%s)", p.Kind)
		case *Delete:
			fmt.Fprintf(&sb, "D(proto %d, %d SPIs)", p.Protocol, len(p.SPIs))
		default:
			sb.WriteString(p.Type().String())
		}
	}
	sb.WriteString(" ]")
	return sb.String()
}
