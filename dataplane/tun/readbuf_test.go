//go:build linux

package tun

import (
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestReadBuffLayout fails when wireguard-go's NativeTun no longer keeps
// its read buffer where readbuf.go expects it: every device would then
// keep its 64 KiB resident.
func TestReadBuffLayout(t *testing.T) {
	if !readBuffLayout.ok {
		t.Fatal("wireguard-go NativeTun has no readBuff array of at least 64 KiB: read buffers stay resident (see readbuf.go)")
	}
}

// residentPages counts the pages of b (page-aligned) that are in memory.
func residentPages(t *testing.T, b []byte) int {
	t.Helper()
	page := unix.Getpagesize()
	vec := make([]byte, (len(b)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestReadBufferRelease reads packets through a device and checks that
// ReleaseReadBuffer takes the read buffer's pages out of memory after a
// large read, and that reads still return the packets whole afterwards.
func TestReadBufferRelease(t *testing.T) {
	inNetns(t, func() {
		dev, err := Create("cgwrb0", MaxMTU, netip.MustParsePrefix("169.254.20.2/30"))
		if err != nil {
			t.Errorf("Create: %v", err)
			return
		}
		defer dev.Close()
		d, ok := dev.(*groSharedDevice)
		if !ok {
			t.Errorf("device is %T, not the shared-GRO wrapper", dev)
			return
		}
		rb := &d.rb
		if len(rb.pages) < 60000 {
			t.Errorf("read buffer pages: %d octets, want nearly 64 KiB", len(rb.pages))
			return
		}
		d.ReleaseReadBuffer()
		if rb.dirty {
			t.Errorf("dirty after release")
		}
		if n := residentPages(t, rb.pages); n != 0 {
			t.Errorf("%d pages resident right after release, want 0", n)
		}

		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(169, 254, 20, 1), Port: 9})
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		defer c.Close()
		const offset = 16 + virtioNetHdrLen
		bufs := [][]byte{make([]byte, 65536)}
		sizes := []int{0}
		// read sends payload octets and reads packets until the UDP
		// datagram of that size comes (IPv6 router solicitations and the
		// like may come first).
		read := func(payload int) {
			t.Helper()
			if _, err := c.Write(make([]byte, payload)); err != nil {
				t.Fatalf("send %d octets: %v", payload, err)
			}
			for range 10 {
				n, err := dev.Read(bufs, sizes, offset)
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				p := bufs[0][offset : offset+sizes[0]]
				if n == 1 && p[0]>>4 == 4 && p[9] == 17 && sizes[0] == 28+payload {
					return
				}
			}
			t.Fatalf("no UDP datagram of %d octets read", payload)
		}

		// A packet that fits in front of the first whole page leaves it
		// alone: no release is due.
		if small := rb.head - virtioNetHdrLen - 28; small > 0 {
			read(small)
			if rb.dirty {
				t.Errorf("a %d-octet packet with %d octets in front of the pages marked them used", small+28, rb.head)
			}
		}
		read(8000)
		if !rb.dirty {
			t.Errorf("an 8028-octet packet did not mark the pages used")
		}
		if n := residentPages(t, rb.pages); n == 0 {
			t.Errorf("no page resident after an 8028-octet read")
		}
		d.ReleaseReadBuffer()
		if n := residentPages(t, rb.pages); n != 0 || rb.dirty {
			t.Errorf("after release: %d pages resident, dirty %v; want 0, false", n, rb.dirty)
		}
		// The buffer still works after it was dropped.
		read(8000)
		read(100)
	})
}

// TestEventsClosed: the devices are unmonitored, so their Events channel
// is closed and the dataplane's drain of it ends at once.
func TestEventsClosed(t *testing.T) {
	inNetns(t, func() {
		dev, err := Create("cgwrb1", 1436, netip.Prefix{})
		if err != nil {
			t.Errorf("Create: %v", err)
			return
		}
		defer dev.Close()
		if _, ok := <-dev.Events(); ok {
			t.Errorf("Events delivered an event; want a closed channel")
		}
	})
}
