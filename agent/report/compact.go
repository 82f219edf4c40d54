package report

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"
)

// Compact is the part of a report that changes from one sample to the
// next (load1, CPU use, available memory), with the epoch it belongs to:
// 11 bytes on the wire against about 60 for the whole report. Agents relay
// these among themselves; a receiver rebuilds the whole report from any
// report of the same epoch it already holds (see Rebuild). The values are
// quantised far below what changes a rank: load1 to 0.01, CPU use to 0.4 %,
// available memory to 1/65535 of the total.
type Compact struct {
	// ID is the node's NodeID.
	ID uint32
	// Epoch is EpochTag of the report's Generation and Base.
	Epoch byte
	// Delta is Seq − Base, below MaxEpochReports.
	Delta uint64
	// Age is the report's age when encoded, to compactAgeUnit.
	Age time.Duration
	// Load1, CPUUtil and MemAvailable (a fraction of MemTotal) are the hot
	// fields.
	Load1        float64
	CPUUtil      float64
	MemAvailable float64
}

const (
	// MaxEpochReports bounds an epoch: the report after this many starts
	// a new one, so slow fields (load5, uptime) are sent whole every few
	// minutes and Delta fits one byte.
	MaxEpochReports = 127
	// MaxCompactLoad is the largest load1 a compact entry carries; a node
	// above it sends whole reports.
	MaxCompactLoad  = 655.35
	compactAgeUnit  = 100 * time.Millisecond
	maxCompactAge   = 1 << 14 * compactAgeUnit // two varint bytes
	compactIDBits   = 24
	compactMemScale = 65535
)

// NodeID is the 24-bit hash a compact entry names its node by. Two live
// nodes may share one: senders then send those nodes' reports whole, and
// receivers ignore compact entries they cannot resolve to one name.
func NodeID(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	s := h.Sum32()
	return (s>>compactIDBits ^ s) & (1<<compactIDBits - 1)
}

// EpochTag is one byte naming an epoch (a node's generation and the Seq of
// the report that began it). A receiver holding another epoch of the node
// whose tag happens to match would rebuild from the wrong slow fields until
// the next epoch: one chance in 256, and only after it missed an epoch.
func EpochTag(generation, base uint64) byte {
	x := generation*0x9E3779B97F4A7C15 ^ base*0xC2B2AE3D27D4EB4F
	x ^= x >> 29
	x *= 0xBF58476D1CE4E5B9
	return byte(x >> 56)
}

// CompactOf returns r as a compact entry, and false when r must travel
// whole: it begins its epoch, so no receiver can hold the epoch yet.
func CompactOf(r *Report, id uint32) (Compact, bool) {
	if r.Base >= r.Seq || r.Seq-r.Base > MaxEpochReports || r.Load.Load1 > MaxCompactLoad {
		return Compact{}, false
	}
	return Compact{
		ID:           id,
		Epoch:        EpochTag(r.Generation, r.Base),
		Delta:        r.Seq - r.Base,
		Age:          r.Age,
		Load1:        r.Load.Load1,
		CPUUtil:      r.Load.CPUUtil,
		MemAvailable: r.Load.MemAvailableFraction(),
	}, true
}

// AppendCompact encodes c: ID (3 bytes), epoch (1), delta (1), age
// (varint, 100 ms units), load1 (2, hundredths), CPU use (1, 1/250) and
// available memory (2, 1/65535 of the total).
func AppendCompact(b []byte, c Compact) []byte {
	b = append(b, byte(c.ID>>16), byte(c.ID>>8), byte(c.ID), c.Epoch, byte(min(c.Delta, MaxEpochReports)))
	b = binary.AppendUvarint(b, uint64(min(max(c.Age, 0), maxCompactAge-1)/compactAgeUnit))
	b = binary.BigEndian.AppendUint16(b, uint16(math.Round(min(max(c.Load1, 0), MaxCompactLoad)*100)))
	b = append(b, byte(math.Round(min(max(c.CPUUtil, 0), 1)*250)))
	return binary.BigEndian.AppendUint16(b, uint16(math.Round(min(max(c.MemAvailable, 0), 1)*compactMemScale)))
}

// DecodeCompact decodes one compact entry from the front of b and returns
// the rest. Malformed input is an error, never a panic.
func DecodeCompact(b []byte) (Compact, []byte, error) {
	c, rest, _, err := decodeCompact(b)
	if err != nil {
		return Compact{}, nil, err
	}
	return c, rest, nil
}

// decodeCompact is DecodeCompact that, when the entry's bytes were all
// there but its values are out of range, says how long it was, so a batch
// can skip it and read on.
func decodeCompact(b []byte) (c Compact, rest []byte, skip int, err error) {
	d := decoder{b: b}
	c.ID = uint32(d.byte())<<16 | uint32(d.byte())<<8 | uint32(d.byte())
	c.Epoch = d.byte()
	c.Delta = uint64(d.byte())
	c.Age = time.Duration(d.uvarintMax(int64(maxCompactAge/compactAgeUnit))) * compactAgeUnit
	c.Load1 = float64(d.uint16()) / 100
	c.CPUUtil = float64(d.byte()) / 250
	c.MemAvailable = float64(d.uint16()) / compactMemScale
	if d.err != nil {
		return Compact{}, nil, 0, fmt.Errorf("decode compact entry: %w", d.err)
	}
	skip = len(b) - len(d.b)
	switch {
	case c.Delta == 0 || c.Delta > MaxEpochReports:
		return Compact{}, nil, skip, fmt.Errorf("decode compact entry: epoch delta %d out of range", c.Delta)
	case c.CPUUtil > 1:
		return Compact{}, nil, skip, fmt.Errorf("decode compact entry: CPU use %v out of range", c.CPUUtil)
	}
	return c, d.b, skip, nil
}

func (d *decoder) uint16() uint16 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 2 {
		d.err = errTruncated
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

// Rebuild returns the whole report c stands for, built on held (a report
// of the same node, whole or rebuilt): the slow fields are held's, the
// hot ones c's, and the uptime grows by elapsed (the time between the two
// reports). It returns false when held belongs to another epoch.
func (c Compact) Rebuild(held *Report, elapsed time.Duration) (*Report, bool) {
	if held == nil || EpochTag(held.Generation, held.Base) != c.Epoch {
		return nil, false
	}
	r := *held
	r.Seq = held.Base + c.Delta
	r.Age = c.Age
	r.Load.Load1 = c.Load1
	r.Load.CPUUtil = c.CPUUtil
	r.Load.MemAvailable = uint64(float64(held.Load.MemTotal)*c.MemAvailable) >> 10 << 10
	if held.Load.MemTotal == 0 {
		r.Load.MemAvailable = 0
	}
	r.Load.Uptime = held.Load.Uptime + max(elapsed, 0).Round(time.Second)
	return &r, true
}

// StartsEpoch reports whether next, the report after the last one sent,
// must begin a new epoch rather than continue base's (the report that
// began the current one; nil when there is none): a slow field changed
// enough to show, or the epoch is full.
func StartsEpoch(base, next *Report) bool {
	if base == nil || base.Generation != next.Generation || next.Seq-base.Seq >= MaxEpochReports ||
		next.Load.Load1 > MaxCompactLoad {
		return true
	}
	o, n := base.Load, next.Load
	if !slices.Equal(base.Failing, next.Failing) || base.Lifetime != next.Lifetime ||
		o.CPUs != n.CPUs || o.Users != n.Users || o.MemTotal != n.MemTotal {
		return true
	}
	moved := func(a, b, abs, rel float64) bool { return math.Abs(a-b) > max(abs, rel*math.Abs(a)) }
	return moved(o.Load5, n.Load5, 0.25, 0.1) || moved(o.Load15, n.Load15, 0.25, 0.1) ||
		moved(o.CPUPressure, n.CPUPressure, 5, 0) || moved(float64(o.SwapUsed), float64(n.SwapUsed), 64<<20, 0.1)
}

// AppendBatch encodes reports, whole ones then compact entries, as one
// message: the count of whole reports, the reports, the count of compact
// entries, the entries. It is the batch of protocol 1, which 0.1.0 reads;
// see AppendFramedBatch for protocol 2.
func AppendBatch(b []byte, whole []*Report, compact []Compact) []byte {
	b = binary.AppendUvarint(b, uint64(len(whole)))
	for _, r := range whole {
		b = AppendReport(b, r)
	}
	b = binary.AppendUvarint(b, uint64(len(compact)))
	for _, c := range compact {
		b = AppendCompact(b, c)
	}
	return b
}

// decodeReports reads n whole reports from b, the first part of a batch.
// A report it cannot read is skipped when its length is known; the first
// such problem is returned, wrapped in what. ok is false when an
// unreadable report ends the list (rest is then meaningless).
func decodeReports(b []byte, n uint64, what string) (whole []*Report, rest []byte, first error, ok bool) {
	rest = b
	for range n {
		r, next, skip, err := decodeReport(rest)
		if err != nil {
			first = cmp.Or(first, fmt.Errorf("%s: %w", what, err))
			if skip == 0 {
				return whole, nil, first, false
			}
			rest = rest[skip:]
			continue
		}
		whole, rest = append(whole, r), next
	}
	return whole, rest, first, true
}

// DecodeBatch decodes what AppendBatch wrote. An entry it cannot read is
// skipped when its length is known (a framed report, a compact entry with
// values out of range) and what follows the entries is ignored; otherwise
// it returns what decoded before the first malformed part. The error is
// the first problem met.
func DecodeBatch(b []byte) ([]*Report, []Compact, error) {
	d := decoder{b: b}
	n := d.uvarintMax(1 << 16)
	if d.err != nil {
		return nil, nil, fmt.Errorf("decode batch: %w", d.err)
	}
	whole, rest, first, ok := decodeReports(d.b, n, "decode batch")
	if !ok {
		return whole, nil, first
	}
	d = decoder{b: rest}
	n = d.uvarintMax(1 << 16)
	if d.err != nil {
		return whole, nil, cmp.Or(first, fmt.Errorf("decode batch: %w", d.err))
	}
	var compact []Compact
	rest = d.b
	for range n {
		c, next, skip, err := decodeCompact(rest)
		if err != nil {
			first = cmp.Or(first, fmt.Errorf("decode batch: %w", err))
			if skip == 0 {
				return whole, compact, first
			}
			rest = rest[skip:]
			continue
		}
		compact, rest = append(compact, c), next
	}
	return whole, compact, first
}

// AppendFramedBatch encodes a batch for members that read Protocol2 (0.1.0
// does not): the batch version, the compact entries' version, the count of
// whole reports, the reports framed (AppendFramedReport), the count of
// compact entries, each entry as its length and its bytes (AppendCompact's,
// then unknownFields), then unknownFields. Every entry carries its
// length, so a reader skips one it cannot read, and fields a later release
// appends to an entry or to the batch are skipped too.
func AppendFramedBatch(b []byte, whole []*Report, compact []Compact) []byte {
	b = append(b, framedBatchVersion, compactVersion)
	b = binary.AppendUvarint(b, uint64(len(whole)))
	for _, r := range whole {
		b = AppendFramedReport(b, r)
	}
	b = binary.AppendUvarint(b, uint64(len(compact)))
	for _, c := range compact {
		b = binary.AppendUvarint(b, uint64(compactBytes(c)+len(unknownFields)))
		b = AppendCompact(b, c)
		b = append(b, unknownFields...)
	}
	return append(b, unknownFields...)
}

// FramedBatchBytes is how many bytes a framed batch adds to the whole
// reports and compact entries it holds (for packing batches into packets):
// its header, and per entry its length and unknownFields.
func FramedBatchBytes(whole, compact int) int {
	return 2 + 2*3 + whole*(1+2+len(unknownFields)) + compact*(1+len(unknownFields)) + len(unknownFields)
}

// compactBytes is the length of AppendCompact(nil, c).
func compactBytes(c Compact) int {
	var b [16]byte
	return len(AppendCompact(b[:0], c))
}

// DecodeFramedBatch decodes what AppendFramedBatch wrote, of any later
// batch or compact version: it reads the fields it knows of each entry,
// skips an entry it cannot read, and ignores what follows the entries. It
// returns every entry it could read and the first problem met.
func DecodeFramedBatch(b []byte) ([]*Report, []Compact, error) {
	d := decoder{b: b}
	bv, cv := d.byte(), d.byte()
	n := d.uvarintMax(1 << 16)
	switch {
	case d.err != nil:
		return nil, nil, fmt.Errorf("decode framed batch: %w", d.err)
	case bv < framedBatchVersionMin || cv < 1:
		return nil, nil, fmt.Errorf("decode framed batch: batch version %d, compact version %d", bv, cv)
	}
	whole, rest, first, ok := decodeReports(d.b, n, "decode framed batch")
	if !ok {
		return whole, nil, first
	}
	d = decoder{b: rest}
	n = d.uvarintMax(1 << 16)
	if d.err != nil {
		return whole, nil, cmp.Or(first, fmt.Errorf("decode framed batch: %w", d.err))
	}
	var compact []Compact
	for range n {
		size := int(d.uvarintMax(1 << 16))
		if d.err == nil && len(d.b) < size {
			d.err = errTruncated
		}
		if d.err != nil {
			return whole, compact, cmp.Or(first, fmt.Errorf("decode framed batch: %w", d.err))
		}
		entry := d.b[:size]
		d.b = d.b[size:]
		// Whatever follows the entry's compact fields is a later
		// version's; an entry shorter than them is skipped.
		c, _, err := DecodeCompact(entry)
		if err != nil {
			first = cmp.Or(first, fmt.Errorf("decode framed batch: %w", err))
			continue
		}
		compact = append(compact, c)
	}
	return whole, compact, first
}

// framedBatchVersionMin is the first framed batch version: anything lower
// is not a framed batch.
const framedBatchVersionMin = 2
