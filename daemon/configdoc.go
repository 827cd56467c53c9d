package daemon

import (
	"context"
	"net/netip"
	"strings"

	"github.com/cgwproject/cgw/config"
	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/ipsec"
)

// EffectiveConfig implements control.Backend.
func (d *Daemon) EffectiveConfig(context.Context) (*control.ConfigDoc, error) {
	return configDoc(d.Config()), nil
}

// configDoc renders c in the file's schema with every default filled in.
// No secret is copied: PSKs and the BGP password become control.Redacted.
func configDoc(c *config.Config) *control.ConfigDoc {
	doc := &control.ConfigDoc{
		File:    c.Source,
		Version: c.Version,
		Log:     control.ConfigLog{Format: string(c.Log.Format), Level: strings.ToLower(c.Log.Level.String())},
		Control: control.ConfigCtl{Socket: c.Control.Socket},
		Metrics: control.ConfigMetric{Listen: c.Metrics.Listen},
		Routes: control.ConfigRoutes{Table: c.Routes.Table, Protocol: c.Routes.Protocol, Metric: c.Routes.Metric,
			FwMark: c.Routes.FwMark, RulePriority: c.Routes.RulePriority},
		Connections: []control.ConfigConn{},
	}
	for i := range c.Connections {
		cc := &c.Connections[i]
		out := control.ConfigConn{
			Name:         cc.Name,
			LocalAddress: addrString(cc.LocalAddress),
			LocalID:      addrString(cc.LocalID),
			Routing:      string(cc.Routing),
			Tunnels:      []control.ConfigTunnel{},
		}
		if b := cc.BGP; b != nil {
			out.BGP = &control.ConfigBGP{
				ASN: b.ASN, PeerASN: b.PeerASN,
				HoldTime: control.SecondsOf(b.HoldTime), Keepalive: control.SecondsOf(b.Keepalive),
				Advertise: prefixStrings(b.Advertise), Mode: string(b.Mode),
				SecondaryPrepend: b.SecondaryPrepend, SecondaryMED: b.SecondaryMED, PrefixLimit: b.PrefixLimit,
				AdvertiseKernel: prefixStrings(b.AdvertiseKernel),
				Import: control.ConfigImport{Allow: prefixStrings(b.Import.Allow), Deny: prefixStrings(b.Import.Deny),
					AcceptDefault: b.Import.AcceptDefault},
			}
			if len(b.AdvertiseKernel) == 0 {
				out.BGP.AdvertiseKernel = nil
			}
			if len(b.Password) > 0 {
				out.BGP.Password = control.Redacted
			}
		}
		if cc.Static != nil {
			out.Static = &control.ConfigStatic{RemotePrefixes: prefixStrings(cc.Static.RemotePrefixes)}
		}
		for j := range cc.Tunnels {
			out.Tunnels = append(out.Tunnels, tunnelDoc(&cc.Tunnels[j]))
		}
		doc.Connections = append(doc.Connections, out)
	}
	doc.BGP = lanConfigDoc(c)
	return doc
}

func tunnelDoc(t *config.Tunnel) control.ConfigTunnel {
	out := control.ConfigTunnel{
		Name:          t.Name,
		PeerAddress:   t.PeerAddress.String(),
		PeerID:        t.PeerID.String(),
		PSKFile:       t.PSKFile,
		InsideCIDR:    t.InsideCIDR.String(),
		IKEProposals:  proposalStrings(t.IKEProposals),
		ESPProposals:  proposalStrings(t.ESPProposals),
		IKELifetime:   control.SecondsOf(t.IKELifetime),
		ChildLifetime: control.SecondsOf(t.ChildLifetime),
		RekeyMargin:   control.SecondsOf(t.RekeyMargin),
		RekeyFuzz:     t.RekeyFuzz,
		StartupAction: string(t.StartupAction),
		ForceEncap:    t.ForceEncap,
		Encapsulation: string(t.Encapsulation),
		NATKeepalive:  control.SecondsOf(t.NATKeepalive),
		ReplayWindow:  t.ReplayWindow,
		MTU:           t.MTU,
		MSSClamp:      t.MSSClamp,
		Oversize:      string(t.Oversize),
		SourceCheck:   string(t.SourceCheck),
		ExtraSources:  prefixStrings(t.ExtraSources),
	}
	out.IKEFragmentSize = t.IKEFragmentSize
	if t.Auth == config.AuthCertificate {
		certDoc(&out, t)
	} else if t.PSKFile == "" {
		out.PSK = control.Redacted
	}
	if len(t.ExtraSources) == 0 {
		out.ExtraSources = nil
	}
	if o := t.AWS; o != nil {
		out.AWSTunnelOptions = &control.ConfigAWSTunnel{Phase1: awsPhaseDoc(o.Phase1), Phase2: awsPhaseDoc(o.Phase2),
			RekeyMargin: control.SecondsOf(o.RekeyMargin), DPDTimeout: control.SecondsOf(o.DPDTimeout),
			DPDTimeoutAction: o.DPDTimeoutAction, StartupAction: o.StartupAction}
	}
	if t.InsideIPv6CIDR.IsValid() {
		out.InsideIPv6CIDR = t.InsideIPv6CIDR.String()
	}
	out.DPD = control.ConfigDPD{Interval: control.SecondsOf(t.DPD.Interval), Retries: t.DPD.Retries, Action: string(t.DPD.Action)}
	out.TrafficSelectors = control.ConfigTS{Local: prefixStrings(t.TrafficSelectors.Local), Remote: prefixStrings(t.TrafficSelectors.Remote)}
	if t.Keepalive.Target.IsValid() {
		out.Keepalive = &control.ConfigKeepalive{Target: t.Keepalive.Target.String(), Interval: control.SecondsOf(t.Keepalive.Interval)}
	}
	return out
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func proposalStrings(ps []ipsec.Proposal) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func awsPhaseDoc(p config.AWSPhaseOptions) *control.ConfigAWSPhase {
	if len(p.Encryption) == 0 && len(p.Integrity) == 0 && len(p.DHGroups) == 0 && p.Lifetime == 0 {
		return nil
	}
	return &control.ConfigAWSPhase{Encryption: p.Encryption, Integrity: p.Integrity, DHGroups: p.DHGroups, Lifetime: control.SecondsOf(p.Lifetime)}
}
