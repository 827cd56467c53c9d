package config

import (
	"errors"
	"strings"
)

// A file placeholder is the value `cgwctl import-aws` writes for a file of
// a certificate-based connection that the operator still has to export
// from ACM: "<...>", naming what belongs there. No real path looks like
// that; cgwd refuses a configuration that still holds one, so an imported
// configuration never runs half-filled.
const placeholderMsg = "is still the placeholder cgwctl import-aws wrote"

// FilePlaceholder returns the placeholder for a file described by what.
func FilePlaceholder(what string) string { return "<" + what + ">" }

// IsFilePlaceholder reports whether v is a file placeholder.
func IsFilePlaceholder(v string) bool {
	return len(v) > 2 && strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">")
}

// OnlyPlaceholders reports whether err (from Parse or Load) holds field
// errors and all of them are file placeholders still to be replaced.
func OnlyPlaceholders(err error) bool {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var fe *FieldError
		if !errors.As(e, &fe) || !strings.HasPrefix(fe.Msg, placeholderMsg) {
			return false
		}
	}
	return len(list) > 0
}

// ACMExportCommand exports the customer gateway's certificate from ACM
// (its ARN: aws ec2 describe-customer-gateways, CertificateArn).
const ACMExportCommand = "aws acm export-certificate --certificate-arn <the customer gateway's CertificateArn> --passphrase fileb://passphrase.txt > export.json"

// ACMFileStep says how to make the file of a certificate field (cert_file,
// key_file, key_passphrase_file, ca_file) from the ACM export; "" for
// other fields.
func ACMFileStep(field string) string {
	switch field {
	case "key_passphrase_file":
		return "a passphrase of your choice in passphrase.txt (chmod 600), given to the export"
	case "cert_file":
		return "jq -r '.Certificate, .CertificateChain' export.json > certificate.pem"
	case "key_file":
		return "jq -r .PrivateKey export.json > private-key.pem; chmod 600 private-key.pem"
	case "ca_file":
		return "jq -r .CertificateChain export.json > ca.pem (the subordinate and root CA of your AWS Private CA)"
	}
	return ""
}

// placeholder reports (as an error at path) a certificate file field that
// still holds an import placeholder.
func (c *checker) placeholder(path, field, v string) bool {
	if !IsFilePlaceholder(v) {
		return false
	}
	fix := "provide the file"
	if step := ACMFileStep(field); step != "" {
		fix = "export the certificate from ACM (" + ACMExportCommand + ") and write " + step
	}
	c.errorf(path, fix+"; then set "+field+" to that file's path", "%s, %s", placeholderMsg, v)
	return true
}
