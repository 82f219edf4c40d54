package gossip

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// newMemberlistLogger bridges memberlist's log lines ("[LEVEL] memberlist:
// text") into l at the matching slog level, so one handler decides what is
// shown. memberlist's [DEBUG] lines report every stream and probe.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(memberlistWriter{l}, "", 0)
}

var memberlistLevels = []struct {
	prefix string
	level  slog.Level
}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}}

type memberlistWriter struct{ l *slog.Logger }

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
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, line, "from", "memberlist")
	}
	return len(p), nil
}
