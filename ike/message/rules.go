package message

import "fmt"

// Per-exchange payload rules, declared once and enforced by Parse after
// decoding (the shape of strongSwan's message.c payload_rule_t tables).
// They check syntax only: which payloads may appear, how often and whether
// they must be inside SK. Semantics (proposal choice, TS narrowing,
// AUTH) belong to the IKE engine.
//
// Permissiveness for real peers:
//   - every exchange may carry Notify and Vendor ID payloads;
//   - the minimum counts of a response are waived when it carries an error
//     Notify (type < 16384), so an IKE_AUTH or CREATE_CHILD_SA response
//     may be just NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED, ...;
//   - an IKE_SA_INIT response may also be just COOKIE (RFC 7296, 2.6);
//   - INFORMATIONAL may be empty (liveness check, RFC 7296, 1.4);
//   - non-critical unknown payloads are ignored (RFC 7296, 2.5);
//   - CERT, CERTREQ and EAP are allowed where RFC 7296 puts them although
//     cgw only uses PSK, so that a peer that sends them still gets a
//     meaningful answer from the engine instead of INVALID_SYNTAX.

// payloadRule says how often one payload type may appear.
type payloadRule struct {
	Type      PayloadType
	Min, Max  int
	Encrypted bool // must be inside SK
}

// messageRule lists the payloads allowed in one exchange and direction.
type messageRule struct {
	Exchange  ExchangeType
	Response  bool
	Encrypted bool // the message must carry SK (all exchanges but IKE_SA_INIT)
	Payloads  []payloadRule
}

// Upper bounds, as in strongSwan (MAX_NOTIFY_PAYLOADS and friends).
const (
	maxNotify  = 20
	maxVendor  = 20
	maxDelete  = 20
	maxCert    = 4
	maxCertReq = 20
)

var messageRules = []messageRule{
	// RFC 7296, Section 1.2: HDR, SAi1, KEi, Ni -->
	{Exchange: IKESAInit, Response: false, Encrypted: false, Payloads: []payloadRule{
		{Type: PayloadSA, Min: 1, Max: 1},
		{Type: PayloadKE, Min: 1, Max: 1},
		{Type: PayloadNonce, Min: 1, Max: 1},
		{Type: PayloadNotify, Min: 0, Max: maxNotify},
		{Type: PayloadVendor, Min: 0, Max: maxVendor},
	}},
	// <-- HDR, SAr1, KEr, Nr, [CERTREQ]
	{Exchange: IKESAInit, Response: true, Encrypted: false, Payloads: []payloadRule{
		{Type: PayloadSA, Min: 1, Max: 1},
		{Type: PayloadKE, Min: 1, Max: 1},
		{Type: PayloadNonce, Min: 1, Max: 1},
		{Type: PayloadCERTREQ, Min: 0, Max: maxCertReq},
		{Type: PayloadNotify, Min: 0, Max: maxNotify},
		{Type: PayloadVendor, Min: 0, Max: maxVendor},
	}},
	// HDR, SK {IDi, [CERT,] [CERTREQ,] [IDr,] AUTH, SAi2, TSi, TSr} -->
	// (SA and TS optional for childless IKE_AUTH, RFC 6023.)
	{Exchange: IKEAuth, Response: false, Encrypted: true, Payloads: []payloadRule{
		{Type: PayloadIDi, Min: 1, Max: 1, Encrypted: true},
		{Type: PayloadCERT, Min: 0, Max: maxCert, Encrypted: true},
		{Type: PayloadCERTREQ, Min: 0, Max: maxCertReq, Encrypted: true},
		{Type: PayloadIDr, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadAUTH, Min: 1, Max: 1, Encrypted: true},
		{Type: PayloadEAP, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadCP, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadSA, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadTSi, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadTSr, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadNotify, Min: 0, Max: maxNotify, Encrypted: true},
		{Type: PayloadVendor, Min: 0, Max: maxVendor, Encrypted: true},
	}},
	// <-- HDR, SK {IDr, [CERT,] AUTH, SAr2, TSi, TSr}
	{Exchange: IKEAuth, Response: true, Encrypted: true, Payloads: []payloadRule{
		{Type: PayloadIDr, Min: 1, Max: 1, Encrypted: true},
		{Type: PayloadCERT, Min: 0, Max: maxCert, Encrypted: true},
		{Type: PayloadAUTH, Min: 1, Max: 1, Encrypted: true},
		{Type: PayloadEAP, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadCP, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadSA, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadTSi, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadTSr, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadNotify, Min: 0, Max: maxNotify, Encrypted: true},
		{Type: PayloadVendor, Min: 0, Max: maxVendor, Encrypted: true},
	}},
	// HDR, SK {[N(REKEY_SA)], SA, Ni, [KEi], [TSi, TSr]} -->  (1.3.1-1.3.3)
	{Exchange: CreateChildSA, Response: false, Encrypted: true, Payloads: []payloadRule{
		{Type: PayloadSA, Min: 1, Max: 1, Encrypted: true},
		{Type: PayloadNonce, Min: 1, Max: 1, Encrypted: true},
		{Type: PayloadKE, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadTSi, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadTSr, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadNotify, Min: 0, Max: maxNotify, Encrypted: true},
		{Type: PayloadVendor, Min: 0, Max: maxVendor, Encrypted: true},
	}},
	// <-- HDR, SK {SA, Nr, [KEr], [TSi, TSr]}
	{Exchange: CreateChildSA, Response: true, Encrypted: true, Payloads: []payloadRule{
		{Type: PayloadSA, Min: 1, Max: 1, Encrypted: true},
		{Type: PayloadNonce, Min: 1, Max: 1, Encrypted: true},
		{Type: PayloadKE, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadTSi, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadTSr, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadNotify, Min: 0, Max: maxNotify, Encrypted: true},
		{Type: PayloadVendor, Min: 0, Max: maxVendor, Encrypted: true},
	}},
	// HDR, SK {[N,] [D,] [CP,] ...} -->  (1.4)
	{Exchange: Informational, Response: false, Encrypted: true, Payloads: []payloadRule{
		{Type: PayloadNotify, Min: 0, Max: maxNotify, Encrypted: true},
		{Type: PayloadDelete, Min: 0, Max: maxDelete, Encrypted: true},
		{Type: PayloadCP, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadVendor, Min: 0, Max: maxVendor, Encrypted: true},
	}},
	// <-- HDR, SK {[N,] [D,] [CP], ...}
	{Exchange: Informational, Response: true, Encrypted: true, Payloads: []payloadRule{
		{Type: PayloadNotify, Min: 0, Max: maxNotify, Encrypted: true},
		{Type: PayloadDelete, Min: 0, Max: maxDelete, Encrypted: true},
		{Type: PayloadCP, Min: 0, Max: 1, Encrypted: true},
		{Type: PayloadVendor, Min: 0, Max: maxVendor, Encrypted: true},
	}},
}

func findRule(ex ExchangeType, response bool) *messageRule {
	for i := range messageRules {
		if r := &messageRules[i]; r.Exchange == ex && r.Response == response {
			return r
		}
	}
	return nil
}

func (r *messageRule) find(t PayloadType) *payloadRule {
	for i := range r.Payloads {
		if r.Payloads[i].Type == t {
			return &r.Payloads[i]
		}
	}
	return nil
}

// checkRules enforces the rules table on a decoded message. plain is the
// number of leading m.Payloads that were outside SK; encrypted tells
// whether the message carried SK (or SKF).
func checkRules(m *Message, plain int, encrypted bool) error {
	dir := "request"
	if m.Header.IsResponse() {
		dir = "response"
	}
	rule := findRule(m.Header.Exchange, m.Header.IsResponse())
	if rule == nil {
		return syntaxError(fmt.Sprintf("exchange type %s is not supported", m.Header.Exchange))
	}
	name := m.Header.Exchange.String() + " " + dir
	switch {
	case rule.Encrypted && !encrypted:
		return syntaxError(fmt.Sprintf("%s: message is not encrypted (no SK payload)", name))
	case !rule.Encrypted && encrypted:
		return syntaxError(fmt.Sprintf("%s: message must not carry an encrypted payload", name))
	}
	var counts [256]int
	waiveMin := false
	for i, p := range m.Payloads {
		t := p.Type()
		if u, ok := p.(*Unknown); ok && !recognized(u.PayloadType) {
			continue // non-critical unknown payload: ignored (RFC 7296, 2.5)
		}
		pr := rule.find(t)
		if pr == nil {
			return syntaxError(fmt.Sprintf("%s: %s payload is not allowed", name, t))
		}
		if pr.Encrypted && i < plain {
			return syntaxError(fmt.Sprintf("%s: %s payload must be inside the SK payload", name, t))
		}
		counts[t]++
		if counts[t] > pr.Max {
			return syntaxError(fmt.Sprintf("%s: %d %s payloads, at most %d allowed", name, counts[t], t, pr.Max))
		}
		if n, ok := p.(*Notify); ok && m.Header.IsResponse() {
			if n.Kind.IsError() || (m.Header.Exchange == IKESAInit && n.Kind == NotifyCookie) {
				waiveMin = true
			}
		}
	}
	if waiveMin {
		return nil
	}
	for _, pr := range rule.Payloads {
		if counts[pr.Type] < pr.Min {
			return syntaxError(fmt.Sprintf("%s: %s payload missing (need at least %d)", name, pr.Type, pr.Min))
		}
	}
	return nil
}
