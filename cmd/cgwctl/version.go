package main

import (
	"fmt"

	"github.com/cgwproject/cgw/internal/version"
)

var versionCmd = &command{
	name:    "version",
	summary: "print the version of cgwctl",
	run: func(e *env, f *flags, args []string) error {
		pos, err := f.parse(e, args)
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		_, err = fmt.Fprintf(e.stdout, "cgwctl %s\n", version.String())
		return err
	},
}
