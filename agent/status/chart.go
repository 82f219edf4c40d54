package status

import (
	"math"
	"strconv"
	"time"
)

// bins averages a history into n equal time bins over [from, from+span),
// the resolution a chart can show: a 120-pixel sparkline of an hour needs
// a point a minute, not one every 2 s.
type bins struct {
	from  time.Time
	width time.Duration
	sum   []float64
	count []int32
}

func newBins(from time.Time, span time.Duration, n int) *bins {
	return &bins{from: from, width: span / time.Duration(n), sum: make([]float64, n), count: make([]int32, n)}
}

func (b *bins) add(t time.Time, v float64) {
	d := t.Sub(b.from)
	if d < 0 {
		return
	}
	i := int(d / b.width)
	if i >= len(b.sum) {
		return
	}
	b.sum[i] += v
	b.count[i]++
}

// mean of bin i, false when nothing fell into it.
func (b *bins) mean(i int) (float64, bool) {
	if b.count[i] == 0 {
		return 0, false
	}
	return b.sum[i] / float64(b.count[i]), true
}

// max is the largest mean, 0 when empty.
func (b *bins) max() float64 {
	m := 0.0
	for i := range b.sum {
		if v, ok := b.mean(i); ok && v > m {
			m = v
		}
	}
	return m
}

// path appends an SVG path ("M x y L x y ...") of the bins drawn in a box
// of w×h at (x0, y0), with top at the upper edge and 0 at the lower one.
// Bins left empty for longer than maxGap break the line, so a machine
// that was down shows a gap; shorter runs of empty bins (bins finer than
// the history's resolution) are bridged. A point alone between gaps is
// drawn as a dash across its bin, so it stays visible.
func (b *bins) path(dst []byte, x0, y0, w, h, top float64, maxGap time.Duration, prec int) []byte {
	if top <= 0 {
		top = 1
	}
	var set []int
	for i := range b.sum {
		if b.count[i] > 0 {
			set = append(set, i)
		}
	}
	near := func(a, c int) bool { return time.Duration(c-a-1)*b.width <= maxGap }
	dx := w / float64(len(b.sum))
	pt := func(cmd byte, x, y float64) {
		dst = append(dst, cmd)
		dst = strconv.AppendFloat(dst, x, 'f', prec, 64)
		dst = append(dst, ' ')
		dst = strconv.AppendFloat(dst, y, 'f', prec, 64)
	}
	for k, i := range set {
		v, _ := b.mean(i)
		x := x0 + (float64(i)+0.5)*dx
		y := y0 + h - math.Min(v/top, 1)*h
		joined := k > 0 && near(set[k-1], i)
		switch {
		case joined:
			pt('L', x, y)
		case k+1 < len(set) && near(i, set[k+1]):
			pt('M', x, y)
		default: // alone: a dash across its bin
			pt('M', x-dx/2, y)
			pt('L', x+dx/2, y)
		}
	}
	return dst
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for an axis top.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
