package packet

import (
	"errors"
	"testing"
)

// FuzzDecode: Decode never panics; on success every offset and length it
// reports lies inside the buffer, and on failure it returns one of the
// package's errors.
func FuzzDecode(f *testing.F) {
	f.Add(buildTCP(false, tcpFlagSYN, []byte{2, 4, 5, 0xb4}, nil))
	f.Add(buildTCP(true, tcpFlagSYN, []byte{1, 2, 4, 0x23, 0x28, 1, 1, 1}, []byte("data")))
	f.Add([]byte{0x45, 0, 0, 28, 0, 0, 0x20, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0})                                                                      // UDP, MF set
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0x00, 0x10, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2})                                                                                              // non-first fragment
	f.Add([]byte{0x46, 0, 0, 24, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 1, 1, 0})                                                                                        // IPv4 options, no ICMP
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, 44, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 17, 0, 0, 8, 0, 0, 0, 1}) // IPv6 fragment header
	f.Add([]byte{0x50})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Parsed
		err := p.Decode(b)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrHeader) {
				// Other package errors are fine as long as they are errors
				// of this package (prefix "packet:").
				if len(err.Error()) < 7 || err.Error()[:7] != "packet:" {
					t.Fatalf("Decode error outside the package's vocabulary: %v", err)
				}
			}
			return
		}
		if p.Length > len(b) || p.Length < 1 {
			t.Fatalf("Length %d outside the %d-byte buffer", p.Length, len(b))
		}
		if p.L4Off > p.Length || p.L4Off < 20 && !p.NonFirstFragment {
			t.Fatalf("L4Off %d outside the header chain (Length %d)", p.L4Off, p.Length)
		}
		if !p.Src.IsValid() || !p.Dst.IsValid() {
			t.Fatalf("addresses not set: %v %v", p.Src, p.Dst)
		}
		if p.HasPorts && p.NonFirstFragment {
			t.Fatal("ports reported for a fragment without a transport header")
		}
	})
}
