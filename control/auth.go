package control

import "time"

// Auth is how a tunnel authenticates: the method, both IKE identities
// and, with certificates, the signature algorithms and certificates.
type Auth struct {
	Method   string `json:"method"` // psk | certificate
	LocalID  string `json:"local_id,omitempty"`
	RemoteID string `json:"remote_id,omitempty"`
	// LocalSignature and PeerSignature name how each side signed, e.g.
	// "RFC 7427 RSASSA-PSS SHA-256 (method 14)".
	LocalSignature string `json:"local_signature,omitempty"`
	PeerSignature  string `json:"peer_signature,omitempty"`
	// Certificate is ours; ExpiresInDays is negative once it expired.
	Certificate        string    `json:"certificate,omitempty"`
	CertificateExpires time.Time `json:"certificate_expires,omitzero"`
	ExpiresInDays      float64   `json:"certificate_expires_in_days,omitempty"`
	PeerCertificate    string    `json:"peer_certificate,omitempty"`
	PeerCertExpires    time.Time `json:"peer_certificate_expires,omitzero"`
}
