package bgp

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// slogAdapter implements GoBGP's pkg/log.Logger on top of log/slog.
//
// Level mapping: GoBGP's Info messages are configuration chatter ("Add a peer
// configuration", "Peer Up", "call set policy") that this package reports
// itself in a better form, so they become Debug; Warn stays Warn (received
// and sent NOTIFICATIONs, hold timer expiry); Error, Fatal and Panic become
// Error. Fatal and Panic never exit or panic: GoBGP only uses them for
// "code logic bug" branches, and a library must not take the daemon down.
//
// observe, when set, sees every message with its fields so the Server can
// keep per-neighbor diagnostics (last NOTIFICATION, Peer Down reason). It is
// called from GoBGP goroutines, including the main server loop, and must not
// block or call back into GoBGP.
type slogAdapter struct {
	l       *slog.Logger
	observe func(msg string, f gobgplog.Fields)
}

var _ gobgplog.Logger = (*slogAdapter)(nil)

func (a *slogAdapter) Panic(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a *slogAdapter) Fatal(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a *slogAdapter) Error(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a *slogAdapter) Warn(msg string, f gobgplog.Fields) {
	if demotedWarnings[msg] {
		a.log(slog.LevelDebug, msg, f)
		return
	}
	a.log(slog.LevelWarn, msg, f)
}

// demotedWarnings are GoBGP warnings logged at Debug: either the Server
// reports them itself in its one-line state change (with the neighbor
// name), or they are expected in normal cgw operation and would only teach
// operators to ignore warnings.
var demotedWarnings = map[string]bool{
	// Recorded by Server.observe and logged with the state change.
	"received notification": true,
	"sent notification":     true,
	"hold timer expired":    true,
	// TTL 255 on the listener is for GTSM, which cgw does not use; some
	// kernels refuse it on dual-stack sockets.
	"cannot set TTL (255) for TCPListener": true,
	// AWS connecting while the neighbor waits out its idle hold time
	// after a reset or SetPeerUp(true); GoBGP dials out right after.
	"Closed an accepted connection": true,
}

func (a *slogAdapter) Info(msg string, f gobgplog.Fields)  { a.log(slog.LevelDebug, msg, f) }
func (a *slogAdapter) Debug(msg string, f gobgplog.Fields) { a.log(slog.LevelDebug, msg, f) }

// SetLevel is a no-op: the level belongs to the slog handler the daemon
// configured, not to GoBGP.
func (a *slogAdapter) SetLevel(gobgplog.LogLevel) {}

// GetLevel reports DebugLevel only when the handler would print debug
// records, so GoBGP skips building its per-message debug fields otherwise.
func (a *slogAdapter) GetLevel() gobgplog.LogLevel {
	if a.l.Enabled(context.Background(), slog.LevelDebug) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}

func (a *slogAdapter) log(level slog.Level, msg string, f gobgplog.Fields) {
	if a.observe != nil {
		a.observe(msg, f)
	}
	if !a.l.Enabled(context.Background(), level) {
		return
	}
	a.l.LogAttrs(context.Background(), level, "gobgp: "+msg, fieldAttrs(f)...)
}

// fieldAttrs converts GoBGP fields to slog attributes in a stable order.
// Anything that looks like a password is dropped: secrets never reach logs.
func fieldAttrs(f gobgplog.Fields) []slog.Attr {
	keys := make([]string, 0, len(f))
	for k := range f {
		lk := strings.ToLower(k)
		if k == gobgplog.FieldFacility || strings.Contains(lk, "password") {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(strings.ToLower(k), fieldValue(f[k])))
	}
	return attrs
}

func fieldValue(v any) any {
	switch v := v.(type) {
	case error:
		return v.Error()
	case []byte:
		return hex.EncodeToString(v)
	case *bgp.BGPMessage:
		return describeMessage(v)
	case fmt.Stringer:
		return v.String()
	}
	return v
}

// describeMessage renders a BGP message for logs and Status; NOTIFICATIONs
// get their RFC names.
func describeMessage(m *bgp.BGPMessage) string {
	if m == nil {
		return ""
	}
	if n, ok := m.Body.(*bgp.BGPNotification); ok {
		return notificationName(n.ErrorCode, n.ErrorSubcode)
	}
	return fmt.Sprintf("BGP message type %d", m.Header.Type)
}
