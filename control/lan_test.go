package control_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwproject/cgw/control"
	"github.com/cgwproject/cgw/control/client"
)

// drainBackend is a fakeBackend that can drain.
type drainBackend struct {
	fakeBackend
	got []control.DrainRequest
}

func (d *drainBackend) Drain(_ context.Context, req control.DrainRequest) (*control.DrainResult, error) {
	d.got = append(d.got, req)
	return &control.DrainResult{Drained: !req.Undrain, Moved: !req.Undrain}, nil
}

func TestDrain(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cgw.sock")
	db := &drainBackend{}
	srv, err := control.Listen(sock, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
	c := client.New(sock)
	res, err := c.Drain(context.Background(), control.DrainRequest{WaitSeconds: 20, IdleSeconds: 2, IdleRate: 1.5})
	if err != nil || !res.Drained || !res.Moved {
		t.Fatalf("Drain = %+v, %v", res, err)
	}
	if _, err := c.Drain(context.Background(), control.DrainRequest{Undrain: true}); err != nil {
		t.Fatal(err)
	}
	want := []control.DrainRequest{{WaitSeconds: 20, IdleSeconds: 2, IdleRate: 1.5}, {Undrain: true}}
	if len(db.got) != 2 || db.got[0] != want[0] || db.got[1] != want[1] {
		t.Errorf("backend got %+v, want %+v", db.got, want)
	}
	// The wait is bounded below the client's request timeout.
	if _, err := c.Drain(context.Background(), control.DrainRequest{WaitSeconds: 120}); err == nil || !strings.Contains(err.Error(), "wait") {
		t.Errorf("a 120 s wait: %v, want an error naming wait", err)
	}
}

func TestDrainUnsupported(t *testing.T) {
	srv, err := control.Listen(filepath.Join(t.TempDir(), "cgw.sock"), &fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+control.APIVersion+"/drain", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "not supported") {
		t.Errorf("drain on a backend without Drain: %d %s", rec.Code, rec.Body)
	}
}
