package iketest

import (
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/cgwproject/cgw/ike"
	"github.com/cgwproject/cgw/internal/clock"
)

// Node is one Manager with its doubles at one outside address.
type Node struct {
	Addr      netip.Addr
	Manager   *ike.Manager
	Sender    *FakeSender
	Installer *FakeInstaller
	Listener  *FakeListener
	// Public, when valid, puts the node behind a NAT: its packets leave
	// with this source address and a translated port, as a home router
	// would.
	Public netip.Addr
}

// Network connects Nodes. Deliver moves queued packets between them.
type Network struct {
	Clock *clock.Fake
	mu    sync.Mutex
	nodes []*Node
	// Drop, when set, is asked about every packet (after NAT); true drops it.
	Drop func(from *Node, p Packet) bool
	// Delivered counts packets handed to a Manager.
	Delivered int
}

// NewNetwork returns a network on a fresh fake clock.
func NewNetwork() *Network { return &Network{Clock: clock.NewFake()} }

// Add creates a node at addr. logger may be nil (logs discarded).
func (n *Network) Add(addr string, logger *slog.Logger) *Node {
	return n.AddWith(addr, logger, nil)
}

// AddWith is Add with a hook to adjust the Manager's Config.
func (n *Network) AddWith(addr string, logger *slog.Logger, edit func(*ike.Config)) *Node {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a := netip.MustParseAddr(addr)
	nd := &Node{
		Addr:      a,
		Sender:    &FakeSender{},
		Installer: NewFakeInstaller(uint32(len(n.nodes)+1) << 24),
		Listener:  &FakeListener{},
	}
	cfg := ike.Config{
		Sender: nd.Sender, Installer: nd.Installer, Listener: nd.Listener,
		Clock: n.Clock, Logger: logger.With("node", addr), Rand: NewRand(addr),
	}
	if edit != nil {
		edit(&cfg)
	}
	nd.Manager = ike.NewManager(cfg)
	n.mu.Lock()
	n.nodes = append(n.nodes, nd)
	n.mu.Unlock()
	return nd
}

// natPort is the port a NAT maps a private source port to.
func natPort(p uint16) uint16 { return p + 10000 }

// Advance moves the fake clock forward in steps of at most step, delivering
// all packets after each step, so that periodic exchanges (DPD) complete as
// they would on a live network.
func (n *Network) Advance(d, step time.Duration) {
	for d > 0 {
		s := min(d, step)
		n.Clock.Advance(s)
		n.Deliver()
		d -= s
	}
}

// Flush waits until every Manager has handled all queued work.
func (n *Network) Flush() {
	for _, nd := range n.nodes {
		nd.Manager.Flush()
	}
}

// Deliver flushes the Managers and moves packets until the network is
// quiet. It returns the number of packets delivered.
func (n *Network) Deliver() int {
	total := 0
	for range 1000 {
		n.Flush()
		moved := 0
		for _, from := range n.nodes {
			for _, p := range from.Sender.Take() {
				if n.route(from, p) {
					moved++
				}
			}
		}
		total += moved
		if moved == 0 {
			return total
		}
	}
	panic("iketest: packets keep flowing after 1000 rounds")
}

// Step delivers the packets queued right now, once (one hop), and returns
// them as sent (before NAT).
func (n *Network) Step() []Packet {
	n.Flush()
	// Take every node's packets before routing any: a receiver may
	// answer at once (its goroutine runs while we route), and that answer
	// belongs to the next hop.
	var all []Packet
	var from []*Node
	for _, nd := range n.nodes {
		for _, p := range nd.Sender.Take() {
			all = append(all, p)
			from = append(from, nd)
		}
	}
	for i, p := range all {
		n.route(from[i], p)
	}
	n.Flush()
	return all
}

// Take removes the queued packets of every node without delivering them
// (a lost burst).
func (n *Network) Take() []Packet {
	n.Flush()
	var all []Packet
	for _, from := range n.nodes {
		all = append(all, from.Sender.Take()...)
	}
	return all
}

// TakeFrom removes the packets nd queued, without delivering them, so a
// test can deliver them later (reordering) or never (loss).
func (n *Network) TakeFrom(nd *Node) []Packet {
	n.Flush()
	return nd.Sender.Take()
}

// Send delivers packets taken from nd (as TakeFrom returned them) through
// the NAT and the Drop filter, then waits until the receivers handled them.
func (n *Network) Send(from *Node, pkts ...Packet) {
	for _, p := range pkts {
		n.route(from, p)
	}
	n.Flush()
}

// Inject hands data to the node at to as if it came from src.
func (n *Network) Inject(to netip.AddrPort, src netip.AddrPort, data []byte) {
	for _, nd := range n.nodes {
		if nd.Addr == to.Addr() || nd.Public == to.Addr() {
			nd.Manager.HandlePacket(to, src, data)
		}
	}
	n.Flush()
}

func (n *Network) route(from *Node, p Packet) bool {
	src := p.Local
	if !src.Addr().IsValid() || src.Addr().IsUnspecified() {
		src = netip.AddrPortFrom(from.Addr, src.Port())
	}
	if from.Public.IsValid() {
		src = netip.AddrPortFrom(from.Public, natPort(src.Port()))
	}
	if n.Drop != nil && n.Drop(from, Packet{Local: src, Remote: p.Remote, Data: p.Data}) {
		return false
	}
	for _, to := range n.nodes {
		dst := p.Remote
		switch {
		case to.Addr == dst.Addr():
		case to.Public.IsValid() && to.Public == dst.Addr():
			dst = netip.AddrPortFrom(to.Addr, dst.Port()-10000)
		default:
			continue
		}
		n.Delivered++
		to.Manager.HandlePacket(dst, src, p.Data)
		return true
	}
	return false
}
