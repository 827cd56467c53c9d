package traffic

import (
	"fmt"
	"strconv"
	"strings"
)

// Profile is a repeating sequence of IPv4 packet sizes (IP header + UDP
// header + payload); packet i of a run has size Sizes[i % len(Sizes)].
type Profile struct {
	Name  string
	Sizes []int
}

// imix is the simple IMIX, 7:4:1 by packet count, in an interleaved
// order so no flow sees long runs of one size. The large size is 1400
// rather than the classic 1500 so that it fits inside every tunnel of the
// bench without fragmentation (the tunnels' inner MTU is 1400-1436):
// fragmenting would measure reassembly, not the tunnel. Mean 346 bytes.
var imix = []int{64, 576, 64, 64, 576, 64, 1400, 64, 576, 64, 64, 576}

// ParseProfile accepts "imix" or an IPv4 packet size in bytes
// (MinIPSize..MaxIPSize).
func ParseProfile(s string) (Profile, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "imix" {
		return Profile{Name: "imix", Sizes: imix}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < MinIPSize || n > MaxIPSize {
		return Profile{}, fmt.Errorf("packet size %q: want \"imix\" or an IPv4 packet length %d..%d bytes", s, MinIPSize, MaxIPSize)
	}
	return Profile{Name: s, Sizes: []int{n}}, nil
}

// Payload returns the UDP payload length of packet i.
func (p Profile) Payload(i uint64) int { return p.Sizes[i%uint64(len(p.Sizes))] - ipUDPLen }

// MeanIPSize is the average IPv4 packet length of the profile.
func (p Profile) MeanIPSize() float64 {
	t := 0
	for _, s := range p.Sizes {
		t += s
	}
	return float64(t) / float64(len(p.Sizes))
}

// MaxIPSizeOf is the largest IPv4 packet of the profile.
func (p Profile) MaxIPSizeOf() int {
	m := 0
	for _, s := range p.Sizes {
		m = max(m, s)
	}
	return m
}
