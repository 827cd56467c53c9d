package message

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Generic payload header (RFC 7296, Section 3.2):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Payload Length includes the four-octet generic header.

const (
	genericHeaderLen = 4
	criticalBit      = 0x80
	maxPayloadLen    = 0xffff
)

// codec is implemented by every payload type of this package: marshal
// writes the payload body (after the generic header), unmarshal reads it
// from s, which holds exactly the body.
type codec interface {
	Payload
	marshal(b *cryptobyte.Builder)
	unmarshal(s *cryptobyte.String) error
}

// newPayload returns an empty payload for the type t, or nil when t is not
// a payload this package decodes.
func newPayload(t PayloadType) codec {
	switch t {
	case PayloadSA:
		return new(SA)
	case PayloadKE:
		return new(KE)
	case PayloadIDi:
		return &ID{}
	case PayloadIDr:
		return &ID{Responder: true}
	case PayloadAUTH:
		return new(Auth)
	case PayloadNonce:
		return new(Nonce)
	case PayloadNotify:
		return new(Notify)
	case PayloadDelete:
		return new(Delete)
	case PayloadVendor:
		return new(VendorID)
	case PayloadTSi:
		return &TS{}
	case PayloadTSr:
		return &TS{Responder: true}
	case PayloadCP:
		return new(CP)
	case PayloadCERT:
		return new(Cert)
	case PayloadCERTREQ:
		return new(CertReq)
	}
	return nil
}

// recognized reports whether t is a payload type defined by RFC 7296 or
// RFC 7383. The critical bit of recognized types is ignored (Section 2.5).
// EAP is recognized but kept opaque as *Unknown: cgw authenticates with
// PSKs or certificates only.
func recognized(t PayloadType) bool {
	return (t >= PayloadSA && t <= PayloadEAP) || t == PayloadSKF
}

// rawPayload is one payload of a chain with its generic header decoded.
type rawPayload struct {
	typ      PayloadType
	next     PayloadType
	critical bool
	body     []byte
	off      int // offset of the generic header within the chain
}

// splitChain walks a payload chain that starts with type first. It stops
// after an SK or SKF payload, whose Next Payload names the first inner
// payload, and requires that payload to be the last (RFC 7296, Section
// 3.14; RFC 7383, Section 2.5).
func splitChain(first PayloadType, data []byte) ([]rawPayload, error) {
	var out []rawPayload
	s := cryptobyte.String(data)
	next := first
	for next != PayloadNone {
		off := len(data) - len(s)
		var np, flags uint8
		var length uint16
		if !s.ReadUint8(&np) || !s.ReadUint8(&flags) || !s.ReadUint16(&length) {
			return nil, syntaxError(fmt.Sprintf("%s payload at offset %d: generic header truncated", next, off))
		}
		if length < genericHeaderLen {
			return nil, syntaxError(fmt.Sprintf("%s payload at offset %d: Payload Length %d is shorter than the generic header", next, off, length))
		}
		var body []byte
		if !s.ReadBytes(&body, int(length)-genericHeaderLen) {
			return nil, syntaxError(fmt.Sprintf("%s payload at offset %d: Payload Length %d exceeds the %d octets left", next, off, length, len(data)-off))
		}
		out = append(out, rawPayload{typ: next, next: PayloadType(np), critical: flags&criticalBit != 0, body: body, off: off})
		if next == PayloadSK || next == PayloadSKF {
			if !s.Empty() {
				return nil, syntaxError(fmt.Sprintf("%s payload is followed by %d octets; it must be the last payload", next, len(s)))
			}
			return out, nil
		}
		next = PayloadType(np)
	}
	if !s.Empty() {
		return nil, syntaxError(fmt.Sprintf("%d octets after the last payload of the chain", len(s)))
	}
	return out, nil
}

// decodePayload turns one raw payload into its Go type. Unknown payloads
// are kept as *Unknown unless critical, which fails with
// UNSUPPORTED_CRITICAL_PAYLOAD carrying the payload type (RFC 7296, 2.5).
func decodePayload(r rawPayload) (Payload, error) {
	p := newPayload(r.typ)
	if p == nil {
		if !recognized(r.typ) && r.critical {
			return nil, &Error{Notify: NotifyUnsupportedCriticalPayload, Data: []byte{uint8(r.typ)},
				Reason: fmt.Sprintf("payload type %d is marked critical but not supported", uint8(r.typ))}
		}
		body := cryptobyte.String(r.body)
		return &Unknown{PayloadType: r.typ, Critical: r.critical, Data: readRest(&body)}, nil
	}
	s := cryptobyte.String(r.body)
	if err := p.unmarshal(&s); err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, syntaxError(fmt.Sprintf("%s payload: %d unexpected trailing octets", r.typ, len(s)))
	}
	return p, nil
}

// decodeChain decodes a chain of plain (non-SK) payloads, as found inside
// an SK or SKF payload.
func decodeChain(first PayloadType, data []byte) ([]Payload, error) {
	raws, err := splitChain(first, data)
	if err != nil {
		return nil, err
	}
	out := make([]Payload, 0, len(raws))
	for _, r := range raws {
		if r.typ == PayloadSK || r.typ == PayloadSKF {
			return nil, syntaxError(fmt.Sprintf("%s payload nested inside an encrypted payload", r.typ))
		}
		p, err := decodePayload(r)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// encodeChain writes payloads as a chain (generic header + body each) and
// returns the bytes and the type of the first payload (PayloadNone when
// empty). The last payload's Next Payload is zero.
func encodeChain(payloads []Payload) ([]byte, PayloadType, error) {
	b := cryptobyte.NewBuilder(nil)
	for i, p := range payloads {
		c, ok := p.(codec)
		if !ok || p == nil {
			return nil, 0, fmt.Errorf("ike: cannot encode payload %d of Go type %T: not a message payload type", i, p)
		}
		switch p.Type() {
		case PayloadSK, PayloadSKF, PayloadNone:
			return nil, 0, fmt.Errorf("ike: payload %d has type %s, which cannot be encoded as a plain payload", i, p.Type())
		}
		body, err := marshalBody(c)
		if err != nil {
			return nil, 0, fmt.Errorf("ike: encoding %s payload: %w", p.Type(), err)
		}
		if len(body)+genericHeaderLen > maxPayloadLen {
			return nil, 0, fmt.Errorf("ike: %s payload is %d octets, more than fits the 16-bit Payload Length", p.Type(), len(body)+genericHeaderLen)
		}
		next := PayloadNone
		if i+1 < len(payloads) && payloads[i+1] != nil {
			next = payloads[i+1].Type()
		}
		var flags uint8
		if u, ok := p.(*Unknown); ok && u.Critical {
			flags = criticalBit
		}
		b.AddUint8(uint8(next))
		b.AddUint8(flags)
		b.AddUint16(uint16(len(body) + genericHeaderLen))
		b.AddBytes(body)
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, 0, err
	}
	first := PayloadNone
	if len(payloads) > 0 {
		first = payloads[0].Type()
	}
	return out, first, nil
}

func marshalBody(c codec) ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	c.marshal(b)
	return b.Bytes()
}

// sub builds f into its own buffer so that the caller can write a length
// field that includes a substructure header (IKE lengths count the header,
// cryptobyte's length prefixes do not). Errors propagate to b.
func sub(b *cryptobyte.Builder, f func(*cryptobyte.Builder)) []byte {
	c := cryptobyte.NewBuilder(nil)
	f(c)
	out, err := c.Bytes()
	if err != nil {
		b.SetError(err)
		return nil
	}
	return out
}

// readRest returns a copy of the rest of s (nil when empty) and empties it.
func readRest(s *cryptobyte.String) []byte {
	if len(*s) == 0 {
		return nil
	}
	out := bytes.Clone([]byte(*s))
	*s = nil
	return out
}

// Unknown payload body: opaque octets.
func (u *Unknown) marshal(b *cryptobyte.Builder) { b.AddBytes(u.Data) }
func (u *Unknown) unmarshal(s *cryptobyte.String) error {
	u.Data = readRest(s)
	return nil
}
