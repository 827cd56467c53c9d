package message

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// fuzzCipher lets the fuzzer reach the inner payload decoders: with a real
// Cipher every mutation of an SK body would just fail the ICV.
var fuzzCipher = identity{bs: 1}

// seedMessages are the seed corpus: a real IKE_SA_INIT request, the
// hand-written packet of TestDecodeKnownInitRequest, encrypted exchanges
// (under fuzzCipher) and SKF fragments.
func seedMessages(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	add := func(name string, m *Message, c Cipher) {
		b, err := m.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = b
	}
	add("ike_sa_init_request", sampleInitRequest(), nil)
	add("ike_sa_init_response_cookie", &Message{Header: Header{SPIi: 7, Exchange: IKESAInit, Flags: FlagResponse},
		Payloads: []Payload{&Notify{Kind: NotifyCookie, Data: bytes.Repeat([]byte{9}, 16)}}}, nil)
	add("ike_auth_request", sampleAuthRequest(), fuzzCipher)
	add("create_child_sa_request", sampleCreateChild(), fuzzCipher)
	add("informational_delete", sampleInformational(), fuzzCipher)
	add("informational_empty", &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: Informational}}, fuzzCipher)
	known, err := hex.DecodeString(knownInitRequestHex)
	if err != nil {
		t.Fatal(err)
	}
	seeds["known_ike_sa_init"] = known
	frags, err := bigAuthRequest().MarshalFragments(fuzzCipher, 400)
	if err != nil {
		t.Fatal(err)
	}
	seeds["skf_fragment_1"] = frags[0]
	seeds["skf_fragment_2"] = frags[1]
	return seeds
}

func TestSeedCorpus(t *testing.T) {
	for name, b := range seedMessages(t) {
		if name == "skf_fragment_1" || name == "skf_fragment_2" {
			continue
		}
		if _, err := Parse(b, fuzzCipher); err != nil {
			t.Errorf("seed %s does not parse: %v", name, err)
		}
	}
	if !*updateCorpus {
		return
	}
	for _, target := range []string{"FuzzParse", "FuzzParseHeader"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seedMessages(t) {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if int(h.Length) != len(b) || h.MajorVersion != 2 {
			t.Fatalf("accepted header %+v for %d octets", h, len(b))
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ra Reassembler
		ra.Add(b, fuzzCipher) // must not panic

		m, err := Parse(b, fuzzCipher)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		// Whatever parses re-encodes and parses back to the same payloads.
		var c Cipher
		if isEncrypted(b) {
			c = fuzzCipher
		}
		out, err := m.Marshal(c)
		if err != nil {
			t.Fatalf("re-encode of %s: %v", m, err)
		}
		m2, err := Parse(out, c)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", m, err)
		}
		if !reflect.DeepEqual(m.Payloads, m2.Payloads) {
			t.Fatalf("round trip differs:\n %v\n %v", m.Payloads, m2.Payloads)
		}
	})
}

// isEncrypted reports whether the message's payload chain contains SK.
func isEncrypted(b []byte) bool {
	raws, err := splitChain(PayloadType(b[16]), b[HeaderLen:])
	return err == nil && len(raws) > 0 && raws[len(raws)-1].typ == PayloadSK
}
