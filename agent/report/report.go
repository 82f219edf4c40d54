// Package report is the wire format members exchange: a machine's load
// report, the compact entries and batches the relay carries, and the node
// meta that rides every membership message. Decoders are strict about
// what they read and never trust a length they were sent.
package report

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Load is one sample of a node's load, as read from /proc.
type Load struct {
	Load1, Load5, Load15 float64
	CPUs                 int
	// CPUUtil is the busy fraction (0..1) of all CPUs over the last
	// sampling interval, from /proc/stat deltas.
	CPUUtil float64
	// MemTotal, MemAvailable and SwapUsed are in bytes.
	MemTotal     uint64
	MemAvailable uint64
	SwapUsed     uint64
	// CPUPressure is /proc/pressure/cpu "some avg10" in percent; -1 when the
	// kernel has no PSI.
	CPUPressure float64
	// Users is the number of distinct logged-in human users.
	Users  int
	Uptime time.Duration
}

// MemAvailableFraction is MemAvailable/MemTotal, 1 when unknown.
func (l Load) MemAvailableFraction() float64 {
	if l.MemTotal == 0 {
		return 1
	}
	return float64(l.MemAvailable) / float64(l.MemTotal)
}

// CheckResult is the outcome of one failing (or passing) health check.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// Report is what a node tells the cluster about itself. Reports of one node
// are ordered by (Generation, Seq), never by clocks: Generation grows with
// every start of the agent (persisted in the state dir), Seq with every
// report of one run.
type Report struct {
	Node       string
	Generation uint64
	Seq        uint64
	// Age is how old the report already was when it was encoded: 0 for a
	// node's own report, the time since receipt when relayed in push/pull.
	Age time.Duration
	// Lifetime is the sender's promise: its next report follows within
	// Lifetime of this one, so a receiver knows how long this one stays
	// true without sharing the sender's timing settings. 0 means unknown
	// (a version 1 sender).
	Lifetime time.Duration
	// Base is the Seq of the report that began this one's epoch: the
	// report whose slow fields (everything but the hot ones, see Compact)
	// this one shares. A compact entry names its epoch, so a receiver that
	// holds any report of the epoch can rebuild the whole report from a few
	// bytes. Base == Seq starts a new epoch; reports before version 3 are
	// each their own epoch.
	Base    uint64
	Load    Load
	Failing []CheckResult
}

// Newer reports whether r supersedes o (a nil o is superseded by anything).
func (r *Report) Newer(o *Report) bool {
	if o == nil {
		return true
	}
	if r.Generation != o.Generation {
		return r.Generation > o.Generation
	}
	return r.Seq > o.Seq
}

const (
	// reportVersion 2 added Lifetime, 3 added Base (as Seq − Base, after
	// the failing checks); version 1 and 2 reports still decode. It is the
	// highest version 0.1.0 reads, so AppendReport writes it for good;
	// later versions are framed (AppendFramedReport).
	reportVersion = 3
	maxFailing    = 8
	// MaxReasonBytes bounds a failing check's reason on the wire.
	MaxReasonBytes = 120
	// MaxNameBytes bounds a node name on the wire.
	MaxNameBytes = 128
	// maxReportBytes bounds one encoded report.
	maxReportBytes = 1 + 1 + MaxNameBytes + 4*10 + 3*4 + 10 + 4 + 3*10 + 4 + 10 + 10 + 1 + maxFailing*(1+32+1+MaxReasonBytes) + 10
)

var errTruncated = errors.New("report truncated")

// AppendReport encodes r whole (about 60 bytes for a healthy node); see
// AppendCompact for the few bytes that change between samples.
func AppendReport(b []byte, r *Report) []byte {
	b = append(b, reportVersion)
	b = appendString(b, r.Node, MaxNameBytes)
	b = binary.AppendUvarint(b, r.Generation)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, uint64(max(r.Age, 0)/time.Millisecond))
	b = binary.AppendUvarint(b, uint64(max(r.Lifetime, 0)/time.Millisecond))
	l := r.Load
	b = appendFloat32(b, l.Load1)
	b = appendFloat32(b, l.Load5)
	b = appendFloat32(b, l.Load15)
	b = binary.AppendUvarint(b, uint64(max(l.CPUs, 0)))
	b = appendFloat32(b, l.CPUUtil)
	b = binary.AppendUvarint(b, l.MemTotal>>10)
	b = binary.AppendUvarint(b, l.MemAvailable>>10)
	b = binary.AppendUvarint(b, l.SwapUsed>>10)
	b = appendFloat32(b, l.CPUPressure)
	b = binary.AppendUvarint(b, uint64(max(l.Users, 0)))
	b = binary.AppendUvarint(b, uint64(max(l.Uptime, 0)/time.Second))
	n := min(len(r.Failing), maxFailing)
	b = append(b, byte(n))
	for _, c := range r.Failing[:n] {
		b = appendString(b, c.Name, 32)
		b = appendString(b, c.Reason, MaxReasonBytes)
	}
	return binary.AppendUvarint(b, r.Seq-min(r.Base, r.Seq))
}

// AppendFramedReport encodes r at version FramedReportVersion: the version,
// the length of the rest, the fields AppendReport writes after its
// version, then unknownFields. Only members that read Protocol2 may get
// it (0.1.0 rejects any version above 3).
func AppendFramedReport(b []byte, r *Report) []byte {
	body := AppendReport(nil, r)[1:]
	body = append(body, unknownFields...)
	b = append(b, FramedReportVersion)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// AppendReportAt encodes r as protocol speaks it: AppendReport below
// Protocol2, AppendFramedReport from it.
func AppendReportAt(b []byte, r *Report, protocol int) []byte {
	if protocol >= Protocol2 {
		return AppendFramedReport(b, r)
	}
	return AppendReport(b, r)
}

// maxFramedBytes bounds what a framed report says it holds: far more than
// any report, so fields a later release appends fit, and less than a
// stream message.
const maxFramedBytes = 1 << 16

// DecodeReport decodes one report from the front of b and returns the rest.
// Truncated or malformed input is an error, never a panic. A report of a
// version above reportVersion is framed (see AppendFramedReport): its
// version 3 fields are read and whatever a later release appended is
// skipped, so no report is rejected for being newer.
func DecodeReport(b []byte) (*Report, []byte, error) {
	r, rest, _, err := decodeReport(b)
	if err != nil {
		return nil, nil, err
	}
	return r, rest, nil
}

// decodeReport is DecodeReport that, when it fails, still says where the
// report ended if it knows (a framed report's length), so a list of
// reports can skip one it cannot read.
func decodeReport(b []byte) (r *Report, rest []byte, skip int, err error) {
	d := decoder{b: b}
	v := d.byte()
	switch {
	case d.err != nil:
		return nil, nil, 0, fmt.Errorf("decode report: %w", d.err)
	case v == 0:
		return nil, nil, 0, errors.New("decode report: version 0")
	case v <= reportVersion:
		r, err = decodeReportFields(&d, v)
		return r, d.b, 0, err
	}
	n := int(d.uvarintMax(maxFramedBytes))
	if d.err == nil && len(d.b) < n {
		d.err = errTruncated
	}
	if d.err != nil {
		return nil, nil, 0, fmt.Errorf("decode report of version %d: %w", v, d.err)
	}
	body := decoder{b: d.b[:n]}
	skip = len(b) - len(d.b) + n
	if r, err = decodeReportFields(&body, reportVersion); err != nil {
		return nil, nil, skip, fmt.Errorf("report of version %d: %w", v, err)
	}
	return r, d.b[n:], skip, nil
}

// decodeReportFields decodes what follows the version byte of a report
// of version v (1 to reportVersion).
func decodeReportFields(d *decoder, v byte) (*Report, error) {
	r := &Report{}
	r.Node = d.string(MaxNameBytes)
	r.Generation = d.uvarint()
	r.Seq = d.uvarint()
	r.Age = d.millis()
	if v >= 2 {
		r.Lifetime = d.millis()
	}
	r.Load.Load1 = d.float32()
	r.Load.Load5 = d.float32()
	r.Load.Load15 = d.float32()
	r.Load.CPUs = int(d.uvarintMax(1 << 20))
	r.Load.CPUUtil = d.float32()
	r.Load.MemTotal = d.uvarintMax(1<<53) << 10
	r.Load.MemAvailable = d.uvarintMax(1<<53) << 10
	r.Load.SwapUsed = d.uvarintMax(1<<53) << 10
	r.Load.CPUPressure = d.float32()
	r.Load.Users = int(d.uvarintMax(1 << 20))
	r.Load.Uptime = time.Duration(d.uvarintMax(math.MaxInt64/int64(time.Second))) * time.Second
	n := int(d.byte())
	if d.err == nil && n > maxFailing {
		d.err = fmt.Errorf("report lists %d failing checks, at most %d allowed", n, maxFailing)
	}
	for i := 0; i < n && d.err == nil; i++ {
		c := CheckResult{Name: d.string(32)}
		c.Reason = d.string(MaxReasonBytes)
		r.Failing = append(r.Failing, c)
	}
	r.Base = r.Seq
	if v >= 3 {
		r.Base = r.Seq - d.uvarintMax(int64(min(r.Seq, math.MaxInt64)))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode report: %w", d.err)
	}
	if r.Node == "" {
		return nil, errors.New("decode report: empty node name")
	}
	return r, nil
}

func appendString(b []byte, s string, limit int) []byte {
	if len(s) > limit {
		s = s[:limit]
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func appendFloat32(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint32(b, math.Float32bits(float32(f)))
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errTruncated
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarintMax(limit int64) uint64 {
	v := d.uvarint()
	if d.err == nil && v > uint64(limit) {
		d.err = fmt.Errorf("value %d out of range", v)
	}
	return v
}

// millis decodes a duration sent in milliseconds.
func (d *decoder) millis() time.Duration {
	return time.Duration(d.uvarintMax(math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
}

func (d *decoder) float32() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = errTruncated
		return 0
	}
	f := float64(math.Float32frombits(binary.BigEndian.Uint32(d.b)))
	d.b = d.b[4:]
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
		d.err = fmt.Errorf("number %v out of range", f)
	}
	return f
}

func (d *decoder) string(limit int) string {
	n := int(d.byte())
	if d.err != nil {
		return ""
	}
	if n > limit {
		d.err = fmt.Errorf("string of %d bytes, at most %d allowed", n, limit)
		return ""
	}
	if len(d.b) < n {
		d.err = errTruncated
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// AppendState encodes a push/pull state: a count, then the reports, then
// unknownFields. memberlist asks for the state without saying for whom,
// so it is always what 0.1.0 reads (version 3 reports; 0.1.0 ignores what
// follows the last one).
func AppendState(b []byte, reports []*Report) []byte {
	b = binary.AppendUvarint(b, uint64(len(reports)))
	for _, r := range reports {
		b = AppendReport(b, r)
	}
	return append(b, unknownFields...)
}

// DecodeState decodes what AppendState wrote, of any release: a report it
// cannot read is skipped when its length is known (a framed report), and
// whatever follows the last report is ignored. Otherwise it returns the
// reports that decoded before the first malformed one, and that error.
func DecodeState(b []byte) ([]*Report, error) {
	d := decoder{b: b}
	n := d.uvarintMax(1 << 20)
	if d.err != nil {
		return nil, fmt.Errorf("decode state: %w", d.err)
	}
	var out []*Report
	var first error
	rest := d.b
	for i := uint64(0); i < n; i++ {
		r, next, skip, err := decodeReport(rest)
		if err != nil {
			first = cmp.Or(first, fmt.Errorf("decode state: report %d: %w", i, err))
			if skip == 0 {
				return out, first
			}
			rest = rest[skip:]
			continue
		}
		out, rest = append(out, r), next
	}
	return out, first
}

// AppendName encodes a node name (a member's goodbye carries its own).
// Fields a later release adds go after the name (unknownFields), where
// every release's DecodeName ignores them.
func AppendName(b []byte, name string) []byte {
	return append(appendString(b, name, MaxNameBytes), unknownFields...)
}

// DecodeName decodes what AppendName wrote, ignoring what follows the
// name.
func DecodeName(b []byte) (string, error) {
	d := decoder{b: b}
	s := d.string(MaxNameBytes)
	return s, d.err
}

// AppendHello encodes a member's introduction: its name and gossip
// address. Fields a later release adds go after the address
// (unknownFields), where every release's DecodeHello ignores them.
func AppendHello(b []byte, name, addr string) []byte {
	b = appendString(b, name, MaxNameBytes)
	b = appendString(b, addr, 64)
	return append(b, unknownFields...)
}

// DecodeHello decodes what AppendHello wrote, ignoring what follows the
// address.
func DecodeHello(b []byte) (name, addr string, err error) {
	d := decoder{b: b}
	name = d.string(MaxNameBytes)
	addr = d.string(64)
	return name, addr, d.err
}
