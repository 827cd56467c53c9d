package message

// Error is a decoding (or rule) failure. Notify is the NOTIFY type the
// receiver should answer with (RFC 7296, Section 2.21); zero means the
// message must be dropped silently (for example when the integrity check
// of an SK payload fails, RFC 7296 Sections 2.21 and 3.14). Data is the
// notification data that goes with Notify, if any (for
// UNSUPPORTED_CRITICAL_PAYLOAD the one-octet payload type, Section 3.10.1).
// Err is the underlying cause when there is one (for example the Cipher's
// error); Error.Unwrap returns it.
type Error struct {
	Notify NotifyType
	Reason string
	Data   []byte
	Err    error
}

func (e *Error) Error() string {
	s := "ike: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Notify != 0 {
		s += " (" + e.Notify.String() + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// syntaxError is the common INVALID_SYNTAX failure (RFC 7296, Section 3.10.1).
func syntaxError(reason string) *Error {
	return &Error{Notify: NotifyInvalidSyntax, Reason: reason}
}
