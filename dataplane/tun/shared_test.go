//go:build linux

package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cgwproject/cgw/dataplane/packet"
)

// TestEngineLayout fails when wireguard-go's NativeTun no longer keeps
// the fields an engine changes where shared.go expects them: each device
// would then keep its own 1.8 MB NativeTun.
func TestEngineLayout(t *testing.T) {
	if !engineLayout.ok {
		t.Fatal("wireguard-go NativeTun has no tunFile/vnetHdr/udpGSO fields of the expected types: devices do not share engines (see shared.go)")
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

// TestEnginesShared creates more devices than the pool keeps engines for
// and writes coalescible TCP segments on all of them at once, while each
// device's reader waits in Read: every write goes through and is coalesced
// (GRO), the waiting readers hold no engine, the pool never holds more than
// its maximum, and every engine is back and pointed at no device after.
func TestEnginesShared(t *testing.T) {
	inNetns(t, func() {
		const offset = 16 + 10 // dataplane's headroom is at least the virtio header
		var devs []Device
		defer func() {
			for _, d := range devs {
				d.Close()
			}
		}()
		for i := range engines.max + 3 {
			d, err := Create(fmt.Sprintf("cgwgro%d", i), 1436, netip.MustParsePrefix(fmt.Sprintf("169.254.%d.194/30", i)))
			if err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			if _, ok := d.(*device); !ok {
				t.Errorf("device is %T, not a shared-engine device", d)
				return
			}
			devs = append(devs, d)
		}
		// Readers that wait for packets that never come (until Close)
		// must not hold the engines the writers need.
		var readers sync.WaitGroup
		for _, d := range devs {
			readers.Add(1)
			go func() {
				defer readers.Done()
				bufs, sizes := [][]byte{make([]byte, 65536)}, []int{0}
				for {
					if _, err := d.Read(bufs, sizes, offset); errors.Is(err, os.ErrClosed) {
						return
					}
				}
			}()
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
		for _, d := range devs {
			d.Close()
		}
		readers.Wait()
		devs = nil
		engines.mu.Lock()
		n, free := engines.n, engines.free
		engines.mu.Unlock()
		if n > engines.max || n < 1 || len(free) != n {
			t.Errorf("pool: %d engines, %d free, max %d", n, len(free), engines.max)
		}
		for _, e := range free {
			if *e.file != e.own {
				t.Errorf("an engine in the pool still points at a device's file")
			}
		}
	})
}

// TestReadShared reads packets of a size that needs the engine's 64 KiB
// read buffer and small ones, and checks a read past the deadline and a
// read of a closed device.
func TestReadShared(t *testing.T) {
	inNetns(t, func() {
		dev, err := Create("cgwrd0", MaxMTU, netip.MustParsePrefix("169.254.20.2/30"))
		if err != nil {
			t.Errorf("Create: %v", err)
			return
		}
		defer dev.Close()
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(169, 254, 20, 1), Port: 9})
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		defer c.Close()
		const offset = 16 + 10
		bufs, sizes := [][]byte{make([]byte, 65536)}, []int{0}
		for _, payload := range []int{8000, 100, 8000} {
			msg := make([]byte, payload)
			msg[payload-1] = byte(payload)
			if _, err := c.Write(msg); err != nil {
				t.Errorf("send %d octets: %v", payload, err)
				return
			}
			got := false
			// IPv6 router solicitations and the like may come first.
			for range 10 {
				n, err := dev.Read(bufs, sizes, offset)
				if err != nil {
					t.Errorf("Read: %v", err)
					return
				}
				p := bufs[0][offset : offset+sizes[0]]
				if n == 1 && p[0]>>4 == 4 && p[9] == 17 && len(p) == 28+payload && p[len(p)-1] == byte(payload) {
					got = true
					break
				}
			}
			if !got {
				t.Errorf("no UDP datagram of %d octets read", payload)
			}
		}
		// The kernel's own packets (IPv6 router solicitations, MLD) may
		// still come before the deadline.
		dev.File().SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for i := 0; ; i++ {
			_, err := dev.Read(bufs, sizes, offset)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil || i == 20 {
				t.Errorf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
				break
			}
		}
		dev.File().SetReadDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			_, err := dev.Read(bufs, sizes, offset)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		dev.Close()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("Read of a closed device: %v, want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Read did not return after Close")
		}
	})
}
