package dataplane

import (
	"os"
	"testing"
)

// fileTUN is a memTUN with a file descriptor, as the kernel TUN has.
type fileTUN struct {
	*memTUN
	f *os.File
}

func (d fileTUN) File() *os.File { return d.f }

func TestTunReady(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	probe := newTunReady(fileTUN{f: r})
	if probe.ready() {
		t.Fatal("ready with nothing to read")
	}
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if !probe.ready() {
		t.Fatal("not ready with a byte waiting")
	}
	if allocs := testing.AllocsPerRun(100, func() { probe.ready() }); allocs != 0 {
		t.Fatalf("ready allocates %v times per call", allocs)
	}
	var b [1]byte
	if _, err := r.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	if probe.ready() {
		t.Fatal("still ready after the byte was read")
	}
	// A device without a descriptor never claims to be ready: the reader
	// then hands on one batch per read.
	if newTunReady(&memTUN{}).ready() {
		t.Fatal("memTUN reported ready")
	}
}
