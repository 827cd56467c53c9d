// Package iketest provides test doubles for the ike package's boundaries: a
// queueing Sender, an Installer that records every call, a recording
// Listener, a deterministic random source, and Network, which connects
// several ike.Managers in one process (optionally through a NAT) so that
// whole exchanges run deterministically on a clock.Fake.
//
// All types are safe for concurrent use: the Managers call them from their
// peer goroutines while the test inspects them.
package iketest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/cgwproject/cgw/ipsec"
)

// Packet is one IKE message handed to a Sender.
type Packet struct {
	Local, Remote netip.AddrPort
	Data          []byte
}

// FakeSender queues every sent packet.
type FakeSender struct {
	mu   sync.Mutex
	q    []Packet
	sent int
}

// SendIKE implements ike.Sender. It copies data.
func (s *FakeSender) SendIKE(local, remote netip.AddrPort, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.q = append(s.q, Packet{Local: local, Remote: remote, Data: append([]byte(nil), data...)})
	s.sent++
	return nil
}

// Take removes and returns every queued packet.
func (s *FakeSender) Take() []Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.q
	s.q = nil
	return q
}

// Sent is the number of packets sent so far.
func (s *FakeSender) Sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// Op is one recorded Installer call.
type Op struct {
	Kind   string // "alloc", "add", "del", "endpoints"
	Dir    ipsec.Direction
	SPI    ipsec.SPI
	Params ipsec.SAParams // for "add"
	Local  netip.AddrPort // for "endpoints"
	Remote netip.AddrPort
	Encap  bool
}

func (o Op) String() string {
	switch o.Kind {
	case "add", "del":
		return fmt.Sprintf("%s %s %s", o.Kind, o.Dir, o.SPI)
	case "alloc":
		return fmt.Sprintf("alloc %s", o.SPI)
	}
	return fmt.Sprintf("%s %s %s encap=%v", o.Kind, o.Local, o.Remote, o.Encap)
}

// FakeInstaller records SA operations and keeps the installed set. SPIs
// are allocated from a counter seeded by Base.
type FakeInstaller struct {
	mu       sync.Mutex
	base     uint32
	next     uint32
	ops      []Op
	sas      map[saKey]ipsec.SAParams
	lastUsed map[ipsec.SPI]time.Time
	outbound ipsec.SPI
	// FailAdd makes AddSA fail while set.
	failAdd bool
}

type saKey struct {
	dir ipsec.Direction
	spi ipsec.SPI
}

// NewFakeInstaller returns an installer whose SPIs start at base+1, so two
// installers in one test hand out distinguishable SPIs.
func NewFakeInstaller(base uint32) *FakeInstaller {
	return &FakeInstaller{base: base, next: base, sas: map[saKey]ipsec.SAParams{}, lastUsed: map[ipsec.SPI]time.Time{}}
}

func (f *FakeInstaller) AllocSPI(tunnel string) (ipsec.SPI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	spi := ipsec.SPI(f.next)
	f.ops = append(f.ops, Op{Kind: "alloc", SPI: spi})
	return spi, nil
}

func (f *FakeInstaller) AddSA(p ipsec.SAParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAdd {
		return fmt.Errorf("iketest: AddSA failure injected")
	}
	f.ops = append(f.ops, Op{Kind: "add", Dir: p.Dir, SPI: p.SPI, Params: p})
	f.sas[saKey{p.Dir, p.SPI}] = p
	if p.Dir == ipsec.Outbound {
		f.outbound = p.SPI
	}
	return nil
}

func (f *FakeInstaller) DelSA(tunnel string, dir ipsec.Direction, spi ipsec.SPI) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := saKey{dir, spi}
	if _, ok := f.sas[k]; !ok {
		return nil // unknown (or only allocated): not an error
	}
	f.ops = append(f.ops, Op{Kind: "del", Dir: dir, SPI: spi})
	delete(f.sas, k)
	if dir == ipsec.Outbound && f.outbound == spi {
		f.outbound = 0
	}
	return nil
}

func (f *FakeInstaller) UpdateEndpoints(tunnel string, local, remote netip.AddrPort, encap bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, Op{Kind: "endpoints", Local: local, Remote: remote, Encap: encap})
	for k, p := range f.sas {
		p.Local, p.Remote, p.Encap = local, remote, encap
		f.sas[k] = p
	}
	return nil
}

func (f *FakeInstaller) QuerySA(tunnel string, dir ipsec.Direction, spi ipsec.SPI) (ipsec.SAStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sas[saKey{dir, spi}]; !ok {
		return ipsec.SAStats{}, fmt.Errorf("iketest: no %s SA %s", dir, spi)
	}
	return ipsec.SAStats{LastUsed: f.lastUsed[spi]}, nil
}

// Allocated returns every SPI AllocSPI handed out, in order (Ops(true)
// does not clear it).
func (f *FakeInstaller) Allocated() []ipsec.SPI {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ipsec.SPI
	for spi := f.base + 1; spi <= f.next; spi++ {
		out = append(out, ipsec.SPI(spi))
	}
	return out
}

// SetFailAdd makes subsequent AddSA calls fail (or succeed again).
func (f *FakeInstaller) SetFailAdd(fail bool) {
	f.mu.Lock()
	f.failAdd = fail
	f.mu.Unlock()
}

// Touch records inbound traffic on spi at t (what DPD looks at).
func (f *FakeInstaller) Touch(spi ipsec.SPI, t time.Time) {
	f.mu.Lock()
	f.lastUsed[spi] = t
	f.mu.Unlock()
}

// Ops returns the recorded add/del/endpoints operations (allocations
// excluded), and clears the record if reset is set.
func (f *FakeInstaller) Ops(reset bool) []Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Op
	for _, o := range f.ops {
		if o.Kind != "alloc" {
			out = append(out, o)
		}
	}
	if reset {
		f.ops = nil
	}
	return out
}

// Installed returns the installed SA of a direction and SPI.
func (f *FakeInstaller) Installed(dir ipsec.Direction, spi ipsec.SPI) (ipsec.SAParams, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.sas[saKey{dir, spi}]
	return p, ok
}

// Count returns the number of installed SAs per direction.
func (f *FakeInstaller) Count() (in, out int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.sas {
		if k.dir == ipsec.Inbound {
			in++
		} else {
			out++
		}
	}
	return in, out
}

// ActiveOutbound is the SPI of the last outbound SA added and not deleted.
func (f *FakeInstaller) ActiveOutbound() ipsec.SPI {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outbound
}

// Rand is a deterministic, goroutine-safe byte stream (SHA-256 in counter
// mode over a seed). It is for tests only.
type Rand struct {
	mu   sync.Mutex
	seed [32]byte
	ctr  uint64
	buf  []byte
}

// NewRand returns a Rand for seed.
func NewRand(seed string) *Rand { return &Rand{seed: sha256.Sum256([]byte(seed))} }

func (r *Rand) Read(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(b) {
		if len(r.buf) == 0 {
			var in [40]byte
			copy(in[:], r.seed[:])
			binary.BigEndian.PutUint64(in[32:], r.ctr)
			r.ctr++
			s := sha256.Sum256(in[:])
			r.buf = s[:]
		}
		c := copy(b[n:], r.buf)
		r.buf = r.buf[c:]
		n += c
	}
	return n, nil
}
