package message

import (
	"errors"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

func TestRules(t *testing.T) {
	notify := func(k NotifyType) *Notify { return &Notify{Kind: k} }
	resp := FlagResponse
	cases := []struct {
		name     string
		ex       ExchangeType
		flags    uint8
		enc      bool
		payloads []Payload
		wantErr  string // substring; empty = accepted
	}{
		{"init request ok", IKESAInit, FlagInitiator, false, sampleInitRequest().Payloads, ""},
		{"init request without KE", IKESAInit, FlagInitiator, false, []Payload{sampleSA(nil, ipsec.ProtoIKE), nonce(1)}, "IKE_SA_INIT request: KE payload missing"},
		{"init request two nonces", IKESAInit, FlagInitiator, false, append(sampleInitRequest().Payloads, nonce(2)), "2 Nonce payloads, at most 1"},
		{"init request with AUTH", IKESAInit, FlagInitiator, false, append(sampleInitRequest().Payloads, &Auth{Method: AuthPSK, Data: []byte{1}}), "AUTH payload is not allowed"},
		{"init request encrypted", IKESAInit, FlagInitiator, true, sampleInitRequest().Payloads, "must not carry an encrypted payload"},
		{"init response cookie only", IKESAInit, resp, false, []Payload{&Notify{Kind: NotifyCookie, Data: []byte{1, 2, 3, 4}}}, ""},
		{"init response invalid KE only", IKESAInit, resp, false, []Payload{&Notify{Kind: NotifyInvalidKEPayload, Data: []byte{0, 19}}}, ""},
		{"init response no proposal only", IKESAInit, resp, false, []Payload{notify(NotifyNoProposalChosen)}, ""},
		{"init response status notify only", IKESAInit, resp, false, []Payload{notify(NotifyNATDetectionSourceIP)}, "SA payload missing"},
		{"init response with CERTREQ", IKESAInit, resp, false, append(sampleInitRequest().Payloads, &Unknown{PayloadType: PayloadCERTREQ, Data: []byte{4}}), ""},
		{"init request cookie does not waive", IKESAInit, FlagInitiator, false, []Payload{notify(NotifyCookie)}, "SA payload missing"},
		{"auth request ok", IKEAuth, FlagInitiator, true, sampleAuthRequest().Payloads, ""},
		{"auth request childless", IKEAuth, FlagInitiator, true, sampleAuthRequest().Payloads[:4], ""},
		{"auth request without AUTH", IKEAuth, FlagInitiator, true, sampleAuthRequest().Payloads[:3], "AUTH payload missing"},
		{"auth request not encrypted", IKEAuth, FlagInitiator, false, sampleAuthRequest().Payloads, "not encrypted"},
		{"auth request with KE", IKEAuth, FlagInitiator, true, append(sampleAuthRequest().Payloads, &KE{Group: 19}), "KE payload is not allowed"},
		{"auth response error only", IKEAuth, resp, true, []Payload{notify(NotifyAuthenticationFailed)}, ""},
		{"auth response empty", IKEAuth, resp, true, nil, "IKE_AUTH response: IDr payload missing"},
		{"auth response IDi", IKEAuth, resp, true, []Payload{&ID{IDType: IDFQDN, Data: []byte("x")}}, "IDi payload is not allowed"},
		{"child request ok", CreateChildSA, FlagInitiator, true, sampleCreateChild().Payloads, ""},
		{"child request without nonce", CreateChildSA, FlagInitiator, true, []Payload{sampleSA([]byte{1, 2, 3, 4}, ipsec.ProtoESP)}, "Nonce payload missing"},
		{"child response TS_UNACCEPTABLE", CreateChildSA, resp, true, []Payload{notify(NotifyTSUnacceptable)}, ""},
		{"informational empty", Informational, 0, true, nil, ""},
		{"informational empty response", Informational, resp, true, nil, ""},
		{"informational delete", Informational, 0, true, sampleInformational().Payloads, ""},
		{"informational SA", Informational, 0, true, []Payload{sampleSA(nil, ipsec.ProtoIKE)}, "SA payload is not allowed"},
		{"informational 21 notifies", Informational, 0, true, manyNotifies(21), "21 Notify payloads, at most 20"},
		{"informational vendor", Informational, 0, true, []Payload{&VendorID{Data: []byte("x")}}, ""},
		{"unknown exchange", ExchangeType(43), 0, true, nil, "exchange type ExchangeType(43) is not supported"},
		{"non-critical unknown ignored", Informational, 0, true, []Payload{&Unknown{PayloadType: 250}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: c.ex, Flags: c.flags}, Payloads: c.payloads}
			var ci Cipher
			if c.enc {
				ci = identity{bs: 1}
			}
			b, err := m.Marshal(ci)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(b, ci)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Notify != NotifyInvalidSyntax || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want INVALID_SYNTAX containing %q", err, c.wantErr)
			}
		})
	}
}

func manyNotifies(n int) []Payload {
	var ps []Payload
	for i := 0; i < n; i++ {
		ps = append(ps, &Notify{Kind: NotifyType(40000 + i)})
	}
	return ps
}

func TestRulesPlainBeforeSK(t *testing.T) {
	// A Notify in the clear before SK in IKE_AUTH violates "must be
	// encrypted"; craft it by hand: HDR, N, SK{IDi, AUTH}.
	c := identity{bs: 1}
	inner := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKEAuth, Flags: FlagInitiator, MessageID: 1},
		Payloads: sampleAuthRequest().Payloads[:4]}
	enc, err := inner.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := encodeChain([]Payload{&Notify{Kind: NotifyInitialContact}})
	if err != nil {
		t.Fatal(err)
	}
	n[0] = uint8(PayloadSK) // Next Payload of the clear Notify
	b := append(append(append([]byte{}, enc[:HeaderLen]...), n...), enc[HeaderLen:]...)
	b[16] = uint8(PayloadNotify)
	setLength(b)
	_, err = Parse(b, c)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "Notify payload must be inside the SK payload") {
		t.Fatalf("got %v", err)
	}
}
