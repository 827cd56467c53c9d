package human

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		250 * time.Millisecond:                      "250ms",
		3200 * time.Millisecond:                     "3.2s",
		3 * time.Second:                             "3s",
		42 * time.Second:                            "42s",
		4*time.Minute + 30*time.Second:              "4m30s",
		8 * time.Hour:                               "8h",
		2*time.Hour + 3*time.Minute + 9*time.Second: "2h3m",
		time.Hour + 5*time.Second:                   "1h",
		50 * time.Hour:                              "2d2h",
		-90 * time.Second:                           "1m30s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 900: "900 B", 1024: "1.0 KiB", 90000: "87.9 KiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// The cases diagnose relies on (moved from its tests).
func TestDiagDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                      "0ms",
		250 * time.Millisecond:                 "250ms",
		3 * time.Second:                        "3s",
		3200 * time.Millisecond:                "3.2s",
		-5 * time.Second:                       "5s",
		42 * time.Second:                       "42s",
		270 * time.Second:                      "4m30s",
		time.Hour:                              "1h",
		8 * time.Hour:                          "8h",
		time.Hour + 5*time.Second:              "1h",
		2*time.Hour + 3*time.Minute:            "2h3m",
		50*time.Hour + 30*time.Minute:          "2d2h",
		119*time.Minute + 500*time.Millisecond: "1h59m",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDiagBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5100: "5.0 KiB", 3 << 20: "3.0 MiB", 5 << 40: "5.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
