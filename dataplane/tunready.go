package dataplane

import (
	"os"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// tunReady tells the TUN reader whether another read would return at once,
// so that it can gather the packets of several reads into one batch before
// handing it to the encryption workers and the sequential sender (issue
// 18). Without UDP offloads a TUN read returns one packet of a UDP flow,
// so a batch per read meant two goroutine wake-ups per packet and single
// packet sendmmsg calls that UDP GSO cannot coalesce. The probe is a
// poll(2) with zero timeout: it never waits, so a lone packet is not
// delayed. Devices without a file descriptor (test devices) report never
// ready, which keeps one batch per read.
type tunReady struct {
	fds []unix.PollFd // one entry; kept here so that a probe does not allocate
}

func newTunReady(dev tun.Device) *tunReady {
	r := &tunReady{}
	f, ok := dev.(interface{ File() *os.File })
	if !ok || f.File() == nil {
		return r
	}
	rc, err := f.File().SyscallConn()
	if err != nil {
		return r
	}
	fd := -1
	// Control, not File.Fd: Fd would switch the descriptor to blocking
	// mode, taking it out of the Go poller the device's reads rely on.
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil || fd < 0 {
		return r
	}
	r.fds = []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	return r
}

// ready reports whether the device has a packet waiting to be read.
func (r *tunReady) ready() bool {
	if r.fds == nil {
		return false
	}
	r.fds[0].Revents = 0
	n, err := unix.Poll(r.fds, 0)
	return err == nil && n > 0 && r.fds[0].Revents&unix.POLLIN != 0
}
