//go:build linux

package tun

import (
	"reflect"
	"unsafe"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// The device's read buffer, kept out of memory while the device is quiet.
//
// wireguard-go's NativeTun reads every packet into a 64 KiB array inside
// the struct (readBuff: room for a virtio header and a GSO superpacket)
// and splits it from there into the caller's buffers. The array is part
// of the device's one allocation, so it cannot be freed or shared; at
// 200 tunnels it was 14 MB of cgwd's resident memory (docs/scale.md),
// although a quiet tunnel's packets (keepalives, BGP) touch only its
// first bytes.
//
// ReleaseReadBuffer tells the kernel that the array's whole pages hold
// nothing (madvise MADV_DONTNEED): they leave the resident set and read
// as zeros when next touched, which is harmless, as every Read overwrites
// what it uses. The dataplane's TUN reader calls it when its device goes
// quiet, the same moment it gives its own buffers back. Only reads larger
// than the part of the array in front of its first whole page touch those
// pages again, so the call does nothing (no system call) unless such a
// read happened since the last one.
//
// The array is reached by its field offset, found by reflection with its
// name and type checked, like the GRO tables (gropool.go). With another
// layout, devices keep the array resident, and TestReadBuffLayout fails.

// readBuffLayout is where NativeTun keeps its read buffer.
var readBuffLayout = func() (l struct {
	off, size uintptr
	ok        bool
}) {
	f, ok := reflect.TypeOf(wgtun.NativeTun{}).FieldByName("readBuff")
	if !ok || f.Type.Kind() != reflect.Array || f.Type.Elem().Kind() != reflect.Uint8 || f.Type.Len() < 65535 {
		return l
	}
	l.off, l.size, l.ok = f.Offset, f.Type.Size(), true
	return l
}()

// virtioNetHdrLen is the virtio header in front of each packet read from
// an IFF_VNET_HDR device.
const virtioNetHdrLen = 10

// readBuff is a device's read buffer: the whole pages of it that
// ReleaseReadBuffer drops, and how many of its first octets a read may
// fill without touching them.
type readBuff struct {
	pages []byte // nil: nothing to drop (layout unknown, or no whole page)
	head  int    // octets in front of pages
	dirty bool   // a read may have touched pages since they were dropped
}

func newReadBuff(nt *wgtun.NativeTun) readBuff {
	if !readBuffLayout.ok {
		return readBuff{}
	}
	page := uintptr(unix.Getpagesize())
	start := uintptr(unsafe.Pointer(nt)) + readBuffLayout.off
	end := start + readBuffLayout.size
	first := (start + page - 1) &^ (page - 1)
	last := end &^ (page - 1)
	if last <= first {
		return readBuff{}
	}
	// The device struct is a heap object that the garbage collector
	// never moves, and d holds it for as long as pages is used.
	return readBuff{
		pages: unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nt), readBuffLayout.off+(first-start))), last-first),
		head:  int(first - start),
		dirty: true, // the allocator may have zeroed the whole struct
	}
}

// noteRead records a read of n packets of the given sizes (or one that
// failed). The virtio header and the superpacket it was split from are
// never longer than the header plus the packets.
func (r *readBuff) noteRead(n int, sizes []int, err error) {
	if r.pages == nil || r.dirty {
		return
	}
	total := virtioNetHdrLen
	for _, s := range sizes[:n] {
		total += s
	}
	if err != nil || total > r.head {
		r.dirty = true
	}
}

// release drops the pages when a read may have touched them. It must not
// run during a Read of the device.
func (r *readBuff) release() {
	if r.pages == nil || !r.dirty {
		return
	}
	if unix.Madvise(r.pages, unix.MADV_DONTNEED) == nil {
		r.dirty = false
	}
}

// Read reads as NativeTun does and notes how much of the read buffer it
// may have used.
func (d *groSharedDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.NativeTun.Read(bufs, sizes, offset)
	d.rb.noteRead(n, sizes, err)
	return n, err
}

// ReleaseReadBuffer hands the device's read buffer back to the kernel
// until the next read that needs more than its first octets. The caller
// is the device's reader, between two Reads: it must not be called during
// a Read.
func (d *groSharedDevice) ReleaseReadBuffer() { d.rb.release() }

// closedEvents is the Events channel of a device that has none.
var closedEvents = func() chan wgtun.Event {
	c := make(chan wgtun.Event)
	close(c)
	return c
}()

// Events returns a closed channel: cgw's devices are unmonitored, so
// NativeTun never sends on its channel, and a goroutine per device waiting
// on it until Close was 200 goroutines at 200 tunnels for nothing.
func (d *groSharedDevice) Events() <-chan wgtun.Event { return closedEvents }
