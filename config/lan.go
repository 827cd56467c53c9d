package config

import (
	"fmt"
	"net/netip"
	"time"
)

// GlobalBGP is the file's top-level bgp section: settings of the one BGP
// speaker that are not tied to a connection.
type GlobalBGP struct {
	// LANNeighbors are the on-premises routers cgw peers with: it announces
	// them the prefixes learned from AWS and learns the on-premises
	// prefixes to announce to AWS.
	LANNeighbors []LANNeighbor
}

// LANNeighbor is one BGP neighbor on the LAN side. ASN equal to the
// connections' bgp.asn makes it iBGP, any other eBGP.
type LANNeighbor struct {
	Name    string // default "lan-" + Address
	Address netip.Addr
	ASN     uint32
	// LocalAddress sources the session; the zero Addr lets the kernel pick.
	LocalAddress        netip.Addr
	HoldTime, Keepalive time.Duration
	Password            Secret
	Import              LANImport
	Export              LANExport
}

// LANImport is what cgw accepts from a LAN neighbor (and so announces to
// AWS). 169.254.0.0/16, fe80::/10, paths through an Amazon-side ASN and,
// unless AcceptDefault, the default route are never accepted.
type LANImport struct {
	// Allow lists the prefixes the neighbor may send: a received prefix
	// must lie inside one of them. Empty = every prefix not refused above.
	Allow         []netip.Prefix
	AcceptDefault bool
}

// LANExport shapes what cgw announces to a LAN neighbor: the prefixes
// learned from AWS, next hop self. A path over a connection's preferred
// tunnel carries MED (eBGP) or LocalPref (iBGP); over the other tunnel MED
// + LANBackupMEDPenalty or LocalPref - LANBackupLocalPrefPenalty, so the
// LAN prefers the gateway whose preferred tunnel is up.
type LANExport struct {
	MED       uint32
	LocalPref uint32 // iBGP only
}

// LAN defaults and the preference steps between a gateway's preferred and
// other tunnel. Two gateways' base MED (or local_pref) should differ by
// less than the step, so that a gateway that lost its preferred tunnel
// ranks behind one that still has it.
const (
	DefaultLANHoldTime          = 9 * time.Second
	DefaultLANLocalPref         = 200
	LANBackupMEDPenalty         = 100
	LANBackupLocalPrefPenalty   = 100
	maxLANMED                   = 1<<32 - 1 - LANBackupMEDPenalty
	lanNeighborsPath            = "bgp.lan_neighbors"
	lanDefaultNameFmt           = "lan-%s"
	lanLinkLocal4, lanLinkLocal = "169.254.0.0/16", "fe80::/10"
)

type rawGlobalBGP struct {
	LANNeighbors *[]rawLANNeighbor `yaml:"lan_neighbors"`
}

type rawLANNeighbor struct {
	Name         *string       `yaml:"name"`
	Address      *string       `yaml:"address"`
	ASN          *int64        `yaml:"asn"`
	LocalAddress *string       `yaml:"local_address"`
	HoldTime     *string       `yaml:"hold_time"`
	Keepalive    *string       `yaml:"keepalive"`
	Password     *string       `yaml:"password"`
	PasswordFile *string       `yaml:"password_file"`
	Import       *rawLANImport `yaml:"import"`
	Export       *rawLANExport `yaml:"export"`
}

type rawLANImport struct {
	Allow         *[]string `yaml:"allow"`
	AcceptDefault *bool     `yaml:"accept_default"`
}

type rawLANExport struct {
	MED       *int64 `yaml:"med"`
	LocalPref *int64 `yaml:"local_pref"`
}

// IBGP reports whether n is an iBGP neighbor of a speaker with ASN ours.
func (n *LANNeighbor) IBGP(ours uint32) bool { return n.ASN == ours }

// ourASN is the speaker's ASN: the first BGP connection's (the daemon
// requires them all to be equal), or 0 without BGP connections.
func (cfg *Config) ourASN() uint32 {
	for _, c := range cfg.Connections {
		if c.BGP != nil && c.BGP.ASN != 0 {
			return c.BGP.ASN
		}
	}
	return 0
}

// lan checks the top-level bgp section; it runs after the connections.
func (c *checker) lan(r *rawGlobalBGP, cfg *Config) {
	if r == nil || r.LANNeighbors == nil {
		return
	}
	ours := cfg.ourASN()
	if ours == 0 && len(*r.LANNeighbors) > 0 {
		c.errorf(lanNeighborsPath, "add a connection with `routing: bgp`: LAN neighbors share its BGP speaker and ASN",
			"LAN neighbors need a BGP connection")
	}
	aws := map[uint32]bool{}
	inside := map[netip.Addr]bool{}
	for _, conn := range cfg.Connections {
		if conn.BGP != nil {
			aws[conn.BGP.PeerASN] = true
		}
		for _, t := range conn.Tunnels {
			inside[t.InsideLocal()], inside[t.InsidePeer()] = true, true
		}
	}
	names, addrs := map[string]string{}, map[netip.Addr]string{}
	for i := range *r.LANNeighbors {
		path := indexPath(lanNeighborsPath, i)
		n := c.lanNeighbor(path, &(*r.LANNeighbors)[i], ours, aws, inside)
		if n.Name != "" {
			if first, dup := names[n.Name]; dup {
				c.errorf(path+".name", "give every LAN neighbor a unique name", "name %q is already used by %s", n.Name, first)
			}
			names[n.Name] = path
		}
		if n.Address.IsValid() {
			if first, dup := addrs[n.Address]; dup {
				c.errorf(path+".address", "list each LAN router once", "address %v is already used by %s", n.Address, first)
			}
			addrs[n.Address] = path
		}
		cfg.BGP.LANNeighbors = append(cfg.BGP.LANNeighbors, n)
	}
}

func (c *checker) lanNeighbor(path string, r *rawLANNeighbor, ours uint32, aws map[uint32]bool, inside map[netip.Addr]bool) LANNeighbor {
	var n LANNeighbor
	if r.Address == nil || *r.Address == "" {
		c.errorf(path+".address", "add `address:` with the LAN router's address on the shared subnet", "missing address")
	} else {
		n.Address = c.addr(path+".address", *r.Address, "write the LAN router's IP address, e.g. 10.1.0.254")
		a := n.Address
		switch {
		case !a.IsValid():
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
			c.errorf(path+".address", "write the LAN router's unicast address", "%v is not a unicast address", a)
		case inside[a] || netip.MustParsePrefix(lanLinkLocal4).Contains(a):
			c.errorf(path+".address", "169.254.0.0/16 holds the tunnels' inside addresses; write the LAN router's address", "%v is a tunnel inside (link-local) address", a)
		}
	}
	n.Name = fmt.Sprintf(lanDefaultNameFmt, n.Address)
	if r.Name != nil {
		if !nameRE.MatchString(*r.Name) {
			c.errorf(path+".name", nameFix, "invalid name %q", *r.Name)
		} else {
			n.Name = *r.Name
		}
	}
	if r.ASN == nil {
		c.errorf(path+".asn", "add `asn:` with the LAN router's ASN (the connections' bgp.asn for iBGP)", "missing ASN")
	} else {
		n.ASN = c.asn(path+".asn", *r.ASN, "use the LAN router's ASN (1-4294967294)")
		if aws[n.ASN] {
			c.errorf(path+".asn", "use the LAN router's own ASN: AWS would drop every on-premises route whose AS path holds its ASN",
				"ASN %d is the Amazon-side ASN (peer_asn) of a connection", n.ASN)
		}
	}
	n.LocalAddress = c.optAddr(path+".local_address", r.LocalAddress, "write this host's address on the LAN router's subnet, or remove the key")
	if n.LocalAddress.IsValid() && n.Address.IsValid() && n.LocalAddress.Is4() != n.Address.Is4() {
		c.errorf(path+".local_address", "use an address of the same family as address", "%v and %v are of different address families", n.LocalAddress, n.Address)
	}
	n.HoldTime = c.duration(path+".hold_time", r.HoldTime, DefaultLANHoldTime)
	if n.HoldTime < 3*time.Second || n.HoldTime > 65535*time.Second || n.HoldTime%time.Second != 0 {
		c.errorf(path+".hold_time", "use whole seconds between 3s and 65535s (RFC 4271, Section 4.2); a short one (9s) moves the LAN to the other gateway quickly when this one dies",
			"invalid hold time %v", n.HoldTime)
	}
	n.Keepalive = c.duration(path+".keepalive", r.Keepalive, n.HoldTime/3)
	if n.Keepalive < time.Second || n.Keepalive >= n.HoldTime || n.Keepalive%time.Second != 0 {
		c.errorf(path+".keepalive", "use whole seconds, at least 1s and below hold_time (a third of it)", "invalid keepalive %v for hold time %v", n.Keepalive, n.HoldTime)
	}
	n.Password = c.password(path, r.Password, r.PasswordFile)
	if r.Import != nil {
		n.Import.Allow = c.prefixList(path+".import.allow", r.Import.Allow, nil,
			"list the on-premises prefixes this router may announce (a received prefix must lie inside one)")
		if r.Import.AcceptDefault != nil {
			n.Import.AcceptDefault = *r.Import.AcceptDefault
		}
		for i, p := range n.Import.Allow {
			if p.Overlaps(netip.MustParsePrefix(lanLinkLocal4)) && p.Bits() >= 16 {
				c.errorf(indexPath(path+".import.allow", i), "remove it: 169.254.0.0/16 is never announced to AWS", "%v is link-local", p)
			}
		}
	}
	if len(n.Import.Allow) == 0 {
		c.warnf(path+".import.allow", "no allow-list: every prefix the router sends (but link-local and the default route) is announced to AWS; list the on-premises prefixes")
	}
	ibgp := n.IBGP(ours)
	if r.Export != nil {
		n.Export.MED = uint32(c.intRange(path+".export.med", r.Export.MED, 0, 0, maxLANMED,
			fmt.Sprintf("use 0-%d: the other tunnel's paths get %d more", maxLANMED, LANBackupMEDPenalty)))
		n.Export.LocalPref = uint32(c.intRange(path+".export.local_pref", r.Export.LocalPref, DefaultLANLocalPref, LANBackupLocalPrefPenalty+1, 1<<32-1,
			fmt.Sprintf("use %d-4294967295: the other tunnel's paths get %d less", LANBackupLocalPrefPenalty+1, LANBackupLocalPrefPenalty)))
		if r.Export.LocalPref != nil && !ibgp && ours != 0 {
			c.errorf(path+".export.local_pref", "use export.med toward an eBGP neighbor, or set asn to ours for iBGP", "local_pref is sent to iBGP neighbors only (asn %d is not ours, %d)", n.ASN, ours)
		}
	} else {
		n.Export.LocalPref = DefaultLANLocalPref
	}
	return n
}
