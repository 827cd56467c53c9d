package diagnose

import (
	"fmt"
	"net/netip"

	"github.com/cgwproject/cgw/control"
)

// idCheck is our IKE identity tested against the address AWS saw our last
// IKE_SA_INIT come from. AWS identifies a customer gateway by its IP
// address: the identity must be that address, which behind NAT is the NAT
// device's public IP, not this host's.
type idCheck struct {
	id      netip.Addr
	idFrom  string
	view    *NATView
	checked bool   // a NAT view exists and the identity is an address
	seen    bool   // AWS saw our request come from id
	port    uint16 // the source port AWS saw, when seen
}

func (d *diagnoser) identity() idCheck {
	c := idCheck{view: d.in.NAT}
	c.id, c.idFrom = d.effectiveLocalID()
	if c.view == nil || c.view.SeenAs == nil || !c.id.IsValid() {
		return c
	}
	c.checked = true
	c.port, c.seen = c.view.SeenAs(c.id)
	return c
}

// wrong reports an identity AWS cannot accept: the address AWS saw is not
// our identity.
func (c idCheck) wrong() bool { return c.checked && !c.seen }

// natWrongIdentity is the nat check's finding for a wrong identity: a
// failed check, because AWS answers it with AUTHENTICATION_FAILED and the
// tunnel never comes up.
func (d *diagnoser) natWrongIdentity(c idCheck) {
	v := c.view
	ev := []string{
		fmt.Sprintf("local_id: %s, from %s", c.id, c.idFrom),
		fmt.Sprintf("our last IKE_SA_INIT (%s) left from %s; the hash in AWS's NAT_DETECTION_DESTINATION_IP matches %s with no source port, so AWS saw another address", d.ago(v.At), v.Local, c.id),
	}
	reload := "then run `cgwctl reload` (the tunnel restarts with the new identity)."
	if !v.BehindNAT {
		// No NAT: AWS saw exactly our local address.
		seen := v.Local.Addr()
		d.add(checkNAT, control.SeverityError,
			fmt.Sprintf("Our IKE identity %s is not the address AWS sees us at, %s: AWS rejects an identity other than the customer gateway's IP address (AUTHENTICATION_FAILED).", c.id, seen),
			append(ev, "no NAT between cgw and AWS: AWS saw our request come from "+v.Local.String()),
			fmt.Sprintf("Set local_id to %s, the address AWS sees and the customer gateway's IP address in AWS (VPC console > Customer gateways), or remove local_id to use the outside address; %s", seen, reload))
		return
	}
	summary := fmt.Sprintf("A NAT is between cgw and AWS, and AWS sees our packets from the NAT's public address, not from our IKE identity %s: AWS identifies the customer gateway by that public address and rejects this identity (AUTHENTICATION_FAILED).", c.id)
	if c.id == v.Local.Addr() || isNonPublic(c.id) {
		summary = fmt.Sprintf("A NAT is between cgw and AWS, and our IKE identity %s is this host's address behind the NAT: AWS sees the NAT's public address and rejects this identity (AUTHENTICATION_FAILED).", c.id)
	}
	d.add(checkNAT, control.SeverityError, summary,
		append(ev, fmt.Sprintf("NAT detected: AWS saw our request come from another address or port than %s", v.Local)),
		"Set local_id to the NAT device's public IP address, the address AWS sees our packets from: it is the IP address of the customer gateway in AWS (VPC console > Customer gateways, or `aws ec2 describe-customer-gateways`), and the customer_gateway tunnel_outside_address of the downloaded configuration; "+reload+
			" Keep UDP 500 and 4500 forwarded to this host and nat_keepalive on.")
}
