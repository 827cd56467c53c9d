package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/cgwproject/cgw/config/awsxml"
)

var importAWSCmd = &command{
	name:    "import-aws",
	args:    "[--from] FILE|- [--connection VPN-ID]... [--advertise [VPN-ID=]CIDR]... [--remote-prefix [VPN-ID=]CIDR]... [--local-address IP] [--name NAME] [--cert FILE --key FILE [--key-passphrase-file FILE] --ca FILE] [-o FILE]",
	summary: "write a cgw configuration from what AWS hands out for a VPN connection",
	help: `Reads what AWS gives for a Site-to-Site VPN connection, recognised by
content:
  - the console's Download configuration, vendor Generic (a text file);
  - the JSON of aws ec2 describe-vpn-connections, with one or more
    connections; their Options.TunnelOptions, when present, set exactly the
    algorithms, lifetimes, DPD, startup action and replay window of each
    tunnel;
  - the CustomerGatewayConfiguration XML (--xml FILE works as before).
It writes a commented cgw configuration to stdout, or with -o FILE
atomically to FILE with mode 0600 (it holds the pre-shared keys). Problems
go to stderr.

Several connections become one configuration; --connection VPN-ID
(repeatable) keeps only those. --advertise CIDR applies to every BGP
connection, --advertise VPN-ID=CIDR to one; --remote-prefix likewise for
static connections.

With --cert, --key and --ca (the customer gateway's certificate exported
from ACM, and the CAs of the AWS Private CA) the connections authenticate
with the certificate: auth: certificate, no pre-shared keys, and peer_id
set to AWS's endpoint certificate names, CN=<vpn id>.endpoint-0 and -1. A
certificate-based connection (the document says so, or has no pre-shared
keys) imported without them gets the same, with placeholders <...> for the
files and comments naming the ACM export steps; cgwd refuses the
configuration until they are replaced.

Tunnels keep the order of the document (the first is the preferred one);
AWS does not promise it matches Tunnel 1/Tunnel 2 of the console.

Exit status: 0 ok, 1 bad input document, 2 usage error (including a static
connection without --remote-prefix).`,
	run: runImportAWS,
}

// maxInput bounds what is read; an AWS document is about 5 to 15 KB a
// connection, and a describe-vpn-connections JSON may list a hub's 128.
const maxInput = 4 << 20

func runImportAWS(e *env, f *flags, args []string) error {
	from := f.String("from", "", "the AWS document (`FILE`; - for stdin); also the first argument")
	xmlPath := f.String("xml", "", "same as --from (kept for scripts written for the XML-only importer)")
	outPath := f.String("o", "", "write the configuration to `FILE` (atomically, mode 0600) instead of stdout")
	var opt awsxml.Options
	f.Func("advertise", "on-premises `[VPN-ID=]CIDR` to announce over BGP (repeatable)", perConnPrefixFlag(&opt.Advertise, &opt.AdvertiseFor))
	f.Func("remote-prefix", "VPC `[VPN-ID=]CIDR` to route into the tunnels of a static connection (repeatable)", perConnPrefixFlag(&opt.RemotePrefixes, &opt.RemotePrefixesFor))
	f.Func("connection", "import only this `VPN-ID` (repeatable; default all)", func(s string) error {
		if !strings.HasPrefix(s, "vpn-") {
			return fmt.Errorf("not a VPN connection ID (vpn-...)")
		}
		opt.Select = append(opt.Select, s)
		return nil
	})
	f.Func("local-address", "outside `IP` to bind (default: any); the IKE identity stays the customer gateway address from AWS", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("not an IP address")
		}
		opt.LocalAddress = a
		return nil
	})
	f.StringVar(&opt.Name, "name", "", "connection `NAME` (default: the VPN connection ID; one connection only)")
	var cf awsxml.CertFiles
	f.StringVar(&cf.Cert, "cert", "", "authenticate with the certificate (and chain) in `FILE`, exported from ACM, instead of pre-shared keys")
	f.StringVar(&cf.Key, "key", "", "the certificate's private key `FILE` (ACM export, PEM)")
	f.StringVar(&cf.PassphraseFile, "key-passphrase-file", "", "`FILE` holding the passphrase of an encrypted --key")
	f.StringVar(&cf.CA, "ca", "", "`FILE` with the root and subordinate CA certificates of the AWS Private CA")
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if cf != (awsxml.CertFiles{}) {
		if cf.Cert == "" || cf.Key == "" || cf.CA == "" {
			return usagef("certificate authentication needs --cert, --key and --ca")
		}
		for _, p := range []*string{&cf.Cert, &cf.Key, &cf.CA, &cf.PassphraseFile} {
			if *p != "" {
				if *p, err = filepath.Abs(*p); err != nil {
					return err
				}
			}
		}
		opt.Cert = &cf
	}
	path := *from
	for _, p := range []string{*xmlPath} {
		if p != "" {
			if path != "" && path != p {
				return usagef("name the input once (--from, --xml or an argument)")
			}
			path = p
		}
	}
	if len(pos) > 0 {
		if path != "" || len(pos) > 1 {
			return usagef("unexpected argument %q (name one input file)", pos[len(pos)-1])
		}
		path = pos[0]
	}
	if path == "" {
		return usagef("name the input: cgwctl import-aws FILE (the console's Generic download, the describe-vpn-connections JSON or the XML; - for stdin)")
	}

	var data []byte
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(e.stdin, maxInput+1))
	} else {
		data, err = readLimited(path)
	}
	if err != nil {
		return err
	}
	_, conns, err := awsxml.Read(data)
	if err != nil {
		return err
	}
	out, warns, err := awsxml.GenerateAll(conns, opt)
	for _, w := range warns {
		fmt.Fprintln(e.stderr, w.String())
	}
	if errors.Is(err, awsxml.ErrOptions) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	if *outPath != "" {
		return writeFileAtomic(*outPath, out, 0o600)
	}
	_, err = e.stdout.Write(out)
	return err
}

// writeFileAtomic writes data to a temporary file in path's directory with
// mode perm from the start (the keys never sit in a readable file), syncs
// it and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxInput+1))
}

// perConnPrefixFlag reads CIDR (into all) or VPN-ID=CIDR (into one).
func perConnPrefixFlag(all *[]netip.Prefix, one *map[string][]netip.Prefix) func(string) error {
	return func(s string) error {
		id, cidr, scoped := strings.Cut(s, "=")
		if !scoped {
			cidr = s
		} else if !strings.HasPrefix(id, "vpn-") {
			return fmt.Errorf("%q is not a VPN connection ID (write vpn-...=CIDR)", id)
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return fmt.Errorf("not a prefix (want address/length, e.g. 10.1.0.0/16, or vpn-...=10.1.0.0/16)")
		}
		if p.Masked() != p {
			return fmt.Errorf("host bits set; write %v", p.Masked())
		}
		if !scoped {
			*all = append(*all, p)
			return nil
		}
		if *one == nil {
			*one = map[string][]netip.Prefix{}
		}
		(*one)[id] = append((*one)[id], p)
		return nil
	}
}
