package rfc2136

import "time"

// backoff is a capped exponential retry delay: Min after the first
// failure, doubling up to Max, back to zero after a success.
type backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// fail records a failure and returns how long to wait before retrying.
func (b *backoff) fail() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.Min
	case b.cur < b.Max:
		b.cur *= 2
	}
	b.cur = min(b.cur, b.Max)
	return b.cur
}

// reset records a success.
func (b *backoff) reset() { b.cur = 0 }
