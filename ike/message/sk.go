package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Encrypted and Authenticated payload, SK (RFC 7296, Section 3.14):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	|         (length is block size for encryption algorithm)       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Encrypted IKE Payloads                     ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The SK payload is always the last payload of a message; its Next Payload
// field names the first payload inside it. The codec pads the inner
// payloads to the Cipher's BlockSize with zero octets (Padding "MAY contain
// any value") plus the Pad Length octet, and lets the Cipher produce IV,
// ciphertext and ICV. The additional data handed to the Cipher is the
// message from the first octet of the IKE header to the last octet of the
// SK generic header, with the final Length fields (RFC 5282, Section 5.1;
// for CBC+HMAC the Cipher MACs aad || IV || ciphertext, which is the whole
// message as Section 3.14 requires).

// encrypted is the body of an SK payload: IV || ciphertext || ICV.
type encrypted struct {
	body []byte
}

func (*encrypted) Type() PayloadType { return PayloadSK }

func (e *encrypted) marshal(b *cryptobyte.Builder) { b.AddBytes(e.body) }

func (e *encrypted) unmarshal(s *cryptobyte.String) error {
	e.body = []byte(*s) // opened in place of the datagram, never retained
	*s = nil
	return nil
}

// pad appends Padding and the Pad Length octet so that the result is a
// multiple of blockSize (RFC 7296, Section 3.14).
func pad(inner []byte, blockSize int) []byte {
	if blockSize < 1 {
		blockSize = 1
	}
	padLen := (blockSize - (len(inner)+1)%blockSize) % blockSize
	pt := make([]byte, len(inner)+padLen+1)
	copy(pt, inner)
	pt[len(pt)-1] = uint8(padLen)
	return pt
}

// unpad strips Padding and the Pad Length octet.
func unpad(pt []byte, what PayloadType) ([]byte, error) {
	if len(pt) == 0 {
		return nil, syntaxError(fmt.Sprintf("%s payload: decrypted content is empty, the Pad Length octet is missing", what))
	}
	padLen := int(pt[len(pt)-1])
	if padLen+1 > len(pt) {
		return nil, syntaxError(fmt.Sprintf("%s payload: Pad Length %d exceeds the %d decrypted octets", what, padLen, len(pt)-1))
	}
	return pt[:len(pt)-1-padLen], nil
}

// seal builds a complete encrypted message: the IKE header h (NextPayload
// and Length are set here), the generic header of an SK or SKF payload
// whose Next Payload is first, extra (the Fragment Number and Total
// Fragments of SKF, empty for SK) and the Cipher's output over inner.
func seal(h *Header, c Cipher, typ PayloadType, first PayloadType, extra, inner []byte) ([]byte, error) {
	pt := pad(inner, c.BlockSize())
	overhead := c.Overhead()
	if overhead < 0 {
		return nil, fmt.Errorf("ike: Cipher reports negative overhead %d", overhead)
	}
	payloadLen := genericHeaderLen + len(extra) + overhead + len(pt)
	if payloadLen > maxPayloadLen {
		return nil, fmt.Errorf("ike: %s payload of %d octets exceeds the 16-bit Payload Length", typ, payloadLen)
	}
	h.NextPayload = typ
	h.Length = uint32(HeaderLen + payloadLen)
	if h.MajorVersion == 0 && h.MinorVersion == 0 {
		h.MajorVersion = majorVersion
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, h.Length))
	h.marshal(b)
	b.AddUint8(uint8(first))
	b.AddUint8(0)
	b.AddUint16(uint16(payloadLen))
	b.AddBytes(extra)
	aad, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ike: encoding header: %w", err)
	}
	sealed, err := c.Seal(aad, pt)
	if err != nil {
		return nil, fmt.Errorf("ike: sealing %s payload: %w", typ, err)
	}
	if len(sealed) != overhead+len(pt) {
		return nil, fmt.Errorf("ike: Cipher returned %d octets for %d octets of plaintext, want plaintext + Overhead() = %d", len(sealed), len(pt), overhead+len(pt))
	}
	out := cryptobyte.NewBuilder(aad)
	if typ == PayloadSKF {
		out.AddBytes(sealed)
	} else {
		(&encrypted{body: sealed}).marshal(out)
	}
	return out.Bytes()
}

// open verifies and decrypts the body of an SK or SKF payload and strips
// the padding. aad is the message up to the start of the IV. An integrity
// failure yields an *Error with Notify 0: such messages are dropped
// without an answer (RFC 7296, Sections 2.21 and 3.14).
func open(c Cipher, typ PayloadType, aad, body []byte) ([]byte, error) {
	if c == nil {
		return nil, &Error{Reason: fmt.Sprintf("message carries an %s payload but no keys are available to open it", typ)}
	}
	if len(body) < c.Overhead() {
		return nil, &Error{Reason: fmt.Sprintf("%s payload: %d octets, shorter than IV and ICV (%d)", typ, len(body), c.Overhead())}
	}
	pt, err := c.Open(aad, body)
	if err != nil {
		return nil, &Error{Reason: fmt.Sprintf("%s payload failed verification, dropping", typ), Err: err}
	}
	return unpad(pt, typ)
}
