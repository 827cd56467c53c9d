package message

import "strconv"

// Names follow the IANA "IKEv2 Parameters" registry spelling so that logs
// can be grepped against RFCs and strongSwan output. Every String method
// falls back to "TypeName(n)" for values not in its table.

var exchangeNames = map[ExchangeType]string{
	IKESAInit:     "IKE_SA_INIT",
	IKEAuth:       "IKE_AUTH",
	CreateChildSA: "CREATE_CHILD_SA",
	Informational: "INFORMATIONAL",
}

var payloadNames = map[PayloadType]string{
	PayloadNone:    "NONE",
	PayloadSA:      "SA",
	PayloadKE:      "KE",
	PayloadIDi:     "IDi",
	PayloadIDr:     "IDr",
	PayloadCERT:    "CERT",
	PayloadCERTREQ: "CERTREQ",
	PayloadAUTH:    "AUTH",
	PayloadNonce:   "Nonce",
	PayloadNotify:  "Notify",
	PayloadDelete:  "Delete",
	PayloadVendor:  "VendorID",
	PayloadTSi:     "TSi",
	PayloadTSr:     "TSr",
	PayloadSK:      "SK",
	PayloadCP:      "CP",
	PayloadEAP:     "EAP",
	PayloadSKF:     "SKF",
}

var notifyNames = map[NotifyType]string{
	NotifyUnsupportedCriticalPayload:  "UNSUPPORTED_CRITICAL_PAYLOAD",
	NotifyInvalidIKESPI:               "INVALID_IKE_SPI",
	NotifyInvalidMajorVersion:         "INVALID_MAJOR_VERSION",
	NotifyInvalidSyntax:               "INVALID_SYNTAX",
	NotifyInvalidMessageID:            "INVALID_MESSAGE_ID",
	NotifyInvalidSPI:                  "INVALID_SPI",
	NotifyNoProposalChosen:            "NO_PROPOSAL_CHOSEN",
	NotifyInvalidKEPayload:            "INVALID_KE_PAYLOAD",
	NotifyAuthenticationFailed:        "AUTHENTICATION_FAILED",
	NotifySinglePairRequired:          "SINGLE_PAIR_REQUIRED",
	NotifyNoAdditionalSAs:             "NO_ADDITIONAL_SAS",
	NotifyInternalAddressFailure:      "INTERNAL_ADDRESS_FAILURE",
	NotifyFailedCPRequired:            "FAILED_CP_REQUIRED",
	NotifyTSUnacceptable:              "TS_UNACCEPTABLE",
	NotifyInvalidSelectors:            "INVALID_SELECTORS",
	NotifyTemporaryFailure:            "TEMPORARY_FAILURE",
	NotifyChildSANotFound:             "CHILD_SA_NOT_FOUND",
	NotifyInitialContact:              "INITIAL_CONTACT",
	NotifySetWindowSize:               "SET_WINDOW_SIZE",
	NotifyAdditionalTSPossible:        "ADDITIONAL_TS_POSSIBLE",
	NotifyIPCompSupported:             "IPCOMP_SUPPORTED",
	NotifyNATDetectionSourceIP:        "NAT_DETECTION_SOURCE_IP",
	NotifyNATDetectionDestIP:          "NAT_DETECTION_DESTINATION_IP",
	NotifyCookie:                      "COOKIE",
	NotifyUseTransportMode:            "USE_TRANSPORT_MODE",
	NotifyHTTPCertLookupSupported:     "HTTP_CERT_LOOKUP_SUPPORTED",
	NotifyRekeySA:                     "REKEY_SA",
	NotifyESPTFCPaddingNotSupported:   "ESP_TFC_PADDING_NOT_SUPPORTED",
	NotifyNonFirstFragmentsAlso:       "NON_FIRST_FRAGMENTS_ALSO",
	NotifyMobikeSupported:             "MOBIKE_SUPPORTED",
	NotifyMultipleAuthSupported:       "MULTIPLE_AUTH_SUPPORTED",
	NotifyRedirectSupported:           "REDIRECT_SUPPORTED",
	NotifyIKEv2FragmentationSupported: "IKEV2_FRAGMENTATION_SUPPORTED",
	NotifySignatureHashAlgorithms:     "SIGNATURE_HASH_ALGORITHMS",
	NotifyChildlessIKEv2Supported:     "CHILDLESS_IKEV2_SUPPORTED",
}

var idTypeNames = map[IDType]string{
	IDIPv4Addr:  "ID_IPV4_ADDR",
	IDFQDN:      "ID_FQDN",
	IDRFC822:    "ID_RFC822_ADDR",
	IDIPv6Addr:  "ID_IPV6_ADDR",
	IDDERASN1DN: "ID_DER_ASN1_DN",
	IDKeyID:     "ID_KEY_ID",
}

var authMethodNames = map[AuthMethod]string{
	AuthRSA:              "RSA_DIGITAL_SIGNATURE",
	AuthPSK:              "SHARED_KEY_MESSAGE_INTEGRITY_CODE",
	AuthDSS:              "DSS_DIGITAL_SIGNATURE",
	AuthECDSA256:         "ECDSA_SHA256_P256",
	AuthECDSA384:         "ECDSA_SHA384_P384",
	AuthECDSA521:         "ECDSA_SHA512_P521",
	AuthDigitalSignature: "DIGITAL_SIGNATURE",
}

func (e ExchangeType) String() string { return name(exchangeNames, e, "ExchangeType") }
func (p PayloadType) String() string  { return name(payloadNames, p, "PayloadType") }
func (n NotifyType) String() string   { return name(notifyNames, n, "NotifyType") }
func (t IDType) String() string       { return name(idTypeNames, t, "IDType") }
func (a AuthMethod) String() string   { return name(authMethodNames, a, "AuthMethod") }

func name[K ~uint8 | ~uint16](table map[K]string, k K, typ string) string {
	if s, ok := table[k]; ok {
		return s
	}
	return typ + "(" + strconv.FormatUint(uint64(k), 10) + ")"
}
