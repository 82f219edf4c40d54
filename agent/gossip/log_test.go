package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

func TestMemberlistLogLevels(t *testing.T) {
	for _, tc := range []struct {
		line, want string
		closing    bool
	}{
		{"[ERR] memberlist: Failed to send ping: write: broken pipe", "level=ERROR", false},
		{"[ERR] memberlist: Failed fallback TCP ping: timeout 1s: read tcp 127.0.0.1:1->127.0.0.2:2: i/o timeout", "level=WARN", false},
		{"[WARN] memberlist: Was able to connect to lab01 over TCP but UDP probes failed", "level=WARN", false},
		{"[INFO] memberlist: Marking lab01 as failed", "level=INFO", false},
		{"[ERR] memberlist: Failed to send ping: use of closed network connection", "level=DEBUG", true},
	} {
		var buf bytes.Buffer
		l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		var closing atomic.Bool
		closing.Store(tc.closing)
		newMemberlistLogger(l, &closing).Print(tc.line)
		if got := buf.String(); !strings.Contains(got, tc.want) || strings.Contains(got, "memberlist: ") {
			t.Errorf("%q logged %q, want %s without the memberlist: prefix", tc.line, got, tc.want)
		}
	}
}
