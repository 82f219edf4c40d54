package gossip

import "github.com/hashicorp/memberlist"

// lazyList is memberlist for the parts of a member, which exist before it:
// memberlist calls the delegates from inside Create as soon as its
// listeners are up (a member that joins at once, a greeting). It is safe
// for concurrent use.
type lazyList struct {
	// created is closed once Create returned and ml is set (nil when
	// memberlist failed to start).
	created chan struct{}
	ml      *memberlist.Memberlist
}

func newLazyList() *lazyList { return &lazyList{created: make(chan struct{})} }

// set records what Create returned and releases the goroutines waiting
// for it. New calls it once, on every way out.
func (l *lazyList) set(ml *memberlist.Memberlist) {
	l.ml = ml
	close(l.created)
}

// wait is memberlist once Create returned, nil if it failed: what the
// delegates start in goroutines reaches memberlist through it, and so do
// the loops, which start before New returns.
func (l *lazyList) wait() *memberlist.Memberlist {
	<-l.created
	return l.ml
}

// now is memberlist for the delegates themselves, which must not block:
// nil while Create has not returned (a message that arrives that early is
// answered by the next report or push/pull).
func (l *lazyList) now() *memberlist.Memberlist {
	select {
	case <-l.created:
		return l.ml
	default:
		return nil
	}
}
