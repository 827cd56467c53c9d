package message

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func TestCertReqHashes(t *testing.T) {
	a := bytes.Repeat([]byte{1}, 20)
	b := bytes.Repeat([]byte{2}, 20)
	r := &CertReq{Encoding: CertX509Sig, Authority: append(append([]byte(nil), a...), b...)}
	h := r.Hashes()
	if len(h) != 2 || !bytes.Equal(h[0], a) || !bytes.Equal(h[1], b) {
		t.Fatalf("Hashes: %x", h)
	}
	// 21 octets of X.509 hashes is a syntax error; other encodings are opaque.
	for _, body := range [][]byte{append([]byte{4}, make([]byte, 21)...), {}} {
		if _, err := decodePayload(rawPayload{typ: PayloadCERTREQ, body: body}); err == nil {
			t.Errorf("CERTREQ %x accepted", body)
		}
	}
	if _, err := decodePayload(rawPayload{typ: PayloadCERTREQ, body: []byte{12, 1, 2, 3}}); err != nil {
		t.Errorf("CERTREQ of encoding 12: %v", err)
	}
	for _, body := range [][]byte{{}, {4}} {
		if _, err := decodePayload(rawPayload{typ: PayloadCERT, body: body}); err == nil {
			t.Errorf("CERT %x accepted", body)
		}
	}
}

// FuzzCertPayloads decodes CERT and CERTREQ bodies: no panic, and what
// decodes re-encodes to the same octets.
func FuzzCertPayloads(f *testing.F) {
	f.Add(true, []byte{4, 0x30, 0x82, 0x01, 0x00})
	f.Add(false, append([]byte{4}, make([]byte, 40)...))
	f.Add(false, []byte{4})
	f.Add(true, []byte{})
	f.Fuzz(func(t *testing.T, cert bool, body []byte) {
		typ := PayloadCERTREQ
		if cert {
			typ = PayloadCERT
		}
		p, err := decodePayload(rawPayload{typ: typ, body: body})
		if err != nil {
			return
		}
		var b cryptobyte.Builder
		p.(codec).marshal(&b)
		if out := b.BytesOrPanic(); !bytes.Equal(out, body) {
			t.Fatalf("%s: %x re-encodes as %x", typ, body, out)
		}
		if r, ok := p.(*CertReq); ok {
			for _, h := range r.Hashes() {
				if len(h) != 20 {
					t.Fatalf("hash of %d octets", len(h))
				}
			}
		}
	})
}
