package ike

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/cgwproject/cgw/ike/crypto"
	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/ipsec"
)

// Defaults applied by AddPeer to zero fields of a PeerConfig: AWS's tunnel
// defaults (package ipsec, aws.go) and strongSwan's retransmission timing
// (4 s, base 1.8, 5 tries).
const (
	DefaultIKELifetime       = ipsec.AWSIKELifetime
	DefaultChildLifetime     = ipsec.AWSChildLifetime
	DefaultRekeyMargin       = ipsec.AWSRekeyMargin
	DefaultDPDRetries        = ipsec.AWSDPDRetries
	DefaultReplayWindow      = ipsec.AWSReplayWindow
	DefaultRetransmitTimeout = 4 * time.Second
	DefaultRetransmitTries   = 5
)

// Implementation constants (not from any specification).
const (
	retransmitBase    = 1.8              // strongSwan retransmit_base
	nonceLen          = 32               // octets; RFC 7296 2.10 wants at least half the PRF key size
	halfOpenTimeout   = 30 * time.Second // responder drops an IKE SA that never completed IKE_AUTH
	oldInboundLinger  = 5 * time.Second  // a rekeyed CHILD SA's inbound half stays for in-flight packets
	retryMinDelay     = 5 * time.Second  // first re-initiation delay after a failure
	retryMaxDelay     = 2 * time.Minute  // cap of the doubling
	restartDelay      = 2 * time.Second  // re-initiation after the peer deleted the IKE SA
	tempFailMinDelay  = 2 * time.Second  // retry after TEMPORARY_FAILURE in [min, max): the peer's own
	tempFailMaxDelay  = 8 * time.Second  // exchange may need a retransmission (4 s) to finish
	defaultCookieHalf = 32               // half-open IKE SAs before COOKIEs are demanded
)

// peerConfig is a validated PeerConfig with every default filled in. It is
// a private copy: the caller's slices are not aliased.
type peerConfig struct {
	PeerConfig
	localID, remoteID Identity // resolved lazily when zero (see localIdentity)
}

// validate checks a PeerConfig and returns a defaulted private copy. Errors
// name the field and say how to fix it.
func validate(in PeerConfig) (*peerConfig, error) {
	pc := in
	if pc.Name == "" {
		return nil, fmt.Errorf("ike: peer config: Name is empty; every tunnel needs a unique name")
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("ike: peer %q: "+format, append([]any{pc.Name}, a...)...)
	}
	if !pc.RemoteAddr.IsValid() || pc.RemoteAddr.IsUnspecified() {
		return nil, errf("RemoteAddr is not set; set it to the AWS tunnel outside IP")
	}
	pc.RemoteAddr = pc.RemoteAddr.Unmap()
	if pc.LocalAddr.IsValid() {
		pc.LocalAddr = pc.LocalAddr.Unmap()
		if pc.LocalAddr.Is4() != pc.RemoteAddr.Is4() {
			return nil, errf("LocalAddr %s and RemoteAddr %s are of different address families", pc.LocalAddr, pc.RemoteAddr)
		}
	}
	if pc.Cert != nil {
		if len(pc.Cert.Chain) == 0 || pc.Cert.Key == nil {
			return nil, errf("certificate authentication without a certificate or private key; set cert_file and key_file")
		}
		if len(pc.Cert.Roots)+len(pc.Cert.Intermediates) == 0 {
			return nil, errf("certificate authentication without a CA; set ca_file to the CA bundle that issued the peer's certificate")
		}
	} else if len(pc.PSK) == 0 {
		return nil, errf("PSK is empty; set the tunnel's pre-shared key")
	}
	pc.PSK = append([]byte(nil), pc.PSK...)
	if len(pc.IKEProposals) == 0 {
		return nil, errf("no IKE proposals; configure at least one, e.g. aes128-sha1-modp1024")
	}
	if len(pc.ESPProposals) == 0 {
		return nil, errf("no ESP proposals; configure at least one, e.g. aes128-sha1-modp1024")
	}
	var err error
	if pc.IKEProposals, err = checkProposals(pc.Name, "IKEProposals", pc.IKEProposals, true); err != nil {
		return nil, err
	}
	if pc.ESPProposals, err = checkProposals(pc.Name, "ESPProposals", pc.ESPProposals, false); err != nil {
		return nil, err
	}
	for _, id := range []struct {
		name string
		id   *Identity
	}{{"LocalID", &pc.LocalID}, {"RemoteID", &pc.RemoteID}} {
		if id.id.Type == 0 {
			if len(id.id.Data) != 0 {
				return nil, errf("%s has data but no type", id.name)
			}
			continue
		}
		if err := checkIdentity(*id.id); err != nil {
			return nil, errf("%s: %v", id.name, err)
		}
		id.id.Data = append([]byte(nil), id.id.Data...)
	}

	if err := defaultTimers(&pc, errf); err != nil {
		return nil, err
	}
	switch pc.DPDAction {
	case DPDRestart, DPDClear, DPDNone:
	default:
		return nil, errf("DPDAction %d is unknown; use restart, clear or none", pc.DPDAction)
	}
	switch pc.StartAction {
	case StartInitiate, StartRespond:
	default:
		return nil, errf("StartAction %d is unknown; use initiate or respond", pc.StartAction)
	}
	if err := defaultSelectors(&pc, errf); err != nil {
		return nil, err
	}
	if pc.ReplayWindow == 0 {
		pc.ReplayWindow = DefaultReplayWindow
	} else if pc.ReplayWindow < 0 {
		pc.ReplayWindow = 0 // anti-replay off
	}
	if pc.RetransmitTimeout == 0 {
		pc.RetransmitTimeout = DefaultRetransmitTimeout
	}
	if pc.RetransmitTimeout < 0 {
		return nil, errf("RetransmitTimeout must be positive")
	}
	switch {
	case pc.FragmentSize == 0:
		pc.FragmentSize = DefaultFragmentSize
	case pc.FragmentSize == -1:
	case pc.FragmentSize < MinFragmentSize || pc.FragmentSize > MaxFragmentSize:
		return nil, errf("FragmentSize %d is out of range; use %d-%d octets (0: %d), or -1 to disable IKE fragmentation",
			pc.FragmentSize, MinFragmentSize, MaxFragmentSize, DefaultFragmentSize)
	}
	if pc.RetransmitTries == 0 {
		pc.RetransmitTries = DefaultRetransmitTries
	}
	if pc.RetransmitTries < 0 {
		return nil, errf("RetransmitTries must be positive")
	}
	return &peerConfig{PeerConfig: pc}, nil
}

// defaultTimers fills in and checks the lifetimes, rekey margin and fuzz,
// and DPD settings of a PeerConfig being validated.
func defaultTimers(pc *PeerConfig, errf func(string, ...any) error) error {
	if pc.IKELifetime == 0 {
		pc.IKELifetime = DefaultIKELifetime
	}
	if pc.ChildLifetime == 0 {
		pc.ChildLifetime = DefaultChildLifetime
	}
	if pc.RekeyMargin == 0 {
		pc.RekeyMargin = DefaultRekeyMargin
	}
	if pc.IKELifetime < 0 || pc.ChildLifetime < 0 || pc.RekeyMargin < 0 {
		return errf("lifetimes and the rekey margin must be positive")
	}
	if pc.RekeyFuzz < 0 || pc.RekeyFuzz > 100 {
		return errf("RekeyFuzz %d is outside 0..100 (percent of the rekey margin)", pc.RekeyFuzz)
	}
	// The rekey moment is lifetime - margin - rand(margin*fuzz/100); it must
	// stay positive with the largest fuzz.
	for _, l := range []struct {
		name string
		d    time.Duration
	}{{"IKELifetime", pc.IKELifetime}, {"ChildLifetime", pc.ChildLifetime}} {
		if l.d <= pc.RekeyMargin+pc.RekeyMargin*time.Duration(pc.RekeyFuzz)/100 {
			return errf("%s %s is too short for RekeyMargin %s with RekeyFuzz %d%%; the lifetime must exceed margin*(1+fuzz/100)",
				l.name, l.d, pc.RekeyMargin, pc.RekeyFuzz)
		}
	}
	if pc.DPDInterval < 0 {
		return errf("DPDInterval must not be negative (0 disables DPD)")
	}
	if pc.DPDRetries == 0 {
		pc.DPDRetries = DefaultDPDRetries
	}
	if pc.DPDRetries < 0 {
		return errf("DPDRetries must be positive")
	}
	return nil
}

// defaultSelectors fills in the traffic selectors (everything of the
// outer address family when none are given) and checks them.
func defaultSelectors(pc *PeerConfig, errf func(string, ...any) error) error {
	all := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if pc.RemoteAddr.Is6() {
		all = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	if len(pc.TSLocal) == 0 {
		pc.TSLocal = []ipsec.TrafficSelector{ipsec.TSFromPrefix(all)}
	}
	if len(pc.TSRemote) == 0 {
		pc.TSRemote = []ipsec.TrafficSelector{ipsec.TSFromPrefix(all)}
	}
	pc.TSLocal = append([]ipsec.TrafficSelector(nil), pc.TSLocal...)
	pc.TSRemote = append([]ipsec.TrafficSelector(nil), pc.TSRemote...)
	for _, set := range []struct {
		name string
		ts   []ipsec.TrafficSelector
	}{{"TSLocal", pc.TSLocal}, {"TSRemote", pc.TSRemote}} {
		for _, ts := range set.ts {
			if !ts.Start.IsValid() || !ts.End.IsValid() || ts.Start.Is4() != ts.End.Is4() ||
				ts.End.Less(ts.Start) || ts.EndPort < ts.StartPort {
				return errf("%s selector %v is not a valid range", set.name, ts)
			}
		}
	}
	return nil
}

func checkIdentity(id Identity) error {
	switch message.IDType(id.Type) {
	case message.IDIPv4Addr:
		if len(id.Data) != 4 {
			return fmt.Errorf("an ID_IPV4_ADDR identity needs 4 octets, got %d", len(id.Data))
		}
	case message.IDIPv6Addr:
		if len(id.Data) != 16 {
			return fmt.Errorf("an ID_IPV6_ADDR identity needs 16 octets, got %d", len(id.Data))
		}
	case message.IDFQDN, message.IDRFC822, message.IDKeyID, message.IDDERASN1DN:
		if len(id.Data) == 0 {
			return fmt.Errorf("identity of type %d is empty", id.Type)
		}
	default:
		return fmt.Errorf("identity type %d is not supported", id.Type)
	}
	return nil
}

// checkProposals verifies that every transform is implemented and that the
// proposal is complete, and returns a deep copy.
func checkProposals(peer, field string, props []ipsec.Proposal, ike bool) ([]ipsec.Proposal, error) {
	out := make([]ipsec.Proposal, len(props))
	for i, p := range props {
		errf := func(format string, a ...any) error {
			return fmt.Errorf("ike: peer %q: %s[%d] (%s): %s", peer, field, i, p.String(), fmt.Sprintf(format, a...))
		}
		if len(p.Encrs) == 0 {
			return nil, errf("no encryption algorithm")
		}
		aead := p.Encrs[0].ID.IsAEAD()
		for _, e := range p.Encrs {
			if e.ID.IsAEAD() != aead {
				return nil, errf("mixes AEAD and non-AEAD ciphers; put them in separate proposals")
			}
			if !crypto.Supported(ipsec.TransformENCR, uint16(e.ID), e.KeyBits) {
				return nil, errf("cipher %s is not supported", e.Name())
			}
		}
		if !aead && len(p.Integs) == 0 {
			return nil, errf("a non-AEAD cipher needs an integrity algorithm")
		}
		if aead && len(p.Integs) != 0 {
			return nil, errf("an AEAD cipher takes no integrity algorithm")
		}
		for _, in := range p.Integs {
			if !crypto.Supported(ipsec.TransformINTEG, uint16(in), 0) {
				return nil, errf("integrity algorithm %d is not supported", in)
			}
		}
		if ike {
			if len(p.PRFs) == 0 {
				return nil, errf("an IKE proposal needs a PRF")
			}
			if len(p.DHGroups) == 0 {
				return nil, errf("an IKE proposal needs a Diffie-Hellman group")
			}
			if len(p.ESN) != 0 {
				return nil, errf("ESN applies to ESP proposals only")
			}
		} else if len(p.PRFs) != 0 {
			return nil, errf("an ESP proposal takes no PRF")
		}
		for _, prf := range p.PRFs {
			if !crypto.Supported(ipsec.TransformPRF, uint16(prf), 0) {
				return nil, errf("PRF %d is not supported", prf)
			}
		}
		for _, g := range p.DHGroups {
			if g == ipsec.DHNone || !crypto.Supported(ipsec.TransformDH, uint16(g), 0) {
				return nil, errf("Diffie-Hellman group %d is not supported", g)
			}
		}
		out[i] = ipsec.Proposal{
			Encrs:    append([]ipsec.EncrKey(nil), p.Encrs...),
			PRFs:     append([]ipsec.PRFID(nil), p.PRFs...),
			Integs:   append([]ipsec.IntegID(nil), p.Integs...),
			DHGroups: append([]ipsec.DHGroup(nil), p.DHGroups...),
			ESN:      append([]bool(nil), p.ESN...),
		}
	}
	return out, nil
}
