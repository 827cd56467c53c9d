package replay

import (
	"math/rand/v2"
	"testing"
)

// ref is a straightforward model of the RFC 4303 window: a set of seen
// sequence numbers and the highest one.
type ref struct {
	size uint64
	top  uint64
	seen map[uint64]bool
}

func (r *ref) update(seq uint64) bool {
	if seq == 0 || r.seen[seq] || (seq <= r.top && r.top-seq >= r.size) {
		return false
	}
	r.seen[seq] = true
	if seq > r.top {
		r.top = seq
	}
	return true
}

func TestZeroValue(t *testing.T) {
	var w Window
	if w.Size() != DefaultSize {
		t.Fatalf("zero Size = %d, want %d", w.Size(), DefaultSize)
	}
	if w.Check(0) || w.Update(0) {
		t.Fatal("sequence number 0 accepted")
	}
	if !w.Check(1) || !w.Update(1) || w.Check(1) || w.Update(1) {
		t.Fatal("zero value: 1 not accepted exactly once")
	}
	if w.Size() != DefaultSize {
		t.Fatalf("Size after lazy init = %d", w.Size())
	}
}

func TestInitSizes(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{-5, 1024}, {0, 1024}, {1, 64}, {64, 64}, {65, 128}, {1000, 1024}, {1024, 1024}, {2048, 2048}, {4096, 4096}, {5000, 4096},
	} {
		var w Window
		w.Init(tc.in)
		if w.Size() != tc.want {
			t.Errorf("Init(%d): Size = %d, want %d", tc.in, w.Size(), tc.want)
		}
		if len(w.bitmap)*64 < tc.want+64 || len(w.bitmap)&(len(w.bitmap)-1) != 0 {
			t.Errorf("Init(%d): %d blocks: need a power of two >= size/64+1", tc.in, len(w.bitmap))
		}
	}
}

func TestInOrder(t *testing.T) {
	var w Window
	w.Init(64)
	for seq := uint64(1); seq < 10000; seq++ {
		if !w.Check(seq) || !w.Update(seq) {
			t.Fatalf("seq %d rejected", seq)
		}
		if w.Top() != seq {
			t.Fatalf("Top = %d, want %d", w.Top(), seq)
		}
	}
}

func TestOutOfOrderAndOld(t *testing.T) {
	var w Window
	w.Init(128)
	must := func(seq uint64, want bool) {
		t.Helper()
		if got := w.Check(seq); got != want {
			t.Fatalf("Check(%d) = %v, want %v", seq, got, want)
		}
		if got := w.Update(seq); got != want {
			t.Fatalf("Update(%d) = %v, want %v", seq, got, want)
		}
	}
	must(200, true)
	must(199, true)
	must(73, true)  // 200-73 = 127 < 128: last slot of the window
	must(72, false) // 128 behind: too old
	must(1, false)
	must(150, true)
	must(150, false) // duplicate
	must(200, false)
	must(201, true)
	must(74, true)
	must(73, false) // duplicate (and now too old)
	must(1000, true)
	must(873, true)
	must(872, false)
	must(999, true)
	must(201, false)
}

func TestHugeJump(t *testing.T) {
	var w Window
	w.Init(1024)
	for seq := uint64(1); seq <= 2000; seq++ {
		w.Update(seq)
	}
	// Jump far beyond the ring: every old bit must be forgotten, so
	// numbers inside the new window that alias old blocks are fresh.
	const far = 1 << 40
	if !w.Update(far) {
		t.Fatal("jump rejected")
	}
	for seq := uint64(far - 1023); seq < far; seq++ {
		if !w.Check(seq) {
			t.Fatalf("seq %d after jump: Check = false (stale bit)", seq)
		}
	}
	if w.Check(far-1024) || w.Check(2000) || w.Check(far) {
		t.Fatal("old or duplicate accepted after jump")
	}
	// A jump of exactly one ring must also clear every block.
	w.Init(64) // 2 blocks
	for seq := uint64(1); seq <= 128; seq++ {
		w.Update(seq)
	}
	if !w.Update(128+64) || !w.Check(128+63) || !w.Check(129) {
		t.Fatal("jump of one ring left stale bits")
	}
}

func TestWrap32(t *testing.T) {
	// Without ESN the highest number is 2^32-1; the window must handle
	// the top of the 32-bit space and numbers just below it.
	var w Window
	w.Init(64)
	top := uint64(1<<32 - 1)
	for seq := top - 100; seq <= top; seq++ {
		if !w.Update(seq) {
			t.Fatalf("seq %#x rejected", seq)
		}
	}
	if w.Check(top) || w.Check(top-63) {
		t.Fatal("duplicate near 2^32-1 accepted")
	}
	if w.Check(top-64) || w.Update(top-64) {
		t.Fatal("seq 64 behind 2^32-1 accepted")
	}
}

func TestWrap64(t *testing.T) {
	// With ESN, sequence numbers cross 2^32 and go up to 2^64-1.
	var w Window
	w.Init(256)
	for _, base := range []uint64{1<<32 - 100, 1<<64 - 300} {
		w.Init(256)
		for seq := base; seq < base+200; seq++ {
			if !w.Update(seq) {
				t.Fatalf("seq %#x rejected", seq)
			}
		}
		for seq := base; seq < base+200; seq++ {
			if w.Check(seq) {
				t.Fatalf("seq %#x accepted twice", seq)
			}
		}
	}
	if !w.Update(1<<64-1) || w.Update(1<<64-1) {
		t.Fatal("2^64-1 not accepted exactly once")
	}
}

func TestRandomAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{64, 128, 1024, 4096} {
		var w Window
		w.Init(size)
		m := &ref{size: uint64(w.Size()), seen: map[uint64]bool{}}
		next := uint64(1 << 31)
		for i := 0; i < 50000; i++ {
			var seq uint64
			switch r.IntN(10) {
			case 0:
				next += uint64(r.IntN(5000)) // jump
				seq = next
			case 1, 2, 3:
				seq = next - uint64(r.IntN(size+200)) // behind, maybe too old
			default:
				next++
				seq = next
			}
			want := m.update(seq)
			if w.Check(seq) != want {
				t.Fatalf("size %d step %d: Check(%d) != %v", size, i, seq, want)
			}
			if w.Update(seq) != want {
				t.Fatalf("size %d step %d: Update(%d) != %v", size, i, seq, want)
			}
		}
	}
}

func FuzzReplay(f *testing.F) {
	f.Add(uint16(1024), []byte{1, 2, 3, 0xff, 0, 5})
	f.Add(uint16(64), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, size uint16, ops []byte) {
		var w Window
		w.Init(int(size))
		m := &ref{size: uint64(w.Size()), seen: map[uint64]bool{}}
		seq := uint64(1)
		for i := 0; i+1 < len(ops); i += 2 {
			// Each op moves seq by a signed, sometimes huge, delta.
			d := int64(int8(ops[i])) * int64(ops[i+1]) * (1 + int64(ops[i]&3)*1000)
			seq = uint64(int64(seq) + d)
			want := m.update(seq)
			if w.Check(seq) != want || w.Update(seq) != want {
				t.Fatalf("seq %d: window disagrees with model (want %v)", seq, want)
			}
		}
	})
}
