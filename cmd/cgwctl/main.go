// Command cgwctl is the command-line interface of cgw: it validates and
// generates configuration files (config check, config default, import-aws)
// and, for the verbs that talk to a running cgwd, uses its control socket.
//
//	cgwctl import-aws --xml vpn.xml --advertise 10.1.0.0/16 > /etc/cgw/cgw.yaml
//	cgwctl config check /etc/cgw/cgw.yaml
//
// Exit status: 0 success, 1 failure, 2 usage error. Output formats and
// exit codes are a stable interface for scripts.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
