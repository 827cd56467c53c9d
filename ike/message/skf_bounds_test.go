package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// The Reassembler's bounds, each by the FragmentDrop the daemon counts.

func mustFragments(t *testing.T, m *Message, c Cipher, maxLen int) [][]byte {
	t.Helper()
	frags, err := m.MarshalFragments(c, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) < 3 {
		t.Fatalf("only %d fragments", len(frags))
	}
	return frags
}

// setFragNumbers rewrites Fragment Number and Total Fragments of a fragment
// sealed under the identity cipher (which ignores the additional data).
func setFragNumbers(b []byte, num, total uint16) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint16(b[HeaderLen+4:], num)
	binary.BigEndian.PutUint16(b[HeaderLen+6:], total)
	return b
}

func TestReassemblerDropReasons(t *testing.T) {
	c := identity{bs: 1}
	frags := mustFragments(t, bigAuthRequest(), c, 300)
	n := uint16(len(frags))
	gc := testCiphers()["aes-gcm-16"]()
	real := mustFragments(t, bigAuthRequest(), gc, 300)
	tampered := bytes.Clone(real[1])
	tampered[len(tampered)-1] ^= 1
	short := bytes.Clone(frags[0][:HeaderLen+6]) // SKF cut inside Total Fragments
	binary.BigEndian.PutUint32(short[24:], uint32(len(short)))

	for _, tc := range []struct {
		name   string
		before [][]byte // fed first, must be accepted
		frag   []byte
		cipher Cipher
		want   FragmentDrop
	}{
		{"number 0", nil, setFragNumbers(frags[0], 0, n), c, DropFragMalformed},
		{"total 0", nil, setFragNumbers(frags[0], 1, 0), c, DropFragMalformed},
		{"number above total", nil, setFragNumbers(frags[0], n+1, n), c, DropFragMalformed},
		{"truncated SKF header", nil, short, c, DropFragMalformed},
		{"too many", nil, setFragNumbers(frags[0], 1, MaxFragments+1), c, DropFragTooMany},
		{"bad ICV", nil, tampered, gc, DropFragUnauthentic},
		{"no keys", nil, frags[0], nil, DropFragUnauthentic},
		{"duplicate", [][]byte{frags[1]}, frags[1], c, DropFragDuplicate},
		{"smaller total", [][]byte{frags[1]}, setFragNumbers(frags[0], 1, n-1), c, DropFragStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ra Reassembler
			for _, b := range tc.before {
				if _, _, err := ra.Add(b, c); err != nil {
					t.Fatal(err)
				}
			}
			m, done, err := ra.Add(tc.frag, tc.cipher)
			if !errors.Is(err, tc.want) || done || m != nil {
				t.Fatalf("got %v (done %v), want %s", err, done, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Notify != 0 {
				t.Fatalf("%v is not a silent *Error", err)
			}
		})
	}
}

func TestReassemblerInOrderAndMissing(t *testing.T) {
	c := testCiphers()["aes-cbc-hmac-sha256"]()
	frags := mustFragments(t, bigAuthRequest(), c, 300)
	var ra Reassembler
	for i, f := range frags[:len(frags)-1] {
		if m, done, err := ra.Add(f, c); err != nil || done || m != nil {
			t.Fatalf("fragment %d: %v %v", i+1, done, err)
		}
	}
	// One missing: nothing completes, and what is held is bounded.
	if msgs, octets := ra.Pending(); msgs != 1 || octets == 0 || octets > maxReassembled {
		t.Fatalf("pending %d messages, %d octets", msgs, octets)
	}
	m, done, err := ra.Add(frags[len(frags)-1], c)
	if err != nil || !done {
		t.Fatalf("last fragment: %v %v", done, err)
	}
	if m.String() != bigAuthRequest().String() {
		t.Fatalf("reassembled %s", m)
	}
	if msgs, octets := ra.Pending(); msgs != 0 || octets != 0 {
		t.Fatalf("after completion still %d messages, %d octets", msgs, octets)
	}
}

// TestReassemblerTooLarge: a message whose fragments add up to more than
// 64 KiB is discarded as soon as it crosses the bound, within MaxFragments.
func TestReassemblerTooLarge(t *testing.T) {
	c := identity{bs: 1}
	m := sampleAuthRequest()
	for range 5 {
		m.Payloads = append(m.Payloads, &Unknown{PayloadType: PayloadCERT, Data: bytes.Repeat([]byte{0x30}, 15000)})
	}
	frags, err := m.MarshalFragments(c, 3000)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) > MaxFragments {
		t.Fatalf("%d fragments: the test needs at most %d", len(frags), MaxFragments)
	}
	var ra Reassembler
	var dropped bool
	for i, f := range frags {
		_, done, err := ra.Add(f, c)
		if done {
			t.Fatalf("a %d-fragment message over 64 KiB completed", len(frags))
		}
		if errors.Is(err, DropFragTooLarge) {
			dropped = true
			if msgs, _ := ra.Pending(); msgs != 0 {
				t.Fatalf("fragments kept after the size bound tripped at %d", i+1)
			}
			break
		}
		if err != nil {
			t.Fatalf("fragment %d: %v", i+1, err)
		}
		if _, octets := ra.Pending(); octets > maxReassembled {
			t.Fatalf("holding %d octets", octets)
		}
	}
	if !dropped {
		t.Fatal("never dropped")
	}
}

// TestReassemblerTimeout: an incomplete message older than FragmentTimeout
// is discarded; its late fragments start over instead of completing it.
func TestReassemblerTimeout(t *testing.T) {
	c := identity{bs: 1}
	frags := mustFragments(t, bigAuthRequest(), c, 300)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ra Reassembler
	for _, f := range frags[:len(frags)-1] {
		if _, _, err := ra.AddAt(f, c, t0); err != nil {
			t.Fatal(err)
		}
	}
	_, done, err := ra.AddAt(frags[len(frags)-1], c, t0.Add(FragmentTimeout+time.Second))
	if err != nil || done {
		t.Fatalf("a message completed from fragments across the timeout: %v %v", done, err)
	}
	if msgs, octets := ra.Pending(); msgs != 1 || octets > 300 {
		t.Fatalf("after the timeout: %d messages, %d octets (want only the late fragment)", msgs, octets)
	}
	// Within the timeout the retransmitted fragments complete it.
	t1 := t0.Add(FragmentTimeout + 2*time.Second)
	for i, f := range frags[:len(frags)-1] {
		_, done, err := ra.AddAt(f, c, t1)
		if err != nil || done != (i == len(frags)-2) {
			t.Fatalf("fragment %d: %v %v", i+1, done, err)
		}
	}
}

// TestReassemblerOneMessageAtATime: fragments of a newer message replace
// the one in progress, so at most one request (and one response) is held
// whatever the peer sends.
func TestReassemblerOneMessageAtATime(t *testing.T) {
	c := identity{bs: 1}
	var ra Reassembler
	for mid := uint32(1); mid < 50; mid++ {
		m := bigAuthRequest()
		m.Header.MessageID = mid
		frags := mustFragments(t, m, c, 300)
		for _, f := range frags[:len(frags)-1] {
			if _, _, err := ra.Add(f, c); err != nil {
				t.Fatal(err)
			}
		}
		if msgs, octets := ra.Pending(); msgs != 1 || octets > maxReassembled {
			t.Fatalf("mid %d: %d messages, %d octets", mid, msgs, octets)
		}
	}
}

// FuzzReassembler feeds a sequence of datagrams (each prefixed by a
// two-octet length) to one Reassembler: no panic, only *Error failures, and
// never more held than the bounds allow.
func FuzzReassembler(f *testing.F) {
	frags, err := bigAuthRequest().MarshalFragments(fuzzCipher, 300)
	if err != nil {
		f.Fatal(err)
	}
	var seed []byte
	for _, i := range []int{2, 0, 1, 1, 3, len(frags) - 1} {
		if i < len(frags) {
			seed = binary.BigEndian.AppendUint16(seed, uint16(len(frags[i])))
			seed = append(seed, frags[i]...)
		}
	}
	f.Add(seed)
	f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(len(frags[0]))), frags[0]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ra Reassembler
		for len(b) >= 2 {
			n := int(binary.BigEndian.Uint16(b))
			b = b[2:]
			n = min(n, len(b))
			_, _, err := ra.Add(b[:n], fuzzCipher)
			b = b[n:]
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("error %T is not *Error: %v", err, err)
				}
			}
			if msgs, octets := ra.Pending(); msgs > 2 || octets > 2*maxReassembled {
				t.Fatalf("holding %d messages, %d octets", msgs, octets)
			}
		}
	})
}
