//go:build linux

package tun

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/cgwproject/cgw/dataplane/packet"
)

// TestGROPoolLayout fails when wireguard-go's NativeTun no longer keeps
// its GRO tables where groShared expects them: devices would then keep
// their own 1.8 MB of tables each.
func TestGROPoolLayout(t *testing.T) {
	if !groLayout.ok {
		t.Fatal("wireguard-go NativeTun has no tcpGROTable/udpGROTable pointer fields: GRO tables are not shared (see gropool.go)")
	}
}

// tcpSegment is an IPv4 TCP segment of payload bytes at seq, after
// offset bytes of headroom, with valid checksums.
func tcpSegment(offset int, seq uint32, payload int) []byte {
	// Room behind the packet: GRO appends the following segments to it.
	b := make([]byte, offset+40+payload, 65536)
	p := b[offset:]
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = 6
	copy(p[12:], []byte{169, 254, 15, 193})
	copy(p[16:], []byte{169, 254, 15, 194})
	binary.BigEndian.PutUint16(p[10:], ^packet.OnesSum(0, p[:20]))
	tcp := p[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 9)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], 1)
	tcp[12] = 5 << 4
	tcp[13] = 0x10 // ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	pseudo := make([]byte, 12)
	copy(pseudo, p[12:20])
	pseudo[9] = 6
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], ^packet.OnesSum(packet.OnesSum(0, pseudo), tcp))
	return b
}

// TestGROShared creates more devices than the pool keeps tables for and
// writes coalescible TCP segments on all of them at once: every write goes
// through, the pool never holds more than its maximum, and no device keeps
// tables of its own between writes.
func TestGROShared(t *testing.T) {
	inNetns(t, func() {
		const offset = 16 + 10 // dataplane's headroom is at least the virtio header
		var devs []Device
		defer func() {
			for _, d := range devs {
				d.Close()
			}
		}()
		for i := range groPool.max + 3 {
			d, err := Create(fmt.Sprintf("cgwgro%d", i), 1436, netip.MustParsePrefix(fmt.Sprintf("169.254.%d.194/30", i)))
			if err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			devs = append(devs, d)
		}
		var wg sync.WaitGroup
		for _, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := range 50 {
					var bufs [][]byte
					for i := range 8 {
						bufs = append(bufs, tcpSegment(offset, uint32(round*8+i)*100, 100))
					}
					// Write returns the bytes written, each with its
					// 10-byte virtio header: 8 × 150 unless the
					// segments were coalesced into one.
					if n, err := d.Write(bufs, offset); err != nil || n != 10+40+8*100 {
						t.Errorf("Write: %d bytes, %v; want one coalesced packet of 850", n, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		groPool.mu.Lock()
		n, free := groPool.n, len(groPool.free)
		groPool.mu.Unlock()
		if n > groPool.max || n < 1 || free != n {
			t.Errorf("pool: %d pairs, %d free, max %d", n, free, groPool.max)
		}
		for _, d := range devs {
			g, ok := d.(*groSharedDevice)
			if !ok {
				t.Fatalf("device is %T, not shared-GRO", d)
			}
			if *g.tcp != nil || *g.udp != nil {
				t.Errorf("%s keeps GRO tables outside Write", fmt.Sprint(g.Name()))
			}
		}
	})
}
