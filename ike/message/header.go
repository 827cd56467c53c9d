package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// IKE header (RFC 7296, Section 3.1):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// IKEv2 version this package speaks (RFC 7296, Section 3.1).
const (
	majorVersion = 2
	minorVersion = 0
)

// marshal writes the 28-octet header as is (callers set NextPayload and
// Length first).
func (h *Header) marshal(b *cryptobyte.Builder) {
	b.AddUint64(h.SPIi)
	b.AddUint64(h.SPIr)
	b.AddUint8(uint8(h.NextPayload))
	b.AddUint8(h.MajorVersion<<4 | h.MinorVersion&0x0f)
	b.AddUint8(uint8(h.Exchange))
	b.AddUint8(h.Flags)
	b.AddUint32(h.MessageID)
	b.AddUint32(h.Length)
}

// unmarshal reads the 28-octet header without validating it.
func (h *Header) unmarshal(s *cryptobyte.String) error {
	var np, ver, ex uint8
	if !s.ReadUint64(&h.SPIi) || !s.ReadUint64(&h.SPIr) ||
		!s.ReadUint8(&np) || !s.ReadUint8(&ver) || !s.ReadUint8(&ex) ||
		!s.ReadUint8(&h.Flags) || !s.ReadUint32(&h.MessageID) || !s.ReadUint32(&h.Length) {
		return syntaxError(fmt.Sprintf("IKE header truncated: need %d octets", HeaderLen))
	}
	h.NextPayload = PayloadType(np)
	h.MajorVersion = ver >> 4
	h.MinorVersion = ver & 0x0f
	h.Exchange = ExchangeType(ex)
	return nil
}

// ParseHeader decodes and validates the IKE header of the message b (without
// the non-ESP marker). It checks that the Length field equals len(b) and
// that the major version is 2 (RFC 7296, Section 2.5: a higher major
// version yields INVALID_MAJOR_VERSION). On a version error the decoded
// header is returned along with the error so the caller can answer with the
// right SPIs. Unknown flag bits are ignored (Section 3.1).
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, syntaxError(fmt.Sprintf("message of %d octets is shorter than the %d-octet IKE header", len(b), HeaderLen))
	}
	s := cryptobyte.String(b)
	if err := h.unmarshal(&s); err != nil {
		return h, err
	}
	if h.MajorVersion > majorVersion {
		return h, &Error{Notify: NotifyInvalidMajorVersion,
			Reason: fmt.Sprintf("IKE header: major version %d not supported, this implementation speaks %d", h.MajorVersion, majorVersion)}
	}
	if h.MajorVersion < majorVersion {
		return h, syntaxError(fmt.Sprintf("IKE header: major version %d (IKEv1?) not supported, only IKEv2", h.MajorVersion))
	}
	if int64(h.Length) != int64(len(b)) {
		return h, syntaxError(fmt.Sprintf("IKE header: Length field says %d octets but the datagram has %d", h.Length, len(b)))
	}
	return h, nil
}

func (h *Header) String() string {
	dir := "request"
	if h.IsResponse() {
		dir = "response"
	}
	return fmt.Sprintf("%s %s %d [%016x_i %016x_r]", h.Exchange, dir, h.MessageID, h.SPIi, h.SPIr)
}
