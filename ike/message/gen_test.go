package message

import (
	"math/rand"
	"net/netip"

	"github.com/cgwproject/cgw/ipsec"
)

// Random payload generators for the testing/quick round trips. Every
// generated value is valid and in the canonical form the decoder produces
// (nil for empty byte slices, Protocol 0 for notifies without SPI).

func randBytes(r *rand.Rand, min, max int) []byte {
	n := min + r.Intn(max-min+1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	r.Read(b)
	return b
}

func randSA(r *rand.Rand) *SA {
	sa := &SA{}
	for i := 0; i < 1+r.Intn(4); i++ {
		p := Proposal{Number: uint8(i + 1), Protocol: ipsec.Protocol(1 + r.Intn(3))}
		n := []int{0, 4, 8}[r.Intn(3)]
		p.SPI = randBytes(r, n, n)
		for j := 0; j < r.Intn(6); j++ {
			t := Transform{Type: ipsec.TransformType(1 + r.Intn(5)), ID: uint16(r.Intn(40))}
			if r.Intn(2) == 0 {
				t.KeyLength = uint16(r.Intn(3)+1) * 64
			}
			p.Transforms = append(p.Transforms, t)
		}
		sa.Proposals = append(sa.Proposals, p)
	}
	return sa
}

func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		var b [16]byte
		r.Read(b[:])
		return netip.AddrFrom16(b)
	}
	var b [4]byte
	r.Read(b[:])
	return netip.AddrFrom4(b)
}

func randTS(r *rand.Rand) *TS {
	ts := &TS{Responder: r.Intn(2) == 0}
	for i := 0; i < 1+r.Intn(4); i++ {
		v6 := r.Intn(2) == 0
		ts.Selectors = append(ts.Selectors, ipsec.TrafficSelector{
			Start: randAddr(r, v6), End: randAddr(r, v6), IPProto: uint8(r.Intn(256)),
			StartPort: uint16(r.Intn(65536)), EndPort: uint16(r.Intn(65536)),
		})
	}
	return ts
}

func randID(r *rand.Rand) *ID {
	id := &ID{Responder: r.Intn(2) == 0}
	switch r.Intn(6) {
	case 0:
		id.IDType, id.Data = IDIPv4Addr, randBytes(r, 4, 4)
	case 1:
		id.IDType, id.Data = IDIPv6Addr, randBytes(r, 16, 16)
	case 2:
		id.IDType, id.Data = IDFQDN, []byte("vpn.example.com")
	case 3:
		id.IDType, id.Data = IDRFC822, []byte("ops@example.com")
	case 4:
		id.IDType, id.Data = IDKeyID, randBytes(r, 1, 40)
	default:
		id.IDType, id.Data = IDDERASN1DN, randBytes(r, 1, 80)
	}
	return id
}

func randNotify(r *rand.Rand) *Notify {
	n := &Notify{Kind: NotifyType(r.Intn(65536)), Data: randBytes(r, 0, 40)}
	if r.Intn(2) == 0 {
		n.Protocol = ipsec.Protocol(1 + r.Intn(3))
		k := []int{4, 8}[r.Intn(2)]
		n.SPI = randBytes(r, k, k)
	}
	return n
}

func randDelete(r *rand.Rand) *Delete {
	if r.Intn(3) == 0 {
		return &Delete{Protocol: ipsec.ProtoIKE}
	}
	d := &Delete{Protocol: ipsec.ProtoESP}
	for i := 0; i < 1+r.Intn(5); i++ {
		d.SPIs = append(d.SPIs, ipsec.SPI(r.Uint32()))
	}
	return d
}

// randPayload returns one random payload of any type this package encodes.
func randPayload(r *rand.Rand) Payload {
	switch r.Intn(13) {
	case 0:
		return randSA(r)
	case 1:
		return &KE{Group: ipsec.DHGroup(r.Intn(32)), Data: randBytes(r, 0, 300)}
	case 2:
		return randID(r)
	case 3:
		return &Auth{Method: AuthMethod(1 + r.Intn(14)), Data: randBytes(r, 1, 64)}
	case 4:
		return &Nonce{Data: randBytes(r, MinNonceLen, MaxNonceLen)}
	case 5:
		return randNotify(r)
	case 6:
		return randDelete(r)
	case 7:
		return &VendorID{Data: randBytes(r, 0, 32)}
	case 8:
		return randTS(r)
	case 9:
		return &CP{CfgType: uint8(1 + r.Intn(4)), Data: randBytes(r, 0, 32)}
	case 10:
		return &Unknown{PayloadType: PayloadType(128 + r.Intn(100)), Data: randBytes(r, 0, 20)}
	case 11:
		switch r.Intn(3) {
		case 0:
			return &Cert{Encoding: CertX509Sig, Data: randBytes(r, 1, 40)}
		case 1:
			return &CertReq{Encoding: CertX509Sig, Authority: func() []byte { n := 20 * r.Intn(3); return randBytes(r, n, n) }()}
		}
		return &Unknown{PayloadType: PayloadEAP, Critical: r.Intn(2) == 0, Data: randBytes(r, 0, 20)}
	default:
		return &Notify{Kind: NotifyNATDetectionSourceIP, Data: randBytes(r, 20, 20)}
	}
}
