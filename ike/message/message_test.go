package message

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/quick"

	"github.com/cgwproject/cgw/ipsec"
	"golang.org/x/crypto/cryptobyte"
)

// roundTrip encodes one payload body and decodes it into a fresh value.
func roundTripPayload(t *testing.T, p Payload) Payload {
	t.Helper()
	c := p.(codec)
	body, err := marshalBody(c)
	if err != nil {
		t.Fatalf("marshal %T: %v", p, err)
	}
	got := newPayload(p.Type())
	if got == nil {
		got = &Unknown{PayloadType: p.Type(), Critical: p.(*Unknown).Critical}
	}
	s := cryptobyte.String(body)
	if err := got.unmarshal(&s); err != nil {
		t.Fatalf("unmarshal %T: %v\n%x", p, err, body)
	}
	if !s.Empty() {
		t.Fatalf("unmarshal %T left %d octets", p, len(s))
	}
	return got
}

func TestPayloadRoundTripQuick(t *testing.T) {
	f := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		p := randPayload(r)
		got := roundTripPayload(t, p)
		if !reflect.DeepEqual(p, got) {
			t.Logf("seed %d:\n in  %#v\n out %#v", seed, p, got)
			return false
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

func TestChainRoundTripQuick(t *testing.T) {
	f := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		var ps []Payload
		for i := 0; i < r.Intn(8); i++ {
			ps = append(ps, randPayload(r))
		}
		b, first, err := encodeChain(ps)
		if err != nil {
			t.Logf("encode: %v", err)
			return false
		}
		got, err := decodeChain(first, b)
		if err != nil {
			t.Logf("decode: %v", err)
			return false
		}
		if len(ps) == 0 && len(got) == 0 {
			return true
		}
		if !reflect.DeepEqual(ps, got) {
			for i := range ps {
				t.Logf("seed %d [%d]:\n in  %+v\n out %+v", seed, i, ps[i], got[i])
			}
			return false
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 500}); err != nil {
		t.Fatal(err)
	}
}

// Sample messages, valid under the exchange rules.

func sampleSA(spi []byte, proto ipsec.Protocol) *SA {
	return &SA{Proposals: []Proposal{
		{Number: 1, Protocol: proto, SPI: spi, Transforms: []Transform{
			{Type: ipsec.TransformENCR, ID: uint16(ipsec.EncrAESGCM16), KeyLength: 256},
			{Type: ipsec.TransformPRF, ID: uint16(ipsec.PRFHMACSHA2_384)},
			{Type: ipsec.TransformDH, ID: uint16(ipsec.DHECP384)},
		}},
		{Number: 2, Protocol: proto, SPI: spi, Transforms: []Transform{
			{Type: ipsec.TransformENCR, ID: uint16(ipsec.EncrAESCBC), KeyLength: 128},
			{Type: ipsec.TransformPRF, ID: uint16(ipsec.PRFHMACSHA1)},
			{Type: ipsec.TransformINTEG, ID: uint16(ipsec.IntegHMACSHA1_96)},
			{Type: ipsec.TransformDH, ID: uint16(ipsec.DHMODP1024)},
		}},
	}}
}

func nonce(b byte) *Nonce { return &Nonce{Data: bytes.Repeat([]byte{b}, 32)} }

func sampleInitRequest() *Message {
	return &Message{
		Header: Header{SPIi: 0x1122334455667788, Exchange: IKESAInit, Flags: FlagInitiator},
		Payloads: []Payload{
			sampleSA(nil, ipsec.ProtoIKE),
			&KE{Group: ipsec.DHECP384, Data: bytes.Repeat([]byte{0xaa}, 96)},
			nonce(0x01),
			&Notify{Kind: NotifyNATDetectionSourceIP, Data: bytes.Repeat([]byte{0x55}, 20)},
			&Notify{Kind: NotifyNATDetectionDestIP, Data: bytes.Repeat([]byte{0x66}, 20)},
			&Notify{Kind: NotifyIKEv2FragmentationSupported},
			&VendorID{Data: []byte("cgw")},
		},
	}
}

func sampleAuthRequest() *Message {
	return &Message{
		Header: Header{SPIi: 0x1122334455667788, SPIr: 0x99aabbccddeeff00, Exchange: IKEAuth, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{
			&ID{IDType: IDIPv4Addr, Data: []byte{203, 0, 113, 10}},
			&Notify{Kind: NotifyInitialContact},
			&ID{Responder: true, IDType: IDFQDN, Data: []byte("aws.example.com")},
			&Auth{Method: AuthPSK, Data: bytes.Repeat([]byte{0x42}, 48)},
			sampleSA([]byte{0xc0, 0xff, 0xee, 0x01}, ipsec.ProtoESP),
			&TS{Selectors: []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("0.0.0.0/0"))}},
			&TS{Responder: true, Selectors: []ipsec.TrafficSelector{
				ipsec.TSFromPrefix(netip.MustParsePrefix("10.0.0.0/16")),
				ipsec.TSFromPrefix(netip.MustParsePrefix("2001:db8::/32")),
			}},
		},
	}
}

func sampleInformational() *Message {
	return &Message{
		Header: Header{SPIi: 1, SPIr: 2, Exchange: Informational, Flags: FlagInitiator, MessageID: 7},
		Payloads: []Payload{
			&Delete{Protocol: ipsec.ProtoESP, SPIs: []ipsec.SPI{0x01020304, 0xa0b0c0d0}},
		},
	}
}

func sampleCreateChild() *Message {
	return &Message{
		Header: Header{SPIi: 1, SPIr: 2, Exchange: CreateChildSA, MessageID: 3},
		Payloads: []Payload{
			&Notify{Protocol: ipsec.ProtoESP, SPI: []byte{1, 2, 3, 4}, Kind: NotifyRekeySA},
			sampleSA([]byte{5, 6, 7, 8}, ipsec.ProtoESP),
			nonce(0x07),
			&KE{Group: ipsec.DHECP384, Data: bytes.Repeat([]byte{0xbb}, 96)},
			&TS{Selectors: []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("0.0.0.0/0"))}},
			&TS{Responder: true, Selectors: []ipsec.TrafficSelector{ipsec.TSFromPrefix(netip.MustParsePrefix("0.0.0.0/0"))}},
		},
	}
}

func TestMessageRoundTripPlain(t *testing.T) {
	m := sampleInitRequest()
	b, err := m.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Raw, b) || m.Header.Length != uint32(len(b)) || m.Header.NextPayload != PayloadSA || m.Header.MajorVersion != 2 {
		t.Fatalf("Marshal did not fill header/Raw: %+v", m.Header)
	}
	got, err := Parse(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Header, m.Header) || !reflect.DeepEqual(got.Payloads, m.Payloads) {
		t.Fatalf("round trip mismatch:\n in  %v\n out %v", m, got)
	}
	if &got.Raw[0] != &b[0] {
		t.Error("Raw does not alias the parsed buffer")
	}
	if s := got.String(); s != "IKE_SA_INIT request 0 [ SA KE Nonce N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP) N(IKEV2_FRAGMENTATION_SUPPORTED) VendorID ]" {
		t.Errorf("String() = %q", s)
	}
}

func TestMessageRoundTripSK(t *testing.T) {
	for name, mk := range testCiphers() {
		for _, sample := range []func() *Message{sampleAuthRequest, sampleInformational, sampleCreateChild} {
			m := sample()
			c := mk()
			b, err := m.Marshal(c)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if m.Header.NextPayload != PayloadSK {
				t.Fatalf("%s: NextPayload %s, want SK", name, m.Header.NextPayload)
			}
			if bs := c.BlockSize(); (len(b)-HeaderLen-genericHeaderLen-c.Overhead())%bs != 0 {
				t.Fatalf("%s: ciphertext not a multiple of the block size", name)
			}
			got, err := Parse(b, c)
			if err != nil {
				t.Fatalf("%s %s: %v", name, m.Header.Exchange, err)
			}
			if !reflect.DeepEqual(got.Payloads, m.Payloads) || !reflect.DeepEqual(got.Header, m.Header) {
				t.Fatalf("%s: mismatch\n in  %v\n out %v", name, m, got)
			}
			// Every single-bit flip anywhere must fail verification (the
			// ICV covers the whole message) or the header checks.
			for i := 0; i < len(b); i += 7 {
				bad := bytes.Clone(b)
				bad[i] ^= 0x10
				if _, err := Parse(bad, c); err == nil {
					t.Fatalf("%s: bit flip at octet %d accepted", name, i)
				}
			}
			// SK without keys is dropped, not answered.
			var e *Error
			if _, err := Parse(b, nil); !errors.As(err, &e) || e.Notify != 0 {
				t.Fatalf("%s: Parse without cipher: %v", name, err)
			}
		}
	}
}

func TestSKEmptyInformational(t *testing.T) {
	// A DPD probe is an INFORMATIONAL request with an empty SK payload.
	for name, mk := range testCiphers() {
		c := mk()
		m := &Message{Header: Header{SPIi: 9, SPIr: 10, Exchange: Informational, MessageID: 4}}
		b, err := m.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b, c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.Payloads) != 0 {
			t.Fatalf("%s: got payloads %v", name, got.Payloads)
		}
		// First inner type in the SK generic header is NONE.
		if b[HeaderLen] != 0 {
			t.Fatalf("%s: SK Next Payload = %d, want 0", name, b[HeaderLen])
		}
	}
}

// identity is a Cipher that does nothing, so tests can craft plaintexts.
type identity struct{ bs int }

func (i identity) BlockSize() int                      { return i.bs }
func (identity) Overhead() int                         { return 0 }
func (identity) Seal(aad, pt []byte) ([]byte, error)   { return bytes.Clone(pt), nil }
func (identity) Open(aad, body []byte) ([]byte, error) { return bytes.Clone(body), nil }

func TestSKPadding(t *testing.T) {
	m := sampleInformational()
	b, err := m.Marshal(identity{bs: 16})
	if err != nil {
		t.Fatal(err)
	}
	body := b[HeaderLen+genericHeaderLen:]
	if len(body)%16 != 0 {
		t.Fatalf("plaintext of %d octets not padded to 16", len(body))
	}
	// Corrupt the Pad Length octet so it exceeds the content.
	bad := bytes.Clone(b)
	bad[len(bad)-1] = uint8(len(body))
	if _, err := Parse(bad, identity{bs: 16}); err == nil || !strings.Contains(err.Error(), "Pad Length") {
		t.Fatalf("bad pad length: %v", err)
	}
	// Maximal legal padding is accepted.
	inner, first, _ := encodeChain(m.Payloads)
	pt := append(bytes.Clone(inner), make([]byte, 255)...)
	pt = append(pt, 255)
	h := m.Header
	raw, err := seal(&h, identity{bs: 1}, PayloadSK, first, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw = append(raw[:len(raw)-1], pt...) // replace the empty plaintext
	fixLengths(raw, HeaderLen)
	got, err := Parse(raw, identity{bs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Payloads, m.Payloads) {
		t.Fatalf("payloads %v", got.Payloads)
	}
}

// fixLengths rewrites the IKE Length and the Payload Length of the payload
// at off to match len(b) (the payload at off must be the last).
func TestPayloadValidation(t *testing.T) {
	bad := map[string]struct {
		typ  PayloadType
		body string
	}{
		"SA no proposals":        {PayloadSA, ""},
		"SA spi size 3":          {PayloadSA, "00000008" + "01010300"},
		"SA more flag wrong":     {PayloadSA, "02000008" + "01010000"},
		"SA last flag 1":         {PayloadSA, "01000008" + "01010000"},
		"SA transform count":     {PayloadSA, "00000008" + "01010001"},
		"SA transform more flag": {PayloadSA, "00000010" + "01010001" + "03000008" + "01000014"},
		"SA transform len short": {PayloadSA, "0000000c" + "01010001" + "00000004"},
		"SA attr truncated":      {PayloadSA, "0000000e" + "01010001" + "0000000a" + "01000014" + "800e"},
		"SA TLV attr overruns":   {PayloadSA, "00000010" + "01010001" + "0000000c" + "01000014" + "00630009"},
		"nonce short":            {PayloadNonce, "00112233445566778899aabbccddee"},
		"ipv4 id of 5":           {PayloadIDi, "010000000102030405"},
		"ipv6 id of 4":           {PayloadIDr, "0500000001020304"},
		"auth empty":             {PayloadAUTH, "02000000"},
		"delete ike with spis":   {PayloadDelete, "01040001" + "01020304"},
		"delete esp spi size 8":  {PayloadDelete, "03080001" + "0102030405060708"},
		"delete esp count":       {PayloadDelete, "03040002" + "01020304"},
		"delete proto 9":         {PayloadDelete, "09040001" + "01020304"},
		"notify spi overrun":     {PayloadNotify, "03084004" + "010203"},
		"ts type 9":              {PayloadTSi, "01000000" + "09000010" + "0000ffff" + "0a000000" + "0a0000ff"},
		"ts v4 length 40":        {PayloadTSi, "01000000" + "07000028" + "0000ffff" + "0a000000" + "0a0000ff"},
		"ts count 2 carries 1":   {PayloadTSr, "02000000" + "07000010" + "0000ffff" + "0a000000" + "0a0000ff"},
		"ts count 1 trailing":    {PayloadTSr, "01000000" + "07000010" + "0000ffff" + "0a000000" + "0a0000ff" + "00"},
		"ts count 0":             {PayloadTSr, "00000000"},
		"ke short":               {PayloadKE, "0013"},
		"cp short":               {PayloadCP, "01"},
	}
	for name, c := range bad {
		b, err := hex.DecodeString(c.body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = decodePayload(rawPayload{typ: c.typ, body: b})
		var e *Error
		if !errors.As(err, &e) || e.Notify != NotifyInvalidSyntax {
			t.Errorf("%s: got %v, want INVALID_SYNTAX", name, err)
		}
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	bad := []Payload{
		&SA{},
		&SA{Proposals: []Proposal{{Number: 1, SPI: []byte{1, 2, 3}}}},
		&Nonce{Data: make([]byte, 8)},
		&ID{IDType: IDIPv4Addr, Data: make([]byte, 16)},
		&TS{},
		&TS{Selectors: []ipsec.TrafficSelector{{Start: netip.MustParseAddr("10.0.0.1"), End: netip.MustParseAddr("::1")}}},
		&TS{Selectors: []ipsec.TrafficSelector{{}}},
		&Delete{Protocol: ipsec.ProtoIKE, SPIs: []ipsec.SPI{1}},
		&Delete{Protocol: ipsec.ProtoESP},
		&Delete{Protocol: 7},
		&Unknown{PayloadType: PayloadSK},
	}
	for _, p := range bad {
		m := &Message{Header: Header{Exchange: Informational}, Payloads: []Payload{p}}
		if _, err := m.Marshal(nil); err == nil || !strings.HasPrefix(err.Error(), "ike: ") {
			t.Errorf("%#v: Marshal error %v", p, err)
		}
	}
	type foreign struct{ Payload }
	m := &Message{Payloads: []Payload{foreign{}}}
	if _, err := m.Marshal(nil); err == nil {
		t.Error("foreign payload type accepted")
	}
}

// randMessage returns a random message that satisfies the exchange rules.
func randMessage(r *rand.Rand) *Message {
	m := &Message{Header: Header{SPIi: r.Uint64(), SPIr: r.Uint64(), MessageID: r.Uint32(), Flags: []uint8{0, FlagInitiator, FlagResponse}[r.Intn(3)]}}
	extras := func() {
		for i := 0; i < r.Intn(4); i++ {
			if r.Intn(2) == 0 {
				n := randNotify(r)
				n.Kind = NotifyType(16384 + r.Intn(40000)) // status: keeps minimum counts in force
				m.Payloads = append(m.Payloads, n)
			} else {
				m.Payloads = append(m.Payloads, &VendorID{Data: randBytes(r, 1, 16)})
			}
		}
	}
	switch r.Intn(3) {
	case 0:
		m.Header.Exchange = IKESAInit
		m.Payloads = []Payload{randSA(r), &KE{Group: ipsec.DHGroup(r.Intn(32)), Data: randBytes(r, 32, 256)}, &Nonce{Data: randBytes(r, 16, 64)}}
		extras()
	case 1:
		m.Header.Exchange = Informational
		for i := 0; i < r.Intn(4); i++ {
			m.Payloads = append(m.Payloads, randDelete(r))
		}
		extras()
	default:
		m.Header.Exchange = CreateChildSA
		ts, tr := randTS(r), randTS(r)
		ts.Responder, tr.Responder = false, true
		m.Payloads = []Payload{randSA(r), &Nonce{Data: randBytes(r, 16, 64)}, ts, tr}
		extras()
	}
	r.Shuffle(len(m.Payloads), func(i, j int) { m.Payloads[i], m.Payloads[j] = m.Payloads[j], m.Payloads[i] })
	return m
}

func TestMessageRoundTripQuick(t *testing.T) {
	ciphers := testCiphers()
	f := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		m := randMessage(r)
		var c Cipher
		if m.Header.Exchange != IKESAInit {
			c = ciphers[[]string{"aes-cbc-hmac-sha256", "aes-gcm-16"}[r.Intn(2)]]()
		}
		b, err := m.Marshal(c)
		if err != nil {
			t.Logf("seed %d: marshal: %v", seed, err)
			return false
		}
		got, err := Parse(b, c)
		if err != nil {
			t.Logf("seed %d: parse %v: %v", seed, m, err)
			return false
		}
		if !reflect.DeepEqual(got.Header, m.Header) || !reflect.DeepEqual(got.Payloads, m.Payloads) {
			t.Logf("seed %d:\n in  %v\n out %v", seed, m, got)
			return false
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 300}); err != nil {
		t.Fatal(err)
	}
}

func TestErrorUnwrapAndStrings(t *testing.T) {
	c := testCiphers()["aes-gcm-16"]()
	b, _ := sampleInformational().Marshal(c)
	b[len(b)-1] ^= 1
	_, err := Parse(b, c)
	var e *Error
	if !errors.As(err, &e) || e.Notify != 0 || errors.Unwrap(err) == nil || !strings.Contains(err.Error(), "failed verification") {
		t.Fatalf("got %v", err)
	}
	h := Header{SPIi: 0xa, SPIr: 0xb, Exchange: IKEAuth, Flags: FlagResponse, MessageID: 1}
	if s := h.String(); s != "IKE_AUTH response 1 [000000000000000a_i 000000000000000b_r]" {
		t.Errorf("Header.String = %q", s)
	}
	n := &Notify{Protocol: ipsec.ProtoESP, SPI: []byte{1, 2, 3, 4}, Kind: NotifyRekeySA}
	if s := n.String(); s != "N(REKEY_SA spi=01020304)" {
		t.Errorf("Notify.String = %q", s)
	}
	m := (&Message{Header: h}).Add(&ID{Responder: true, IDType: IDFQDN, Data: []byte("a.b")}, &Delete{Protocol: ipsec.ProtoIKE})
	if s := m.String(); s != "IKE_AUTH response 1 [ IDr D(proto 1, 0 SPIs) ]" {
		t.Errorf("Message.String = %q", s)
	}
	if s := m.Payloads[0].(*ID).String(); s != `"a.b"` {
		t.Errorf("ID.String = %q", s)
	}
}
