package diagnose

import "github.com/cgwproject/cgw/control"

// FindTunnel returns the named tunnel's entry in a status sample, or nil
// when st is nil or lacks it.
func FindTunnel(st *control.Status, name string) *control.Tunnel {
	if st == nil {
		return nil
	}
	for _, c := range st.Connections {
		for _, t := range c.Tunnels {
			if t.Name == name {
				return t
			}
		}
	}
	return nil
}

// ConnectionRoutes returns the kernel routes a status sample reports for
// the named connection. It pairs by name, not by position: a reload may
// add, remove or reorder connections between the sample and the caller's
// own list.
func ConnectionRoutes(st *control.Status, conn string) []control.Route {
	if st == nil {
		return nil
	}
	for _, c := range st.Connections {
		if c.Name == conn {
			return c.Routes
		}
	}
	return nil
}
