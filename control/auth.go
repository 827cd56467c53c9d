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

// ConfigCertificate is a tunnel's certificate section in the running
// configuration: file names only, never key material.
type ConfigCertificate struct {
	CertFile          string `json:"cert_file" yaml:"cert_file"`
	KeyFile           string `json:"key_file" yaml:"key_file"`
	KeyPassphraseFile string `json:"key_passphrase_file,omitempty" yaml:"key_passphrase_file,omitempty"`
	CAFile            string `json:"ca_file" yaml:"ca_file"`
	CRLFile           string `json:"crl_file,omitempty" yaml:"crl_file,omitempty"`
	Signature         string `json:"signature,omitempty" yaml:"signature,omitempty"`
}
