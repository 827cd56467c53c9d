package main

import (
	"fmt"
	"io"
	"time"

	"github.com/cgwproject/cgw/control"
)

// certWarnDays is when status starts warning about our certificate's
// expiry (AWS's own certificates are rotated by AWS).
const certWarnDays = 30

// renderAuth prints a tunnel's authentication: method and identities,
// with certificates the signatures used and both certificates' expiry.
func renderAuth(w io.Writer, a *control.Auth, now time.Time) {
	if a == nil {
		return
	}
	detail(w, "auth", "%s, we are %s, AWS is %s", a.Method, orDash(a.LocalID), orDash(a.RemoteID))
	if a.Method != "certificate" {
		return
	}
	if a.LocalSignature != "" || a.PeerSignature != "" {
		detail(w, "", "we sign with %s, AWS with %s", orDash(a.LocalSignature), orDash(a.PeerSignature))
	}
	if !a.CertificateExpires.IsZero() {
		line := fmt.Sprintf("our certificate %s expires %s (%.0f days)", a.Certificate, a.CertificateExpires.UTC().Format(time.DateOnly), a.ExpiresInDays)
		switch {
		case a.ExpiresInDays < 0:
			line += " -- EXPIRED: renew it in ACM, export it and run cgwctl reload"
		case a.ExpiresInDays < certWarnDays:
			line += " -- WARNING: renew it in ACM soon, export it and run cgwctl reload"
		}
		detail(w, "", "%s", line)
	}
	if !a.PeerCertExpires.IsZero() {
		detail(w, "", "AWS certificate %s expires %s", a.PeerCertificate, a.PeerCertExpires.UTC().Format(time.DateOnly))
	}
}
