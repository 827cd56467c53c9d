package message

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/ipsec"
	"golang.org/x/crypto/cryptobyte"
)

func fixLengths(b []byte, off int) {
	n := setLength(b)
	pl := n - off
	b[off+2], b[off+3] = byte(pl>>8), byte(pl)
}

// setLength rewrites the IKE header Length to len(b).
func setLength(b []byte) int {
	n := len(b)
	b[24], b[25], b[26], b[27] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return n
}

func TestTruncatedPrefixesRejected(t *testing.T) {
	samples := map[string]func() (*Message, Cipher){
		"init":   func() (*Message, Cipher) { return sampleInitRequest(), nil },
		"auth":   func() (*Message, Cipher) { return sampleAuthRequest(), identity{bs: 1} },
		"child":  func() (*Message, Cipher) { return sampleCreateChild(), identity{bs: 4} },
		"info":   func() (*Message, Cipher) { return sampleInformational(), identity{bs: 1} },
		"gcm":    func() (*Message, Cipher) { return sampleAuthRequest(), testCiphers()["aes-gcm-16"]() },
		"cbcmac": func() (*Message, Cipher) { return sampleCreateChild(), testCiphers()["aes-cbc-hmac-sha256"]() },
	}
	for name, mk := range samples {
		m, c := mk()
		b, err := m.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(b); i++ {
			if _, err := Parse(b[:i], c); err == nil {
				t.Fatalf("%s: prefix of %d/%d octets accepted", name, i, len(b))
			}
			// Same prefix with the IKE Length patched, so the payload
			// decoders (not just the header check) see the truncation.
			if i >= HeaderLen {
				p := bytes.Clone(b[:i])
				p[24], p[25], p[26], p[27] = 0, 0, byte(i>>8), byte(i)
				if _, err := Parse(p, c); err == nil {
					t.Fatalf("%s: length-patched prefix of %d/%d octets accepted", name, i, len(b))
				}
			}
		}
	}
}

func TestErrorsAreTyped(t *testing.T) {
	b, _ := sampleInitRequest().Marshal(nil)
	for i := range b {
		for _, v := range []byte{0x00, 0xff, b[i] + 1} {
			bad := bytes.Clone(b)
			bad[i] = v
			_, err := Parse(bad, nil)
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), "ike: ") {
				t.Fatalf("octet %d = %#x: error %v (%T) is not an *Error with ike: prefix", i, v, err, err)
			}
		}
	}
}

func TestParseHeader(t *testing.T) {
	b, _ := sampleInitRequest().Marshal(nil)
	h, err := ParseHeader(b)
	if err != nil || h.SPIi != 0x1122334455667788 || h.Exchange != IKESAInit || !h.IsInitiator() || h.IsResponse() {
		t.Fatalf("ParseHeader = %+v, %v", h, err)
	}
	var e *Error
	bad := bytes.Clone(b)
	bad[17] = 0x30 // version 3.0
	if h, err := ParseHeader(bad); !errors.As(err, &e) || e.Notify != NotifyInvalidMajorVersion || h.SPIi != 0x1122334455667788 {
		t.Fatalf("major 3: %v", err)
	}
	bad[17] = 0x21 // minor versions are accepted (RFC 7296, Section 2.5)
	if _, err := ParseHeader(bad); err != nil {
		t.Fatalf("minor 1: %v", err)
	}
	bad[17] = 0x10
	if _, err := ParseHeader(bad); !errors.As(err, &e) || e.Notify != NotifyInvalidSyntax {
		t.Fatalf("IKEv1: %v", err)
	}
	if _, err := ParseHeader(append(bytes.Clone(b), 0)); !errors.As(err, &e) || e.Notify != NotifyInvalidSyntax {
		t.Fatalf("length mismatch: %v", err)
	}
}

func TestUnknownPayloads(t *testing.T) {
	m := sampleInitRequest()
	m.Payloads = append(m.Payloads, &Unknown{PayloadType: 200, Data: []byte{1, 2, 3}})
	b, err := m.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b, nil)
	if err != nil {
		t.Fatalf("non-critical unknown payload rejected: %v", err)
	}
	if u, ok := got.Get(200).(*Unknown); !ok || !bytes.Equal(u.Data, []byte{1, 2, 3}) {
		t.Fatalf("unknown payload not kept: %v", got.Payloads)
	}

	m.Payloads[len(m.Payloads)-1] = &Unknown{PayloadType: 200, Critical: true}
	b, _ = m.Marshal(nil)
	_, err = Parse(b, nil)
	var e *Error
	if !errors.As(err, &e) || e.Notify != NotifyUnsupportedCriticalPayload || !bytes.Equal(e.Data, []byte{200}) {
		t.Fatalf("critical unknown payload: %v", err)
	}

	// Critical bit on a known payload is ignored (RFC 7296, Section 2.5).
	b, _ = sampleInitRequest().Marshal(nil)
	b[HeaderLen+1] |= 0x80
	if _, err := Parse(b, nil); err != nil {
		t.Fatalf("critical SA payload: %v", err)
	}

	// Inside SK too.
	m = sampleInformational()
	m.Payloads = append(m.Payloads, &Unknown{PayloadType: 99, Critical: true})
	b, _ = m.Marshal(identity{bs: 1})
	if _, err := Parse(b, identity{bs: 1}); !errors.As(err, &e) || e.Notify != NotifyUnsupportedCriticalPayload {
		t.Fatalf("critical unknown inside SK: %v", err)
	}
}

func TestSKMustBeLast(t *testing.T) {
	b, _ := sampleInformational().Marshal(identity{bs: 1})
	// Append a VendorID after SK: the SK's Next Payload names its inner
	// chain, so the extra octets are trailing garbage.
	b = append(b, 0, 0, 0, 4)
	b[27] += 4
	if _, err := Parse(b, identity{bs: 1}); err == nil || !strings.Contains(err.Error(), "last payload") {
		t.Fatalf("payload after SK: %v", err)
	}
}

func TestHelpers(t *testing.T) {
	m := sampleInitRequest()
	if m.Notify(NotifyNATDetectionDestIP) == nil || m.Notify(NotifyCookie) != nil {
		t.Fatal("Notify lookup")
	}
	if len(m.Notifies(NotifyNATDetectionSourceIP)) != 1 {
		t.Fatal("Notifies")
	}
	if m.ErrorNotify() != nil {
		t.Fatal("ErrorNotify on a clean message")
	}
	if _, ok := m.Get(PayloadKE).(*KE); !ok || m.Get(PayloadAUTH) != nil {
		t.Fatal("Get")
	}
	id := &ID{IDType: IDIPv4Addr, Data: []byte{192, 0, 2, 1}}
	if !bytes.Equal(id.Body(), []byte{1, 0, 0, 0, 192, 0, 2, 1}) {
		t.Fatalf("Body = %x", id.Body())
	}
	if a, ok := id.Addr(); !ok || a.String() != "192.0.2.1" || id.String() != "192.0.2.1" {
		t.Fatal("Addr")
	}
}

func TestStrings(t *testing.T) {
	cases := []struct{ got, want string }{
		{IKESAInit.String(), "IKE_SA_INIT"},
		{Informational.String(), "INFORMATIONAL"},
		{ExchangeType(99).String(), "ExchangeType(99)"},
		{PayloadSKF.String(), "SKF"},
		{PayloadType(77).String(), "PayloadType(77)"},
		{NotifyNATDetectionDestIP.String(), "NAT_DETECTION_DESTINATION_IP"},
		{NotifyChildlessIKEv2Supported.String(), "CHILDLESS_IKEV2_SUPPORTED"},
		{NotifyType(12345).String(), "NotifyType(12345)"},
		{IDKeyID.String(), "ID_KEY_ID"},
		{IDType(42).String(), "IDType(42)"},
		{AuthPSK.String(), "SHARED_KEY_MESSAGE_INTEGRITY_CODE"},
		{AuthMethod(42).String(), "AuthMethod(42)"},
		{AuthDigitalSignature.String(), "DIGITAL_SIGNATURE"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	// Every notify constant in types.go has a name.
	for n := NotifyType(0); n < 20000; n++ {
		if _, ok := notifyNames[n]; ok && strings.HasPrefix(n.String(), "NotifyType(") {
			t.Errorf("%d unnamed", n)
		}
	}
}

// knownInitRequestHex is an IKE_SA_INIT request written octet by octet
// from the RFC 7296 Section 3 layouts.
const knownInitRequestHex = "" +
	// IKE header (3.1): SPIi, SPIr, NP=SA(33), ver 2.0, IKE_SA_INIT(34),
	// flags I (0x08), MID 0, length 164.
	"0102030405060708" + "0000000000000000" + "21" + "20" + "22" + "08" + "00000000" + "000000a4" +
	// SA (3.3): NP=KE(34), C=0, length 48.
	"22" + "00" + "0030" +
	//   Proposal: last, length 44, #1, IKE, SPI size 0, 4 transforms.
	"00" + "00" + "002c" + "01" + "01" + "00" + "04" +
	//   ENCR AES-CBC (12) with Key Length 256 (TV attribute 14).
	"03" + "00" + "000c" + "01" + "00" + "000c" + "800e" + "0100" +
	//   PRF HMAC-SHA2-256 (5).
	"03" + "00" + "0008" + "02" + "00" + "0005" +
	//   INTEG HMAC-SHA2-256-128 (12).
	"03" + "00" + "0008" + "03" + "00" + "000c" +
	//   DH Curve25519 (31), last transform.
	"00" + "00" + "0008" + "04" + "00" + "001f" +
	// KE (3.4): NP=Nonce(40), length 40, group 31, 32 octets of 0x11.
	"28" + "00" + "0028" + "001f" + "0000" + "1111111111111111111111111111111111111111111111111111111111111111" +
	// Nonce (3.9): NP=Notify(41), length 20, 16 octets of 0x22.
	"29" + "00" + "0014" + "22222222222222222222222222222222" +
	// Notify (3.10): NP=none, length 28, proto 0, SPI size 0,
	// NAT_DETECTION_SOURCE_IP (16388 = 0x4004), 20 octets of 0x33.
	"00" + "00" + "001c" + "00" + "00" + "4004" + "3333333333333333333333333333333333333333"

// TestDecodeKnownInitRequest decodes an IKE_SA_INIT request written octet
// by octet from the RFC 7296 Section 3 layouts and checks every field.
func TestDecodeKnownInitRequest(t *testing.T) {
	b, err := hex.DecodeString(knownInitRequestHex)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 164 {
		t.Fatalf("test vector is %d octets", len(b))
	}
	m, err := Parse(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header
	if h.SPIi != 0x0102030405060708 || h.SPIr != 0 || h.NextPayload != PayloadSA || h.MajorVersion != 2 || h.MinorVersion != 0 ||
		h.Exchange != IKESAInit || h.Flags != FlagInitiator || h.MessageID != 0 || h.Length != 164 {
		t.Fatalf("header %+v", h)
	}
	if len(m.Payloads) != 4 {
		t.Fatalf("%d payloads", len(m.Payloads))
	}
	sa := m.Payloads[0].(*SA)
	want := []Proposal{{Number: 1, Protocol: ipsec.ProtoIKE, Transforms: []Transform{
		{Type: ipsec.TransformENCR, ID: uint16(ipsec.EncrAESCBC), KeyLength: 256},
		{Type: ipsec.TransformPRF, ID: uint16(ipsec.PRFHMACSHA2_256)},
		{Type: ipsec.TransformINTEG, ID: uint16(ipsec.IntegHMACSHA2_256_128)},
		{Type: ipsec.TransformDH, ID: uint16(ipsec.DHCurve25519)},
	}}}
	if !reflect.DeepEqual(sa.Proposals, want) {
		t.Fatalf("SA %+v", sa.Proposals)
	}
	ke := m.Payloads[1].(*KE)
	if ke.Group != ipsec.DHCurve25519 || !bytes.Equal(ke.Data, bytes.Repeat([]byte{0x11}, 32)) {
		t.Fatalf("KE %+v", ke)
	}
	if n := m.Payloads[2].(*Nonce); !bytes.Equal(n.Data, bytes.Repeat([]byte{0x22}, 16)) {
		t.Fatalf("Nonce %x", n.Data)
	}
	nt := m.Payloads[3].(*Notify)
	if nt.Kind != NotifyNATDetectionSourceIP || nt.Protocol != 0 || nt.SPI != nil || !bytes.Equal(nt.Data, bytes.Repeat([]byte{0x33}, 20)) {
		t.Fatalf("Notify %+v", nt)
	}
	// Re-encoding gives the same octets.
	out, err := m.Marshal(nil)
	if err != nil || !bytes.Equal(out, b) {
		t.Fatalf("re-encode differs: %v\n%x\n%x", err, out, b)
	}
}

func TestTransformUnknownAttributeDropped(t *testing.T) {
	// Proposal with two ENCR transforms; the first carries an unknown TLV
	// attribute (type 99, 2 octets) and must be dropped, the second kept.
	const sa = "" +
		"00" + "00" + "002a" + "01" + "03" + "04" + "02" + "c0ffee01" +
		"03" + "00" + "0012" + "01" + "00" + "000c" + "800e0080" + "0063" + "0002" + "abcd" +
		"00" + "00" + "000c" + "01" + "00" + "0014" + "800e0100"
	b, _ := hex.DecodeString(sa)
	var p SA
	s := cryptobyte.String(b)
	if err := p.unmarshal(&s); err != nil {
		t.Fatal(err)
	}
	want := []Transform{{Type: ipsec.TransformENCR, ID: uint16(ipsec.EncrAESGCM16), KeyLength: 256}}
	if len(p.Proposals) != 1 || !reflect.DeepEqual(p.Proposals[0].Transforms, want) || !bytes.Equal(p.Proposals[0].SPI, []byte{0xc0, 0xff, 0xee, 0x01}) {
		t.Fatalf("got %+v", p.Proposals)
	}
}
