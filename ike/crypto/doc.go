// Package crypto is cgw's IKEv2 cryptography: the table of supported
// transforms (ENCR, PRF, INTEG, DH, ESN), prf+ and the key derivations of
// RFC 7296 Sections 2.13, 2.14, 2.17 and 2.18, the Diffie-Hellman groups
// (MODP, RFC 5114, NIST ECP and Curve25519) with peer public value
// validation, the SK payload ciphers (AES-CBC with HMAC, AES-GCM-16 per
// RFC 5282, ChaCha20-Poly1305 per RFC 7634), the PSK AUTH octets (RFC 7296,
// Section 2.15) and the NAT detection hash (Section 2.23).
//
// Everything here is stateless or immutable after construction and safe for
// concurrent use, except DH values, which belong to one exchange. Functions
// return errors (prefixed "ike/crypto:") instead of panicking on bad input,
// and no error or String output ever contains key material.
//
// The package does not import ike/message: NewIKECipher returns a Cipher
// whose method set is identical to message.Cipher, so the value can be
// assigned to a message.Cipher directly.
package crypto
