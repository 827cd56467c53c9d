package esp

import (
	"fmt"

	"github.com/cgwproject/cgw/ipsec"
)

// MaxInnerFor is the largest inner packet that, once sealed with the
// algorithms a, fits in limit octets of ESP (SPI through ICV): header and
// IV, the payload padded with its 2 trailer octets to the cipher's
// alignment (RFC 4303, Section 2.4), and the ICV. It needs no keys, so the
// tunnel MTU can be derived from configured or negotiated algorithms; for
// an installed SA, Outbound.MaxInner gives the same result.
func MaxInnerFor(a ipsec.Algorithms, limit int) (int, error) {
	es, ok := encrSpecs[a.Encr]
	if !ok {
		return 0, fmt.Errorf("esp: unsupported encryption transform %d", a.Encr)
	}
	icv := es.icvLen
	if es.cbcBlock {
		is, ok := integSpecs[a.Integ]
		if !ok {
			return 0, fmt.Errorf("esp: %s needs a supported integrity transform, got %d", es.name, a.Integ)
		}
		icv = is.icvLen
	}
	ct := (limit - headerLen - es.ivLen - icv) / es.align * es.align
	if ct-2 < 1 {
		return 0, nil
	}
	return ct - 2, nil
}
