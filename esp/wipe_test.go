package esp

import (
	"bytes"
	"errors"
	"testing"
)

// After Wipe the key material this package holds is zero, and the SA fails
// closed: Open rejects even authentic packets, without panicking.
func TestWipe(t *testing.T) {
	for _, ta := range testAlgs {
		t.Run(ta.name, func(t *testing.T) {
			o, in := ta.pair(t, false)
			pkt := seal(t, o, ipv4Packet(100), 1)
			in.Wipe()
			o.Wipe()
			for _, tr := range []*transform{o.t, in.t} {
				if tr.salt != [4]byte{} || (tr.integKey != nil && !bytes.Equal(tr.integKey, make([]byte, len(tr.integKey)))) {
					t.Fatalf("key material left after Wipe: salt %x, integ key %x", tr.salt, tr.integKey)
				}
			}
			if _, _, _, err := in.Open(pkt); !errors.Is(err, ErrAuth) {
				t.Errorf("Open after Wipe: %v, want ErrAuth", err)
			}
		})
	}
}
