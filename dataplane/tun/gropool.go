//go:build linux

package tun

import (
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// GRO tables shared by all devices.
//
// wireguard-go gives every device its own TCP and UDP GRO tables, 128 flows
// × 128 segments each, allocated when the device is created: 1.8 MB per
// device, 360 MB for 200 tunnels (docs/scale.md). A device uses them only
// inside Write, under its write lock, and resets them before Write returns.
// So cgw keeps a few table pairs in a pool shared by all devices: Write
// lends one to the device for its length and takes it back afterwards.
//
// wireguard-go has no API for this. groShared reaches the two unexported
// table pointers of NativeTun by their field offsets, found by reflection
// (names and types checked); when the fields are not as expected (another
// wireguard-go version), devices keep their own tables: more memory, same
// behaviour. TestGROPoolLayout fails in that case.

// groLayout is where NativeTun keeps its GRO table pointers.
var groLayout = func() (l struct {
	tcp, udp uintptr
	ok       bool
}) {
	rt := reflect.TypeOf(wgtun.NativeTun{})
	tcp, ok1 := rt.FieldByName("tcpGROTable")
	udp, ok2 := rt.FieldByName("udpGROTable")
	if !ok1 || !ok2 ||
		tcp.Type.Kind() != reflect.Pointer || tcp.Type.Elem().Name() != "tcpGROTable" ||
		udp.Type.Kind() != reflect.Pointer || udp.Type.Elem().Name() != "udpGROTable" {
		return l
	}
	l.tcp, l.udp, l.ok = tcp.Offset, udp.Offset, true
	return l
}()

// groPair is one TCP and one UDP table of wireguard-go's types.
type groPair struct{ tcp, udp unsafe.Pointer }

// groPool holds the shared table pairs. Pairs come from the devices
// themselves: each new device gives its own pair to the pool until the pool
// has max pairs, and the pairs of later devices are dropped. A writer holds
// one pair at a time and the pool has at least one pair once a device
// exists, so get always returns.
var groPool = struct {
	mu   sync.Mutex
	cond *sync.Cond
	free []groPair
	n    int // pairs owned by the pool, free or lent
	max  int
}{max: min(runtime.GOMAXPROCS(0)+2, 16)}

func init() { groPool.cond = sync.NewCond(&groPool.mu) }

func groGet() groPair {
	groPool.mu.Lock()
	defer groPool.mu.Unlock()
	for len(groPool.free) == 0 {
		groPool.cond.Wait()
	}
	p := groPool.free[len(groPool.free)-1]
	groPool.free = groPool.free[:len(groPool.free)-1]
	return p
}

func groPut(p groPair) {
	groPool.mu.Lock()
	groPool.free = append(groPool.free, p)
	groPool.mu.Unlock()
	groPool.cond.Signal()
}

// groSharedDevice is a NativeTun whose Write borrows GRO tables from
// groPool. Its own table pointers are nil outside Write.
type groSharedDevice struct {
	*wgtun.NativeTun
	mu       sync.Mutex // serializes Write: the tables are set per call
	tcp, udp *unsafe.Pointer
	rb       readBuff // NativeTun's read buffer (readbuf.go); the reader's own
}

// groShared wraps dev when it is a NativeTun of the expected layout, and
// moves its tables to the pool (or drops them when the pool is full).
func groShared(dev wgtun.Device) wgtun.Device {
	nt, ok := dev.(*wgtun.NativeTun)
	if !ok || !groLayout.ok {
		return dev
	}
	base := unsafe.Pointer(nt)
	d := &groSharedDevice{
		NativeTun: nt,
		tcp:       (*unsafe.Pointer)(unsafe.Add(base, groLayout.tcp)),
		udp:       (*unsafe.Pointer)(unsafe.Add(base, groLayout.udp)),
		rb:        newReadBuff(nt),
	}
	p := groPair{tcp: *d.tcp, udp: *d.udp}
	*d.tcp, *d.udp = nil, nil
	groPool.mu.Lock()
	if groPool.n < groPool.max && p.tcp != nil && p.udp != nil {
		groPool.n++
		groPool.free = append(groPool.free, p)
	}
	groPool.mu.Unlock()
	groPool.cond.Signal()
	releaseSoon()
	return d
}

// releaseAfter is how long after the last device creation the dropped
// tables' memory is handed back to the OS.
const releaseAfter = 2 * time.Second

var release struct {
	mu sync.Mutex
	t  *time.Timer
}

// releaseSoon returns freed heap to the OS once devices stop being
// created. Each creation allocates 1.8 MB of tables that are dropped at
// once (the pool keeps a few): 360 MB of garbage when 200 tunnels start,
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

func (d *groSharedDevice) Write(bufs [][]byte, offset int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := groGet()
	*d.tcp, *d.udp = p.tcp, p.udp
	n, err := d.NativeTun.Write(bufs, offset)
	*d.tcp, *d.udp = nil, nil
	groPut(p)
	return n, err
}
