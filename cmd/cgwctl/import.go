package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/cgwproject/cgw/config/awsxml"
)

var importAWSCmd = &command{
	name:    "import-aws",
	args:    "--xml FILE [--advertise CIDR]... [--remote-prefix CIDR]... [--local-address IP] [--name NAME]",
	summary: "write a cgw configuration for an AWS VPN connection from its XML",
	help: `Reads the CustomerGatewayConfiguration XML of an AWS Site-to-Site VPN
connection (aws ec2 describe-vpn-connections --query
'VpnConnections[0].CustomerGatewayConfiguration' --output text) and prints a
commented cgw configuration on stdout; problems go to stderr.

Tunnels keep the order of the XML (the first is the preferred one); AWS does
not promise it matches Tunnel 1/Tunnel 2 of the console. Proposals offer
strong algorithms first and keep AWS's minimum from the XML last.

Exit status: 0 ok, 1 bad input, 2 usage error (including a static connection
without --remote-prefix).`,
	run: runImportAWS,
}

// maxXML bounds what is read; an AWS document is about 5 KB.
const maxXML = 1 << 20

func runImportAWS(e *env, f *flags, args []string) error {
	xmlPath := f.String("xml", "", "the CustomerGatewayConfiguration XML (`FILE`; - for stdin)")
	var opt awsxml.Options
	f.Func("advertise", "on-premises `CIDR` to announce over BGP (repeatable)", prefixFlag(&opt.Advertise))
	f.Func("remote-prefix", "VPC `CIDR` to route into the tunnels of a static connection (repeatable)", prefixFlag(&opt.RemotePrefixes))
	f.Func("local-address", "outside `IP` to bind (default: any); the IKE identity stays the customer gateway address from the XML", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("not an IP address")
		}
		opt.LocalAddress = a
		return nil
	})
	f.StringVar(&opt.Name, "name", "", "connection `NAME` (default: the VPN connection ID from the XML)")
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (the XML file goes after --xml)", pos[0])
	}
	if *xmlPath == "" {
		return usagef("--xml FILE is required")
	}

	var data []byte
	if *xmlPath == "-" {
		data, err = io.ReadAll(io.LimitReader(e.stdin, maxXML+1))
	} else {
		data, err = readLimited(*xmlPath)
	}
	if err != nil {
		return err
	}
	doc, err := awsxml.Parse(data)
	if err != nil {
		return err
	}
	out, warns, err := awsxml.Generate(doc, opt)
	for _, w := range warns {
		fmt.Fprintln(e.stderr, w.String())
	}
	if errors.Is(err, awsxml.ErrOptions) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxXML+1))
}

func prefixFlag(dst *[]netip.Prefix) func(string) error {
	return func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("not a prefix (want address/length, e.g. 10.1.0.0/16)")
		}
		if p.Masked() != p {
			return fmt.Errorf("host bits set; write %v", p.Masked())
		}
		*dst = append(*dst, p)
		return nil
	}
}
