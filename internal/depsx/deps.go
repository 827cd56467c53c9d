package depsx

import (
	_ "github.com/osrg/gobgp/v3/pkg/server"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/vishvananda/netlink"
	_ "golang.org/x/crypto/cryptobyte"
	_ "golang.org/x/sys/unix"
	_ "golang.zx2c4.com/wireguard/conn"
	_ "golang.zx2c4.com/wireguard/tun"
	_ "gopkg.in/yaml.v3"
)
