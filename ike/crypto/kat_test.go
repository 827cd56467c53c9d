package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/ipsec"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPRFRFC4231 runs the HMAC-SHA-256/384/512 test cases of RFC 4231
// Section 4 (case 5 compares the 128-bit truncation) and HMAC-SHA-1 cases 1
// and 2 of RFC 2202 through PRF.Sum.
func TestPRFRFC4231(t *testing.T) {
	inputs := []struct{ key, data []byte }{
		{bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There")},
		{[]byte("Jefe"), []byte("what do ya want for nothing?")},
		{bytes.Repeat([]byte{0xaa}, 20), bytes.Repeat([]byte{0xdd}, 50)},
		{seq(25, 1), bytes.Repeat([]byte{0xcd}, 50)},
		{bytes.Repeat([]byte{0x0c}, 20), []byte("Test With Truncation")},
		{bytes.Repeat([]byte{0xaa}, 131), []byte("Test Using Larger Than Block-Size Key - Hash Key First")},
		{bytes.Repeat([]byte{0xaa}, 131), []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.")},
	}
	want := map[ipsec.PRFID][]string{
		ipsec.PRFHMACSHA2_256: {
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"a3b6167473100ee06e0c796c2955552b",
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
		},
		ipsec.PRFHMACSHA2_384: {
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"3abf34c3503b2a23a46efc619baef897",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
		},
		ipsec.PRFHMACSHA2_512: {
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
			"415fad6271580a531d4179bc891d87a6",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
		},
		// RFC 2202 Section 3, test cases 1 and 2.
		ipsec.PRFHMACSHA1: {
			"b617318655057264e28bc0b6fb378c8ef146be00",
			"effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
		},
	}
	for id, outs := range want {
		p, err := NewPRF(id)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range outs {
			got := p.Sum(inputs[i].key, inputs[i].data)
			if len(got) != p.Size() {
				t.Errorf("%s: output is %d octets, Size() %d", p, len(got), p.Size())
			}
			wb := unhex(t, w)
			if !bytes.Equal(got[:len(wb)], wb) {
				t.Errorf("%s test case %d: got %x, want %s", p, i+1, got[:len(wb)], w)
			}
		}
	}
}

// TestIKEv2KDFCAVS is a NIST CAVS SP 800-135 IKEv2 KDF vector (SHA-1,
// 64-bit nonces, 1056-bit DKM) as published with libreswan's CAVS driver.
// The 132-octet DKM is exactly the IKE key set of aes128-sha1-prfsha1
// (3*20 + 2*20 + 2*16) and of aes256gcm16-prfsha1 (3*20 + 2*36).
func TestIKEv2KDFCAVS(t *testing.T) {
	gir := unhex(t, "4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52")
	girNew := unhex(t, "863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330")
	ni := unhex(t, "32b50d5f4a3763f3")
	nr := unhex(t, "9206a04b26564cb1")
	const spii, spir = 0x34c9e7c188868785, 0x3ff77d760d2b2199
	skeyseed := unhex(t, "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7")
	dkm := unhex(t, `a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002
		a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a
		5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd1119
		8af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435
		a7a56cc4`)
	dkmChild := unhex(t, `8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c581
		1a8e7b5d1cdabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee7181
		4ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf
		285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e66499
		4d234cb4`)
	dkmChildDH := unhex(t, `bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d373016
		28190e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c04000
		52f63ebd36b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a
		05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c7054
		d56fd74c`)
	skeyseedRekey := unhex(t, "63e81194946ebd05df7df5ebf5d8750056bf1f1d")

	prf, _ := NewPRF(ipsec.PRFHMACSHA1)
	if got := prf.Sum(cat(ni, nr), gir); !bytes.Equal(got, skeyseed) {
		t.Fatalf("SKEYSEED = %x, want %x", got, skeyseed)
	}
	for _, alg := range []ipsec.Algorithms{
		{Encr: ipsec.EncrAESCBC, KeyBits: 128, PRF: ipsec.PRFHMACSHA1, Integ: ipsec.IntegHMACSHA1_96},
		{Encr: ipsec.EncrAESGCM16, KeyBits: 256, PRF: ipsec.PRFHMACSHA1},
	} {
		k, err := deriveIKEKeys(alg, ni, nr, gir, spii, spir)
		if err != nil {
			t.Fatal(err)
		}
		if got := cat(k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr); !bytes.Equal(got, dkm) {
			t.Fatalf("%v: DKM mismatch\n got %x\nwant %x", alg, got, dkm)
		}
		// CHILD SA KEYMAT without and with PFS; the CAVS DKM is longer
		// than one ESP key set, and prf+ output is a stream, so the
		// CHILD keys are its prefix.
		for _, tc := range []struct {
			shared, want []byte
		}{{nil, dkmChild}, {girNew, dkmChildDH}} {
			for _, esp := range []ipsec.Algorithms{
				{Encr: ipsec.EncrAESCBC, KeyBits: 256, Integ: ipsec.IntegHMACSHA2_256_128}, // 2*(32+32) = 128
				{Encr: ipsec.EncrAESGCM16, KeyBits: 128},                                   // 2*20 = 40
			} {
				ck, err := deriveChildKeys(prf, k.SKd, esp, tc.shared, ni, nr)
				if err != nil {
					t.Fatal(err)
				}
				got := cat(ck.EncI, ck.IntegI, ck.EncR, ck.IntegR)
				if !bytes.Equal(got, tc.want[:len(got)]) {
					t.Errorf("CHILD KEYMAT (pfs=%v, %v) mismatch\n got %x\nwant %x", tc.shared != nil, esp, got, tc.want[:len(got)])
				}
			}
		}
		// IKE SA rekey: SKEYSEED = prf(SK_d(old), g^ir(new) | Ni | Nr); the
		// new keys are prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
		rk, err := deriveRekeyedIKEKeys(alg, prf, k.SKd, girNew, ni, nr, spii, spir)
		if err != nil {
			t.Fatal(err)
		}
		spis := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, spii), spir)
		want := refPlus(ipsec.PRFHMACSHA1, skeyseedRekey, cat(ni, nr, spis), len(dkm))
		if got := cat(rk.SKd, rk.SKai, rk.SKar, rk.SKei, rk.SKer, rk.SKpi, rk.SKpr); !bytes.Equal(got, want) {
			t.Errorf("%v: rekeyed IKE keys do not derive from SKEYSEED(Rekey)", alg)
		}
	}
	// The exported API refuses the CAVS 64-bit nonces (RFC 7296 Section 3.9).
	if _, err := DeriveIKEKeys(ipsec.Algorithms{Encr: ipsec.EncrAESGCM16, KeyBits: 256, PRF: ipsec.PRFHMACSHA1}, ni, nr, gir, spii, spir); err == nil {
		t.Error("DeriveIKEKeys accepted 8-octet nonces")
	}
}

// TestECPRFC5903 runs the test vectors of RFC 5903 Section 8 through NewDH
// (the private value comes from the reader) and checks the IKEv2 encodings:
// KE data x || y, shared secret x only (RFC 5903 errata 9).
func TestECPRFC5903(t *testing.T) {
	for _, tc := range []struct {
		g                              ipsec.DHGroup
		i, gix, giy, r, grx, gry, girx string
	}{
		{
			g:    ipsec.DHECP256,
			i:    "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
			gix:  "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180",
			giy:  "5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
			r:    "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
			grx:  "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63",
			gry:  "56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
			girx: "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de",
		},
		{
			g:    ipsec.DHECP384,
			i:    "099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655e35b538041e649ee3faef896783ab194",
			gix:  "667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6de3ac808acb4bdb4c88732aee95f41aa",
			giy:  "9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38eeb9fcff3c2c947dae69b4c634573a81c",
			r:    "41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942e0308312916b8ed2960e4bd55a7448fc",
			grx:  "e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d0d1ac43a0336def96fda41d0774a3571",
			gry:  "dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1fff83fa40142209dff5eaad96db9e6386c",
			girx: "11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4d603135569b9e9d09cf5d4a270f59746",
		},
		{
			g:    ipsec.DHECP521,
			i:    "0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a095aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d4a52",
			gix:  "0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbee1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e",
			giy:  "017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10ad8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
			r:    "0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb151685eb9",
			grx:  "00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a219b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f",
			gry:  "015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
			girx: "01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3ddea",
		},
	} {
		gi := cat(unhex(t, tc.gix), unhex(t, tc.giy))
		gr := cat(unhex(t, tc.grx), unhex(t, tc.gry))
		girx := unhex(t, tc.girx)
		ini, err := NewDH(tc.g, &fixedReader{b: unhex(t, tc.i)})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := NewDH(tc.g, &fixedReader{b: unhex(t, tc.r)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ini.Public(), gi) || !bytes.Equal(resp.Public(), gr) {
			t.Fatalf("group %d: public values differ from RFC 5903", tc.g)
		}
		for _, side := range []struct {
			d    DH
			peer []byte
		}{{ini, gr}, {resp, gi}} {
			z, err := side.d.Shared(side.peer)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(z, girx) {
				t.Errorf("group %d: shared = %x, want %x", tc.g, z, girx)
			}
		}
		// Not on the curve: change y.
		bad := bytes.Clone(gr)
		bad[len(bad)-1] ^= 1
		if _, err := ini.Shared(bad); err == nil {
			t.Errorf("group %d: accepted a point off the curve", tc.g)
		}
		if _, err := ini.Shared(make([]byte, len(gr))); err == nil {
			t.Errorf("group %d: accepted (0, 0)", tc.g)
		}
	}
}

// TestX25519RFC7748 uses RFC 7748 Section 6.1 (as referenced by RFC 8031)
// and checks that low-order peer values are rejected.
func TestX25519RFC7748(t *testing.T) {
	a, err := NewDH(ipsec.DHCurve25519, &fixedReader{b: unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewDH(ipsec.DHCurve25519, &fixedReader{b: unhex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")})
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"); !bytes.Equal(a.Public(), want) {
		t.Errorf("Alice public = %x", a.Public())
	}
	if want := unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"); !bytes.Equal(b.Public(), want) {
		t.Errorf("Bob public = %x", b.Public())
	}
	k := unhex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
	for _, side := range []struct {
		d    DH
		peer []byte
	}{{a, b.Public()}, {b, a.Public()}} {
		z, err := side.d.Shared(side.peer)
		if err != nil || !bytes.Equal(z, k) {
			t.Errorf("shared = %x, %v; want %x", z, err, k)
		}
	}
	for _, low := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
	} {
		if _, err := a.Shared(unhex(t, low)); err == nil {
			t.Errorf("accepted low-order point %s", low)
		} else if !strings.Contains(err.Error(), "Curve25519") {
			t.Errorf("error %q does not name the group", err)
		}
	}
}

// TestPSKAuth compares PSKAuth with RFC 7296 Section 2.15 written out with
// crypto/hmac directly.
func TestPSKAuth(t *testing.T) {
	psk := []byte("EXAMPLEpsk1_abcdefghij.klmnopqrs")
	msg := seq(300, 9)
	nonce := seq(32, 0x77)
	skp := seq(32, 0x44)
	id := []byte{1, 0, 0, 0, 203, 0, 113, 10} // ID_IPV4_ADDR 203.0.113.10
	h := func(key []byte, data ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		for _, d := range data {
			m.Write(d)
		}
		return m.Sum(nil)
	}
	want := h(h(psk, []byte("Key Pad for IKEv2")), msg, nonce, h(skp, id))
	got := mustPSKAuth(t, ipsec.PRFHMACSHA2_256, psk, msg, nonce, skp, id)
	if !bytes.Equal(got, want) {
		t.Fatalf("PSKAuth = %x, want %x", got, want)
	}
	// Each input matters.
	for i, alt := range [][]byte{
		mustPSKAuth(t, ipsec.PRFHMACSHA2_256, []byte("other"), msg, nonce, skp, id),
		mustPSKAuth(t, ipsec.PRFHMACSHA2_256, psk, msg[1:], nonce, skp, id),
		mustPSKAuth(t, ipsec.PRFHMACSHA2_256, psk, msg, nonce[1:], skp, id),
		mustPSKAuth(t, ipsec.PRFHMACSHA2_256, psk, msg, nonce, skp[1:], id),
		mustPSKAuth(t, ipsec.PRFHMACSHA2_256, psk, msg, nonce, skp, id[1:]),
		mustPSKAuth(t, ipsec.PRFHMACSHA2_384, psk, msg, nonce, skp, id)[:32],
	} {
		if bytes.Equal(alt, want) {
			t.Errorf("variant %d gave the same AUTH", i)
		}
	}
	// Fail closed on an unknown PRF: an error, and nothing verifies, not
	// even an empty AUTH payload.
	if a, err := PSKAuth(99, psk, msg, nonce, skp, id); err == nil || a != nil {
		t.Errorf("unsupported PRF: AUTH %x, error %v; want an error", a, err)
	}
	for _, got := range [][]byte{nil, {}, want} {
		if VerifyPSKAuth(99, psk, msg, nonce, skp, id, got) {
			t.Errorf("unsupported PRF verified AUTH %x", got)
		}
	}
	if !VerifyPSKAuth(ipsec.PRFHMACSHA2_256, psk, msg, nonce, skp, id, want) {
		t.Error("the right AUTH does not verify")
	}
	if VerifyPSKAuth(ipsec.PRFHMACSHA2_256, psk, msg, nonce, skp, id, want[:31]) {
		t.Error("a truncated AUTH verifies")
	}
}

func mustPSKAuth(t *testing.T, prf ipsec.PRFID, psk, msg, nonce, skp, id []byte) []byte {
	t.Helper()
	a, err := PSKAuth(prf, psk, msg, nonce, skp, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNATDetectionHash(t *testing.T) {
	const spii, spir = 0x0102030405060708, 0x1112131415161718
	for _, tc := range []struct {
		ap   string
		addr []byte
	}{
		{"192.0.2.1:500", []byte{192, 0, 2, 1}},
		{"[::ffff:192.0.2.1]:500", []byte{192, 0, 2, 1}}, // mapped: hashed as IPv4
		{"[2001:db8::1]:4500", append([]byte{0x20, 0x01, 0x0d, 0xb8}, append(make([]byte, 11), 1)...)},
	} {
		ap := netip.MustParseAddrPort(tc.ap)
		in := binary.BigEndian.AppendUint64(nil, spii)
		in = binary.BigEndian.AppendUint64(in, spir)
		in = append(in, tc.addr...)
		in = binary.BigEndian.AppendUint16(in, ap.Port())
		want := sha1.Sum(in)
		if got := NATDetectionHash(spii, spir, ap); !bytes.Equal(got, want[:]) {
			t.Errorf("%s: got %x, want %x", tc.ap, got, want)
		}
	}
	a := NATDetectionHash(spii, 0, netip.MustParseAddrPort("192.0.2.1:500"))
	b := NATDetectionHash(spii, 0, netip.MustParseAddrPort("192.0.2.1:4500"))
	if bytes.Equal(a, b) {
		t.Error("port does not change the hash")
	}
}
