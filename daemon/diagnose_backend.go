package daemon

import (
	"context"

	"github.com/cgwproject/cgw/control"
)

// Diagnose implements control.Backend.
func (d *Daemon) Diagnose(ctx context.Context, tunnel string) (*control.Diagnosis, error) {
	return d.diagnose(ctx, tunnel)
}
