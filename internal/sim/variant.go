package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Variant is an experimental peerload policy: the CoreDNS plugin's answer
// with a different herd model, load reading, answer order or TTL. A
// variant is named by its spec (ParseVariant), so that any combination can
// be run side by side with the shipped policies without a code change:
//
//	herd/w=2                    today's peerload-herd, on the simulator's own herd model
//	herd/w=rate/cap=3           weight = logins per answer (login rate ÷ query rate), at most 3 per machine
//	seen/w=rate                 hand-outs count until their TTL ends; arrivals the reports show replace them
//	plain/age                   no herd; load1 extrapolated by each report's age
//	herd/b2=6                   each address the better of two among the best 6
//	herd/attl=5s-30s            TTL per answer from the answer's headroom
//	seen/write=10s/ttl=10s      the RFC 2136 updater: a set written every 10 s
//	herd/top=5/ttl=10s          top and TTL other than the lab's
type Variant struct {
	// Spec is the name the variant was parsed from.
	Spec string
	// Herd is the herd model: "plain" (none), "herd" (agent/herd's model:
	// a hand-out decays from the first report after it) or "seen" (see
	// seenHerd).
	Herd string
	// Weight is the load one answer is expected to add, split over its
	// names; RateWeight replaces it by the measured logins per answer
	// (clamped to MinWeight..MaxWeight).
	Weight     float64
	RateWeight bool
	// WeightPerTTL, when set, makes the weight WeightPerTTL·TTL(s), at
	// least 1: the weight grows with the logins an answer serves.
	WeightPerTTL float64
	// Decay is the time constant with which reports catch up (load1's).
	Decay time.Duration
	// Cap bounds the herd load one machine carries (0: no bound): a
	// hand-out beyond it adds only what is left up to Cap.
	Cap float64
	// Departures makes the seen herd subtract logouts the reports show
	// (load1 still counts them) as well as add arrivals.
	Departures bool
	// Age extrapolates each machine's load1 from its last two reports
	// toward the run queue they imply, to the present (Dahlin).
	Age bool
	// BestOfTwo, when > 0, fills each address of the answer with the
	// better of two machines drawn at random from the best BestOfTwo
	// not yet in it (Mitzenmacher).
	BestOfTwo int
	// MinTTL and MaxTTL, when MaxTTL > 0, make the TTL of each answer its
	// headroom (free cores over its machines, herd included) ÷ the login
	// rate of one resolver, within MinTTL..MaxTTL (Colajanni & Yu).
	MinTTL, MaxTTL time.Duration
	// Write, when > 0, models the RFC 2136 updater: the set is chosen
	// and written into the zone every Write, the server answers every
	// query with it, and the herd counts one hand-out per write that lives
	// Write + TTL (until the last resolver's copy expires), of weight
	// Weight, or with RateWeight the logins the reports showed in the
	// last Write.
	Write time.Duration
	// Top and TTL override the lab's when Top > 0, TTL >= 0.
	Top int
	TTL time.Duration
}

// Weight bounds of a measured weight.
const (
	MinWeight = 1
	MaxWeight = 20
)

// rateWindow is the time constant of the login and query rates a
// measured weight and the adaptive TTL use.
const rateWindow = time.Minute

// IsVariant reports whether name is a variant spec rather than a shipped
// policy.
func IsVariant(name string) bool {
	base, _, _ := strings.Cut(name, "/")
	return base == "plain" || base == "herd" || base == "seen"
}

// ParseVariant reads a variant spec: a herd model (plain, herd, seen)
// followed by /-separated options: w=N|rate, wttl=N (weight per TTL second),
// decay=D, cap=N, dep, age, b2=K, attl=D-D, write=D, top=N, ttl=D.
func ParseVariant(spec string) (Variant, error) {
	parts := strings.Split(spec, "/")
	v := Variant{Spec: spec, Herd: parts[0], Weight: 2, Decay: time.Minute, TTL: -1}
	if !IsVariant(spec) {
		return v, fmt.Errorf("variant %q: want plain, herd or seen first", spec)
	}
	for _, p := range parts[1:] {
		key, val, _ := strings.Cut(p, "=")
		var err error
		switch key {
		case "w":
			if val == "rate" {
				v.RateWeight = true
			} else {
				v.Weight, err = strconv.ParseFloat(val, 64)
			}
		case "wttl":
			v.WeightPerTTL, err = strconv.ParseFloat(val, 64)
		case "decay":
			v.Decay, err = time.ParseDuration(val)
		case "cap":
			v.Cap, err = strconv.ParseFloat(val, 64)
		case "dep":
			v.Departures = true
		case "age":
			v.Age = true
		case "b2":
			v.BestOfTwo, err = strconv.Atoi(val)
		case "attl":
			lo, hi, ok := strings.Cut(val, "-")
			if !ok {
				err = fmt.Errorf("want MIN-MAX")
				break
			}
			if v.MinTTL, err = time.ParseDuration(lo); err == nil {
				v.MaxTTL, err = time.ParseDuration(hi)
			}
		case "write":
			v.Write, err = time.ParseDuration(val)
		case "top":
			v.Top, err = strconv.Atoi(val)
		case "ttl":
			v.TTL, err = time.ParseDuration(val)
		default:
			err = fmt.Errorf("unknown option")
		}
		if err != nil {
			return v, fmt.Errorf("variant %q: %s: %v", spec, p, err)
		}
	}
	switch {
	case v.Weight <= 0 || v.Decay <= 0 || v.Cap < 0 || v.WeightPerTTL < 0:
		return v, fmt.Errorf("variant %q: weight and decay must be positive, cap not negative", spec)
	case v.Write < 0 || (v.Write > 0 && v.MaxTTL > 0):
		return v, fmt.Errorf("variant %q: write must be positive and fixes the TTL (no attl)", spec)
	case v.BestOfTwo < 0 || v.MinTTL < 0 || v.MaxTTL < v.MinTTL:
		return v, fmt.Errorf("variant %q: b2 must not be negative, attl MIN-MAX ascending", spec)
	case v.Herd == "plain" && (v.RateWeight || v.Cap > 0 || v.Departures):
		return v, fmt.Errorf("variant %q: w, cap and dep need a herd", spec)
	}
	return v, nil
}

// top and ttl are the variant's answer size and (fixed) TTL in cfg's lab.
func (v *Variant) top(cfg *Config) int {
	if v.Top > 0 {
		return v.Top
	}
	return cfg.Top
}

func (v *Variant) ttl(cfg *Config) time.Duration {
	if v.TTL >= 0 {
		return v.TTL
	}
	return cfg.TTL
}
