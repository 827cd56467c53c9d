package bgp

import "fmt"

// NOTIFICATION error codes and subcodes, RFC 4271 Section 4.5 and 6, with
// the subcodes added by RFC 4486 (Cease), RFC 5492 (Unsupported Capability),
// RFC 6608 (FSM errors), RFC 7313 (ROUTE-REFRESH) and RFC 8538 (Hard Reset).
type notifyCode struct {
	name    string
	subcode map[uint8]string
}

var notifyCodes = map[uint8]notifyCode{
	1: {name: "Message Header Error", subcode: map[uint8]string{
		1: "Connection Not Synchronized",
		2: "Bad Message Length",
		3: "Bad Message Type",
	}},
	2: {name: "OPEN Message Error", subcode: map[uint8]string{
		1:  "Unsupported Version Number",
		2:  "Bad Peer AS",
		3:  "Bad BGP Identifier",
		4:  "Unsupported Optional Parameter",
		6:  "Unacceptable Hold Time",
		7:  "Unsupported Capability",
		11: "Role Mismatch",
	}},
	3: {name: "UPDATE Message Error", subcode: map[uint8]string{
		1:  "Malformed Attribute List",
		2:  "Unrecognized Well-known Attribute",
		3:  "Missing Well-known Attribute",
		4:  "Attribute Flags Error",
		5:  "Attribute Length Error",
		6:  "Invalid ORIGIN Attribute",
		8:  "Invalid NEXT_HOP Attribute",
		9:  "Optional Attribute Error",
		10: "Invalid Network Field",
		11: "Malformed AS_PATH",
	}},
	4: {name: "Hold Timer Expired"},
	5: {name: "Finite State Machine Error", subcode: map[uint8]string{
		1: "Receive Unexpected Message in OpenSent State",
		2: "Receive Unexpected Message in OpenConfirm State",
		3: "Receive Unexpected Message in Established State",
	}},
	6: {name: "Cease", subcode: map[uint8]string{
		1: "Maximum Number of Prefixes Reached",
		2: "Administrative Shutdown",
		3: "Peer De-configured",
		4: "Administrative Reset",
		5: "Connection Rejected",
		6: "Other Configuration Change",
		7: "Connection Collision Resolution",
		8: "Out of Resources",
		9: "Hard Reset",
	}},
	7: {name: "ROUTE-REFRESH Message Error", subcode: map[uint8]string{
		1: "Invalid Message Length",
	}},
}

// notificationName renders a NOTIFICATION code/subcode pair the way
// operators read it, e.g. "Cease / Maximum Number of Prefixes Reached".
func notificationName(code, subcode uint8) string {
	c, ok := notifyCodes[code]
	if !ok {
		return fmt.Sprintf("error code %d / subcode %d", code, subcode)
	}
	if subcode == 0 {
		return c.name
	}
	if s, ok := c.subcode[subcode]; ok {
		return c.name + " / " + s
	}
	return fmt.Sprintf("%s / subcode %d", c.name, subcode)
}
