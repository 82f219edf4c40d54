package status

import (
	"math/bits"
	"time"
)

// Point is one step of a machine's history. Values are float32 to keep the
// rings small; a downsampled point holds the means of the points it
// replaces, so Candidate is then the fraction of the step the machine was
// a candidate (1 or 0 at full resolution).
type Point struct {
	Load1  float32 `json:"load1"`
	Load5  float32 `json:"load5"`
	Load15 float32 `json:"load15"`
	// CPU is the busy fraction of all CPUs (0..1), Mem the fraction of
	// memory in use (0..1).
	CPU       float32 `json:"cpu"`
	Mem       float32 `json:"mem"`
	Score     float32 `json:"score"`
	Users     float32 `json:"users"`
	Candidate float32 `json:"candidate"`
}

func (p Point) plus(o Point) Point {
	return Point{p.Load1 + o.Load1, p.Load5 + o.Load5, p.Load15 + o.Load15, p.CPU + o.CPU, p.Mem + o.Mem,
		p.Score + o.Score, p.Users + o.Users, p.Candidate + o.Candidate}
}

func (p Point) times(f float32) Point {
	return Point{p.Load1 * f, p.Load5 * f, p.Load15 * f, p.CPU * f, p.Mem * f, p.Score * f, p.Users * f, p.Candidate * f}
}

// ClusterPoint is one step of the cluster's history: how many machines
// were candidates and members, and the median and busiest load1 among the
// alive machines that report.
type ClusterPoint struct {
	Candidates float32 `json:"candidates"`
	Members    float32 `json:"members"`
	Median     float32 `json:"median_load1"`
	Busiest    float32 `json:"busiest_load1"`
}

func (p ClusterPoint) plus(o ClusterPoint) ClusterPoint {
	return ClusterPoint{p.Candidates + o.Candidates, p.Members + o.Members, p.Median + o.Median, p.Busiest + o.Busiest}
}

func (p ClusterPoint) times(f float32) ClusterPoint {
	return ClusterPoint{p.Candidates * f, p.Members * f, p.Median * f, p.Busiest * f}
}

// value is what a series can average: Point and ClusterPoint.
type value[T any] interface {
	plus(T) T
	times(float32) T
}

// ring holds the newest len(pts) slots of a series at one resolution. A
// slot is a time step (time / res); slots nobody observed stay unset, so a
// pause shows as a gap instead of a line drawn across it. Its size never
// changes after newRing.
type ring[T any] struct {
	res  time.Duration
	pts  []T
	set  []uint64 // bit i: pts[i] holds a value
	last int64    // newest slot written; valid when any bit is set
	used bool
}

func newRing[T any](res time.Duration, n int) ring[T] {
	return ring[T]{res: res, pts: make([]T, n), set: make([]uint64, (n+63)/64)}
}

func (r *ring[T]) slot(t time.Time) int64 { return floorDiv(t.UnixNano(), int64(r.res)) }

func (r *ring[T]) index(slot int64) int {
	n := int64(len(r.pts))
	return int(((slot % n) + n) % n)
}

// put stores v in slot, clearing the slots skipped since the newest one.
// A slot older than the ring holds is dropped.
func (r *ring[T]) put(slot int64, v T) {
	n := int64(len(r.pts))
	switch {
	case !r.used:
		r.used, r.last = true, slot
	case slot > r.last:
		for s := r.last + 1; s < slot && s <= r.last+n; s++ {
			i := r.index(s)
			r.set[i/64] &^= 1 << (i % 64)
		}
		r.last = slot
	case slot <= r.last-n:
		return
	}
	i := r.index(slot)
	r.pts[i] = v
	r.set[i/64] |= 1 << (i % 64)
}

// oldest is the oldest slot the ring can still hold.
func (r *ring[T]) oldest() int64 { return r.last - int64(len(r.pts)) + 1 }

// each calls fn for every set slot from slot from on, oldest first.
func (r *ring[T]) each(from int64, fn func(slot int64, v T)) {
	if !r.used {
		return
	}
	for s := max(from, r.oldest()); s <= r.last; s++ {
		i := r.index(s)
		if r.set[i/64]&(1<<(i%64)) != 0 {
			fn(s, r.pts[i])
		}
	}
}

// count is the number of set slots.
func (r *ring[T]) count() int {
	c := 0
	for _, w := range r.set {
		c += bits.OnesCount64(w)
	}
	return c
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// series is one history at two resolutions: every observation at fine
// resolution for the recent past, and means over coarse steps for the
// whole time kept. The coarse step being filled is held in acc until a
// later step begins.
type series[T value[T]] struct {
	fine, coarse ring[T]
	acc          T
	accN         int
	accSlot      int64
}

func newSeries[T value[T]](l layout) series[T] {
	return series[T]{fine: newRing[T](l.fine, l.fineN), coarse: newRing[T](l.coarse, l.coarseN)}
}

// add records v observed at t. Several observations in one fine slot keep
// the last; every observation counts in its coarse step's mean.
func (s *series[T]) add(t time.Time, v T) {
	s.fine.put(s.fine.slot(t), v)
	cs := s.coarse.slot(t)
	if s.accN > 0 && cs != s.accSlot {
		if cs < s.accSlot {
			return // out of order: the fine ring has it, the means do not
		}
		s.flush()
	}
	if s.accN == 0 {
		s.accSlot = cs
	}
	s.acc = s.acc.plus(v)
	s.accN++
}

func (s *series[T]) flush() {
	if s.accN == 0 {
		return
	}
	s.coarse.put(s.accSlot, s.acc.times(1/float32(s.accN)))
	var zero T
	s.acc, s.accN = zero, 0
}

// Sample is one point of a history with the start of its time step.
type Sample[T any] struct {
	Time time.Time     `json:"time"`
	Step time.Duration `json:"-"`
	V    T             `json:"v"`
}

// each calls fn for the history from t on, oldest first: coarse means up
// to where the fine ring begins, then every fine point, so the recent past
// keeps full resolution. step is the resolution of the point.
func (s *series[T]) each(t time.Time, fn func(at time.Time, step time.Duration, v T)) {
	var cut time.Time // coarse steps starting here or later are covered by fine points
	var fineFrom int64
	if s.fine.used {
		fineFrom = max(s.fine.oldest(), s.fine.slot(t))
		cut = time.Unix(0, fineFrom*int64(s.fine.res))
	}
	coarse := func(slot int64, v T) {
		at := time.Unix(0, slot*int64(s.coarse.res))
		if s.fine.used && !at.Before(cut) {
			return
		}
		fn(at, s.coarse.res, v)
	}
	s.coarse.each(s.coarse.slot(t), coarse)
	if s.accN > 0 && s.accSlot >= s.coarse.slot(t) {
		coarse(s.accSlot, s.acc.times(1/float32(s.accN)))
	}
	s.fine.each(fineFrom, func(slot int64, v T) {
		fn(time.Unix(0, slot*int64(s.fine.res)), s.fine.res, v)
	})
}

// since is each collected into a slice.
func (s *series[T]) since(t time.Time) []Sample[T] {
	var out []Sample[T]
	s.each(t, func(at time.Time, step time.Duration, v T) {
		out = append(out, Sample[T]{Time: at, Step: step, V: v})
	})
	return out
}
