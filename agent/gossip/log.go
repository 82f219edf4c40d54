package gossip

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"
)

// newMemberlistLogger bridges memberlist's log lines ("[LEVEL] memberlist:
// text") into l at the matching slog level, so one handler decides what is
// shown. memberlist's [DEBUG] lines report every stream and probe. An
// [ERR] line whose cause is a timeout is a warning: a peer that does not
// answer in time (a busy or dying machine) is what failure detection is
// there for, not a fault of this member. Once
// closing is set (this member leaves or shuts down) its warnings and
// errors are debug lines: pings to members that are stopping too and
// sockets closed under a probe are how a cluster ends, not failures.
func newMemberlistLogger(l *slog.Logger, closing *atomic.Bool) *log.Logger {
	return log.New(memberlistWriter{l, closing}, "", 0)
}

var memberlistLevels = []struct {
	prefix string
	level  slog.Level
}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}}

type memberlistWriter struct {
	l       *slog.Logger
	closing *atomic.Bool
}

func (w memberlistWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for _, p := range memberlistLevels {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			level, line = p.level, strings.TrimSpace(rest)
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if level == slog.LevelError && strings.Contains(line, "timeout") {
		level = slog.LevelWarn
	}
	if level > slog.LevelInfo && w.closing.Load() {
		level = slog.LevelDebug
	}
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, line, "from", "memberlist")
	}
	return len(p), nil
}
