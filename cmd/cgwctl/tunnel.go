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
	args:    "[--socket PATH] NAME",
	summary: "start IKE for the tunnel and keep it up (undoes tunnel down)",
	run: func(e *env, f *flags, args []string) error {
		return tunnelVerb(e, f, args, "up")
	},
}

var tunnelDownCmd = &command{
	name:    "down",
	args:    "[--socket PATH] NAME",
	summary: "delete the tunnel's SAs and keep it down until tunnel up",
	run: func(e *env, f *flags, args []string) error {
		return tunnelVerb(e, f, args, "down")
	},
}

var tunnelRekeyCmd = &command{
	name:    "rekey",
	args:    "[--ike] [--socket PATH] NAME",
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
	_, err = fmt.Fprintf(e.stdout, "%s: %s\n", name, msg)
	return err
}
