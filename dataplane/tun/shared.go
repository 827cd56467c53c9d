//go:build linux

package tun

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Devices that share wireguard-go's per-device state.
//
// wireguard-go's NativeTun keeps, per device, what it needs for one Read
// or Write at a time: a 64 KiB read buffer inside the struct (for a virtio
// header and a GSO superpacket, which Read splits from there), and TCP and
// UDP GRO tables for Write (128 flows × 128 segments each). That was
// 1.8 MB per device, and 72 KB once the tables were shared: 14 MB at 200
// tunnels, all of it live heap that the garbage collector's goal and so
// cgwd's RSS grow with (docs/scale.md), although a quiet tunnel reads
// and writes a packet every few seconds.
//
// So a device here is only its file descriptor. Its Read and Write borrow
// an engine, a whole NativeTun, from a pool shared by all devices, point
// the engine at the device's file for the length of the call, and give it
// back. The pool has at most GOMAXPROCS+2 engines: more calls than that at
// once could not all run anyway. A Read first waits, without an engine,
// until the device is readable, so an engine is never held while waiting
// for a packet.
//
// wireguard-go has no API for this. The engine's unexported tunFile,
// vnetHdr and udpGSO fields are reached by their offsets, found by
// reflection with their names and types checked; when they are not as
// expected (another wireguard-go version), each device keeps its own
// NativeTun: more memory, same behaviour. TestEngineLayout fails in that
// case.

// engineLayout is where NativeTun keeps the fields an engine changes.
var engineLayout = func() (l struct {
	file, vnetHdr, udpGSO uintptr
	ok                    bool
}) {
	rt := reflect.TypeOf(wgtun.NativeTun{})
	f, ok1 := rt.FieldByName("tunFile")
	v, ok2 := rt.FieldByName("vnetHdr")
	u, ok3 := rt.FieldByName("udpGSO")
	if !ok1 || !ok2 || !ok3 || f.Type != reflect.TypeOf((*os.File)(nil)) ||
		v.Type.Kind() != reflect.Bool || u.Type.Kind() != reflect.Bool {
		return l
	}
	l.file, l.vnetHdr, l.udpGSO, l.ok = f.Offset, v.Offset, u.Offset, true
	return l
}()

// engine is a NativeTun used for the Reads and Writes of any device.
type engine struct {
	nt      *wgtun.NativeTun
	file    **os.File
	vnetHdr *bool
	udpGSO  *bool
	own     *os.File // the engine's own (closed) file, set between uses
}

func newEngine(nt *wgtun.NativeTun) *engine {
	base := unsafe.Pointer(nt)
	e := &engine{
		nt:      nt,
		file:    (**os.File)(unsafe.Add(base, engineLayout.file)),
		vnetHdr: (*bool)(unsafe.Add(base, engineLayout.vnetHdr)),
		udpGSO:  (*bool)(unsafe.Add(base, engineLayout.udpGSO)),
	}
	e.own = *e.file
	return e
}

// engines holds the shared engines. Engines come from the devices
// themselves: each new device's NativeTun joins the pool until it has max
// engines, and later ones are dropped. A caller holds one engine at a time
// and the pool has one once a device exists, so get always returns.
var engines = struct {
	mu   sync.Mutex
	cond *sync.Cond
	free []*engine
	n    int // engines owned by the pool, free or lent
	max  int
}{max: min(runtime.GOMAXPROCS(0)+2, 16)}

func init() { engines.cond = sync.NewCond(&engines.mu) }

// get lends an engine pointed at d's file.
func (d *device) get() *engine {
	engines.mu.Lock()
	for len(engines.free) == 0 {
		engines.cond.Wait()
	}
	e := engines.free[len(engines.free)-1]
	engines.free = engines.free[:len(engines.free)-1]
	engines.mu.Unlock()
	*e.file, *e.vnetHdr, *e.udpGSO = d.f, d.vnetHdr, d.udpGSO
	return e
}

func put(e *engine) {
	*e.file = e.own // the device's file is not kept alive by the pool
	engines.mu.Lock()
	engines.free = append(engines.free, e)
	engines.mu.Unlock()
	engines.cond.Signal()
}

// device is a TUN device whose Read and Write borrow an engine.
type device struct {
	f         *os.File
	rc        syscall.RawConn
	name      string
	batchSize int
	vnetHdr   bool
	udpGSO    bool
	rmu       sync.Mutex // one Read at a time: a readable device stays so until it is read
}

// shared makes the device of fd, a TUN device attached to name with
// IFF_VNET_HDR. A NativeTun made for it, on a duplicate of fd, sets the
// device's offloads and tells which it has, and then becomes an engine or
// is dropped. When the engine layout is unknown, the NativeTun is the
// device.
func shared(fd int, name string) (Device, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	unix.CloseOnExec(dup)
	ntd, _, err := wgtun.CreateUnmonitoredTUNFromFD(dup)
	if err != nil {
		// dup may already belong to an os.File whose finalizer closes it.
		unix.Close(fd)
		return nil, err
	}
	nt, ok := ntd.(*wgtun.NativeTun)
	if !ok || !engineLayout.ok {
		unix.Close(fd)
		return ntd, nil
	}
	e := newEngine(nt)
	d := &device{name: name, batchSize: nt.BatchSize(), vnetHdr: *e.vnetHdr, udpGSO: *e.udpGSO}
	// The engine's own file is the duplicate: closing it leaves the
	// device to fd.
	if err := e.own.Close(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	d.f = os.NewFile(uintptr(fd), "/dev/net/tun")
	if d.rc, err = d.f.SyscallConn(); err != nil {
		d.f.Close()
		return nil, err
	}
	engines.mu.Lock()
	if engines.n < engines.max {
		engines.n++
		engines.free = append(engines.free, e)
	}
	engines.mu.Unlock()
	engines.cond.Signal()
	releaseSoon()
	return d, nil
}

// releaseAfter is how long after the last device creation the dropped
// NativeTuns' memory is handed back to the OS.
const releaseAfter = 2 * time.Second

var release struct {
	mu sync.Mutex
	t  *time.Timer
}

// releaseSoon returns freed heap to the OS once devices stop being
// created. wireguard-go allocates 1.8 MB for each NativeTun, dropped at
// once unless it joins the pool: 360 MB of garbage when 200 tunnels start,
// which the runtime would otherwise keep resident for minutes.
func releaseSoon() {
	release.mu.Lock()
	defer release.mu.Unlock()
	if release.t == nil {
		release.t = time.AfterFunc(releaseAfter, debug.FreeOSMemory)
		return
	}
	release.t.Reset(releaseAfter)
}

func (d *device) File() *os.File { return d.f }

func (d *device) Name() (string, error) { return d.name, nil }

func (d *device) BatchSize() int { return d.batchSize }

func (d *device) MTU() (int, error) {
	link, err := netlink.LinkByName(d.name)
	if err != nil {
		return 0, fmt.Errorf("tun: %s: MTU: %w", d.name, err)
	}
	return link.Attrs().MTU, nil
}

// closedEvents is the Events channel of the devices: they are unmonitored,
// and a channel nothing is ever sent on kept a goroutine per device
// waiting on it until Close.
var closedEvents = func() chan wgtun.Event {
	c := make(chan wgtun.Event)
	close(c)
	return c
}()

func (d *device) Events() <-chan wgtun.Event { return closedEvents }

func (d *device) Close() error { return d.f.Close() }

// Read waits until the device is readable, without an engine, and then
// reads with one. A Read waiting on a closed device returns os.ErrClosed,
// one past the file's read deadline os.ErrDeadlineExceeded.
func (d *device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if err := d.rc.Read(PollReadable); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, err
		}
		// The poller's only other answer for a TUN file is that it
		// was closed ("use of closed file", not os.ErrClosed).
		return 0, os.ErrClosed
	}
	e := d.get()
	defer put(e)
	return e.nt.Read(bufs, sizes, offset)
}

func (d *device) Write(bufs [][]byte, offset int) (int, error) {
	e := d.get()
	defer put(e)
	return e.nt.Write(bufs, offset)
}

// PollReadable reports whether fd has something to read (or an error to
// report), without waiting: as the function of a syscall.RawConn's Read,
// false makes the runtime's poller wait for it.
func PollReadable(fd uintptr) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, 0)
	return err != nil || n > 0
}
