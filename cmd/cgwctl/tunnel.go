package main

import (
	"fmt"
)

var tunnelCmd = &command{
	name:    "tunnel",
	summary: "bring a tunnel up or down, or rekey it",
	sub:     []*command{tunnelUpCmd, tunnelDownCmd, tunnelRekeyCmd},
}

var tunnelUpCmd = &command{
	name:    "up",
	args:    "[--json] [--socket PATH] NAME",
	summary: "start IKE for the tunnel and keep it up (undoes tunnel down)",
	run: func(e *env, f *flags, args []string) error {
		return tunnelVerb(e, f, args, "up")
	},
}

var tunnelDownCmd = &command{
	name:    "down",
	args:    "[--json] [--socket PATH] NAME",
	summary: "delete the tunnel's SAs and keep it down until tunnel up",
	run: func(e *env, f *flags, args []string) error {
		return tunnelVerb(e, f, args, "down")
	},
}

var tunnelRekeyCmd = &command{
	name:    "rekey",
	args:    "[--ike] [--json] [--socket PATH] NAME",
	summary: "rekey the tunnel's CHILD SA now (its IKE SA with --ike)",
	run: func(e *env, f *flags, args []string) error {
		return tunnelVerb(e, f, args, "rekey")
	},
}

// tunnelVerb runs up, down or rekey on the one tunnel named in args.
func tunnelVerb(e *env, f *flags, args []string, verb string) error {
	var ike *bool
	if verb == "rekey" {
		ike = f.Bool("ike", false, "rekey the IKE SA instead of the CHILD SA")
	}
	asJSON := f.Bool("json", false, "print the result as JSON: {\"tunnel\", \"action\", \"message\"}")
	sock := socketFlag(f)
	pos, err := f.parse(e, args)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 1:
	case 0:
		return usagef("name the tunnel (see cgwctl status)")
	default:
		return usagef("one tunnel at a time; got %d names", len(pos))
	}
	name := pos[0]
	ctx, cancel := requestContext(requestTimeout)
	defer cancel()
	c := e.daemon(*sock)
	var msg string
	switch verb {
	case "up":
		err, msg = c.TunnelUp(ctx, name), "initiating; watch it with cgwctl status"
	case "down":
		err, msg = c.TunnelDown(ctx, name), "SAs deleted; it stays down until cgwctl tunnel up "+name
	case "rekey":
		what := "CHILD SA"
		if *ike {
			what = "IKE SA"
		}
		err, msg = c.Rekey(ctx, name, *ike), what+" rekey started"
	}
	if err != nil {
		return err
	}
	if *asJSON {
		action := verb
		if verb == "rekey" && *ike {
			action = "rekey-ike"
		}
		return writeJSON(e.stdout, tunnelResult{Tunnel: name, Action: action, Message: msg})
	}
	_, err = fmt.Fprintf(e.stdout, "%s: %s\n", name, msg)
	return err
}

// tunnelResult is tunnel up/down/rekey --json: the request was accepted.
type tunnelResult struct {
	Tunnel  string `json:"tunnel"`
	Action  string `json:"action"` // up, down, rekey or rekey-ike
	Message string `json:"message"`
}
