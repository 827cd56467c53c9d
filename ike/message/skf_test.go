package message

import (
	"bytes"
	"errors"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

func bigAuthRequest() *Message {
	m := sampleAuthRequest()
	// A CERT-sized blob makes the message need several fragments.
	m.Payloads = append(m.Payloads, &Cert{Encoding: CertX509Sig, Data: bytes.Repeat([]byte("certificate-"), 150)})
	return m
}

func TestFragmentsRoundTrip(t *testing.T) {
	for name, mk := range testCiphers() {
		for _, maxLen := range []int{200, 576, 1280} {
			c := mk()
			m := bigAuthRequest()
			frags, err := m.MarshalFragments(c, maxLen)
			if err != nil {
				t.Fatalf("%s/%d: %v", name, maxLen, err)
			}
			if len(frags) < 2 {
				t.Fatalf("%s/%d: %d fragments", name, maxLen, len(frags))
			}
			for i, f := range frags {
				if len(f) > maxLen {
					t.Fatalf("%s/%d: fragment %d is %d octets", name, maxLen, i+1, len(f))
				}
				if _, err := Parse(f, c); err == nil {
					t.Fatalf("Parse accepted a fragment")
				}
			}
			if !bytes.Equal(m.Raw, frags[0]) || m.Header.NextPayload != PayloadSKF {
				t.Fatalf("%s: Raw/Header not of fragment 1", name)
			}
			// Deliver shuffled, with duplicates.
			r := rand.New(rand.NewSource(int64(maxLen)))
			order := r.Perm(len(frags))
			order = append(order, order[0], order[len(order)/2])
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			var ra Reassembler
			var got *Message
			seen := map[int]bool{}
			for _, i := range order {
				out, done, err := ra.Add(frags[i], c)
				if seen[i] && !done && errors.Is(err, DropFragDuplicate) {
					continue
				}
				if err != nil {
					t.Fatalf("%s/%d: fragment %d: %v", name, maxLen, i+1, err)
				}
				seen[i] = true
				if done {
					// A duplicate arriving after completion starts a new
					// set (a retransmitted request completes again).
					if len(seen) != len(frags) {
						t.Fatalf("%s/%d: complete after %d of %d fragments", name, maxLen, len(seen), len(frags))
					}
					got = out
					seen = map[int]bool{}
				}
			}
			if got == nil {
				t.Fatalf("%s/%d: never complete", name, maxLen)
			}
			want := bigAuthRequest()
			if !reflect.DeepEqual(got.Payloads, want.Payloads) {
				t.Fatalf("%s/%d: payloads differ", name, maxLen)
			}
			if !bytes.Equal(got.Raw, frags[0]) || got.Header.MessageID != 1 || got.Header.Exchange != IKEAuth {
				t.Fatalf("%s/%d: header/raw %+v", name, maxLen, got.Header)
			}
		}
	}
}

func TestFragmentsNotNeeded(t *testing.T) {
	c := testCiphers()["aes-gcm-16"]()
	m := sampleInformational()
	frags, err := m.MarshalFragments(c, 1280)
	if err != nil || len(frags) != 1 || frags[0][16] != uint8(PayloadSK) {
		t.Fatalf("got %d frags, %v", len(frags), err)
	}
	var ra Reassembler
	got, done, err := ra.Add(frags[0], c)
	if err != nil || !done || !reflect.DeepEqual(got.Payloads, m.Payloads) {
		t.Fatalf("unfragmented via Add: %v %v", done, err)
	}
	if _, err := m.MarshalFragments(nil, 1280); err == nil {
		t.Fatal("fragmenting without a cipher")
	}
	if _, err := bigAuthRequest().MarshalFragments(c, 60); err == nil {
		t.Fatal("maxLen too small accepted")
	}
}

func TestReassemblerTotals(t *testing.T) {
	c := identity{bs: 1}
	m := bigAuthRequest()
	small, err := m.MarshalFragments(c, 300)
	if err != nil {
		t.Fatal(err)
	}
	m = bigAuthRequest()
	large, err := m.MarshalFragments(c, 900)
	if err != nil {
		t.Fatal(err)
	}
	if len(small) <= len(large) {
		t.Fatalf("small %d, large %d", len(small), len(large))
	}
	var ra Reassembler
	// Start with the coarse fragmentation, then the peer re-fragments
	// smaller: a larger total restarts reassembly.
	if _, done, err := ra.Add(large[0], c); err != nil || done {
		t.Fatal(err)
	}
	for i, f := range small {
		got, done, err := ra.Add(f, c)
		if err != nil {
			t.Fatal(err)
		}
		if done != (i == len(small)-1) {
			t.Fatalf("done=%v at %d", done, i)
		}
		if done && !reflect.DeepEqual(got.Payloads, bigAuthRequest().Payloads) {
			t.Fatal("payloads differ")
		}
	}
	// A smaller total than the one in progress is rejected (dropped).
	ra = Reassembler{}
	ra.Add(small[0], c)
	_, _, err = ra.Add(large[1], c)
	var e *Error
	if !errors.As(err, &e) || e.Notify != 0 || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("smaller total: %v", err)
	}
	// An older Message ID is dropped while a newer one is in progress.
	old := bigAuthRequest()
	old.Header.MessageID = 0
	oldFrags, _ := old.MarshalFragments(c, 300)
	if _, _, err := ra.Add(oldFrags[1], c); err == nil || !strings.Contains(err.Error(), "being reassembled") {
		t.Fatalf("older mid: %v", err)
	}
	// A response with the same Message ID is tracked separately.
	resp := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKEAuth, Flags: FlagResponse, MessageID: 1},
		Payloads: []Payload{&Notify{Kind: NotifyAuthenticationFailed, Data: bytes.Repeat([]byte{1}, 400)}}}
	rf, err := resp.MarshalFragments(c, 300)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range rf {
		if _, done, err := ra.Add(f, c); err != nil || done != (i == len(rf)-1) {
			t.Fatalf("response fragment %d: %v %v", i, done, err)
		}
	}
}

func TestReassemblerBounds(t *testing.T) {
	c := identity{bs: 1}
	m := bigAuthRequest()
	frags, err := m.MarshalFragments(c, 80)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) <= MaxFragments {
		t.Fatalf("only %d fragments", len(frags))
	}
	var ra Reassembler
	_, _, err = ra.Add(frags[0], c)
	if err == nil || !strings.Contains(err.Error(), "at most 32") {
		t.Fatalf("too many fragments: %v", err)
	}
	// Fragment Number 0 and Number > Total are rejected.
	frags, _ = bigAuthRequest().MarshalFragments(c, 300)
	for _, v := range [][2]byte{{0, 0}, {0, 99}} {
		bad := bytes.Clone(frags[0])
		bad[HeaderLen+4], bad[HeaderLen+5] = v[0], v[1]
		if _, _, err := ra.Add(bad, c); err == nil {
			t.Fatalf("fragment number %v accepted", v)
		}
	}
	// Tampered fragments fail verification with a real cipher.
	gc := testCiphers()["aes-cbc-hmac-sha256"]()
	frags, _ = bigAuthRequest().MarshalFragments(gc, 300)
	bad := bytes.Clone(frags[1])
	bad[len(bad)-20] ^= 1
	var e *Error
	if _, _, err := ra.Add(bad, gc); !errors.As(err, &e) || e.Notify != 0 {
		t.Fatalf("tampered fragment: %v", err)
	}
	// Truncated fragments never panic and never complete.
	for _, f := range frags {
		for i := 0; i < len(f); i++ {
			var ra Reassembler
			if _, done, err := ra.Add(f[:i], gc); err == nil || done {
				t.Fatalf("prefix %d accepted", i)
			}
		}
	}
}
