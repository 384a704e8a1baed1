package proxy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// A Distribution is the shape of the delay's variation, as netem's "distribution" names it.
type Distribution string

// The distributions netem ships as tables (iproute2's normal, pareto and paretonormal), and
// its default, uniform.
const (
	Uniform      Distribution = "uniform"
	Normal       Distribution = "normal"
	Pareto       Distribution = "pareto"
	ParetoNormal Distribution = "paretonormal"
)

// Distributions lists the values Impairment.Distribution takes ("" is Uniform).
var Distributions = []Distribution{Uniform, Normal, Pareto, ParetoNormal}

// GilbertElliott is netem's "loss gemodel p r 1-h 1-k": a two-state Markov chain, Good and
// Bad, stepped once per packet. From Good the chain moves to Bad with probability P, from Bad
// back to Good with probability R; a packet is lost with probability LossBad (1-h) in Bad and
// LossGood (1-k) in Good, the state it was in before the step deciding. As in tc, R defaults
// to 1-P, LossBad to 1 and LossGood to 0 (see Gemodel), so that "p" alone is
// Bernoulli loss of p and a small R makes bursts of mean length 1/R.
type GilbertElliott struct {
	P, R, LossBad, LossGood float64
}

// MeanLoss is the long-run share of packets the chain loses.
func (g GilbertElliott) MeanLoss() float64 {
	if g.P+g.R == 0 {
		return g.LossGood
	}
	bad := g.P / (g.P + g.R)
	return bad*g.LossBad + (1-bad)*g.LossGood
}

// Gemodel makes the model from netem's "loss gemodel" arguments, p [r [1-h [1-k]]], filling
// in what is missing as tc does: r = 1-p, 1-h = 100%, 1-k = 0%.
func Gemodel(args ...float64) (GilbertElliott, error) {
	if len(args) == 0 || len(args) > 4 {
		return GilbertElliott{}, fmt.Errorf("proxy: gemodel with %d values: %w", len(args), errGemodel)
	}
	for _, v := range args {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return GilbertElliott{}, fmt.Errorf("proxy: gemodel %v: %w", v, errShare)
		}
	}
	g := GilbertElliott{P: args[0], R: 1 - args[0], LossBad: 1}
	if len(args) > 1 {
		g.R = args[1]
	}
	if len(args) > 2 {
		g.LossBad = args[2]
	}
	if len(args) > 3 {
		g.LossGood = args[3]
	}
	return g, nil
}

// crand is netem's correlated random source (get_crandom): each value is a uniform draw mixed
// with the last value, rho of the last and 1-rho of the new draw. rho 0 is plain uniform.
type crand struct {
	rho, last float64
}

func (c *crand) next(r *rand.Rand) float64 {
	u := r.Float64()
	if c.rho == 0 {
		return u
	}
	c.last = c.rho*c.last + (1-c.rho)*u
	return c.last
}

// tableScale is netem's NETEM_DIST_SCALE: its tables hold the standardised value times this,
// as int16, so that a table's values are clamped to ±32767/8192 ≈ ±4.
const tableScale = 8192

// deviate returns the standardised value of the distribution at quantile q in [0, 1), as the
// tables iproute2 generates for netem hold it: mean 0 and the scale netem multiplies by the
// jitter. Uniform is the exception, netem's default without a table: a value in [-1, 1).
func deviate(d Distribution, q float64) float64 {
	clamp := func(x float64) float64 { return max(-32768.0/tableScale, min(32767.0/tableScale, x)) }
	switch d {
	case Normal:
		return clamp(normalQuantile(q))
	case Pareto:
		return clamp(paretoDeviate(q))
	case ParetoNormal:
		// iproute2's paretonormal table: a quarter of the normal quantile and three quarters of
		// the Pareto value at the same position of the table.
		return clamp((normalQuantile(q) + 3*paretoDeviate(q)) / 4)
	}
	return 2*q - 1
}

// paretoDeviate is iproute2's Pareto table (shape 3, scale 1: mean 1.5) shifted to mean 0 and
// scaled by 4/3; the table runs from the smallest value up, as q does.
func paretoDeviate(q float64) float64 {
	u := 1 - q // in (0, 1]
	return (math.Pow(u, -1.0/3) - 1.5) * 4 / 3
}

// normalQuantile is the standard normal's inverse CDF.
func normalQuantile(q float64) float64 {
	if q <= 0 {
		return math.Inf(-1)
	}
	return math.Sqrt2 * math.Erfinv(2*q-1)
}

// A plan is what becomes of one copy of a packet: when it leaves (zero: now, unheld), which
// bit is flipped (-1: none), and whether it jumped the queue.
type plan struct {
	due       time.Time
	flipBit   int
	reordered bool
}

// verdict is what the link did with one packet: its copies' plans (none: lost), and why.
type verdict struct {
	plans      [2]plan
	n          int
	lost       bool // the loss model dropped a copy
	duplicated bool
	queueFull  bool // a copy did not fit under the queue limit
}

// link is one direction's netem: the loss model's state, the reorder gap counter and the rate
// limiter's clock, shared by every flow that crosses it as one qdisc is shared by every flow
// through an interface. The caller serialises calls (link.mu in a relay).
type link struct {
	imp                         Impairment
	rng                         *rand.Rand
	loss, dup, corrupt, reorder crand
	delay                       crand
	bad                         bool // Gilbert-Elliott state
	counter                     int  // packets since the last reordered one
	tat                         time.Time
	burst                       time.Duration
}

func newLink(imp Impairment, seed uint64) *link {
	l := &link{
		imp: imp,
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	l.loss.rho = imp.LossCorr
	l.delay.rho = imp.DelayCorr
	l.dup.rho = imp.DuplicateCorr
	l.reorder.rho = imp.ReorderCorr
	l.corrupt.rho = imp.CorruptCorr
	for _, c := range []*crand{&l.loss, &l.dup, &l.corrupt, &l.reorder, &l.delay} {
		c.last = l.rng.Float64()
	}
	if imp.Rate > 0 {
		l.burst = l.txTime(imp.RateBurst)
	}
	return l
}

func (l *link) txTime(bytes int) time.Duration {
	return time.Duration(float64(bytes) * float64(time.Second) / float64(l.imp.Rate))
}

// lossEvent is netem's loss_event: the Gilbert-Elliott chain when set, else correlated
// Bernoulli loss.
func (l *link) lossEvent() bool {
	if g := l.imp.LossBurst; g != nil {
		wasBad := l.bad
		if wasBad {
			if l.rng.Float64() < g.R {
				l.bad = false
			}
			return l.rng.Float64() < g.LossBad
		}
		if l.rng.Float64() < g.P {
			l.bad = true
		}
		return l.rng.Float64() < g.LossGood
	}
	return l.imp.Loss > 0 && l.loss.next(l.rng) < l.imp.Loss
}

// delaySample is netem's tabledist: the delay plus the jitter times the distribution's
// deviate, never below zero.
func (l *link) delaySample() time.Duration {
	if l.imp.Jitter == 0 {
		return l.imp.Delay
	}
	q := l.delay.next(l.rng)
	if q >= 1 {
		q = math.Nextafter(1, 0)
	}
	d := l.imp.Delay + time.Duration(deviate(l.imp.Distribution, q)*float64(l.imp.Jitter))
	return max(d, 0)
}

// decide runs one packet of size bytes through the link at now, as netem_enqueue does: the
// duplicate and loss draws decide how many copies go on; a duplicate goes through the link
// again on its own (netem re-enqueues it at the root with duplication off); each copy may have
// a bit flipped, and is either reordered (sent at once, ahead of the queue) or delayed by the
// delay and the rate limiter. fits reports whether a copy to be held that long fits under the
// queue limit; one that does not is dropped without touching the rate limiter's clock.
func (l *link) decide(now time.Time, size int, fits func(held bool) bool) verdict {
	var v verdict
	count := 1
	if l.imp.Duplicate > 0 && l.dup.next(l.rng) < l.imp.Duplicate {
		count++
		v.duplicated = true
	}
	if l.lossEvent() {
		count--
		v.lost = true
	}
	if count == 2 {
		// The duplicate, enqueued first as netem does, meets the loss model on its own.
		if l.lossEvent() {
			v.lost = true
		} else {
			l.place(&v, now, size, fits)
		}
	}
	if count >= 1 {
		l.place(&v, now, size, fits)
	}
	return v
}

func (l *link) place(v *verdict, now time.Time, size int, fits func(held bool) bool) {
	p := plan{flipBit: -1}
	if l.imp.Corrupt > 0 && l.corrupt.next(l.rng) < l.imp.Corrupt && size > 0 {
		p.flipBit = l.rng.IntN(size * 8)
	}
	// netem: with reordering on (gap ≥ 1), the packets inside the gap are delayed, and after
	// it each one jumps the queue with the reorder probability, which restarts the gap.
	gap := l.imp.ReorderGap
	if l.imp.Reorder > 0 && gap == 0 {
		gap = 1
	}
	if gap > 0 && l.counter >= gap-1 && l.reorder.next(l.rng) < l.imp.Reorder {
		if !fits(false) {
			v.queueFull = true
			return
		}
		p.reordered = true
		l.counter = 0
		v.plans[v.n] = p
		v.n++
		return
	}
	delay := l.delaySample()
	tat := l.tat
	depart := now
	if l.imp.Rate > 0 {
		// The rate limiter is a GCRA token bucket: the link is busy until tat; a packet leaves
		// once it has been sent at the rate (tat after it), less the bucket's depth.
		start := now
		if tat.After(start) {
			start = tat
		}
		tat = start.Add(l.txTime(size + l.imp.Overhead))
		if d := tat.Add(-l.burst); d.After(depart) {
			depart = d
		}
	}
	due := depart.Add(delay)
	held := due.After(now)
	if !fits(held) {
		v.queueFull = true
		return
	}
	l.tat = tat
	l.counter++
	if held {
		p.due = due
	}
	v.plans[v.n] = p
	v.n++
}

// streamDecision is what the link does with one chunk of a TCP stream: when it may be written
// (order kept: never before the chunk before it), and whether the connection is reset after a
// prefix of it.
type streamDecision struct {
	due     time.Time
	stalled bool
	reset   bool
	keep    int // bytes written before the reset
}

// decideStream runs a chunk of a byte stream through the link: a stream loses, duplicates and
// reorders nothing, so only the delay, the rate, a stall and a reset apply. last is the due
// time of the stream's previous chunk.
func (l *link) decideStream(now, last time.Time, size int) streamDecision {
	var d streamDecision
	if l.imp.Reset > 0 && l.rng.Float64() < l.imp.Reset {
		d.reset = true
		d.keep = l.rng.IntN(size)
		size = d.keep
	}
	depart := now
	if l.imp.Rate > 0 && size > 0 {
		start := now
		if l.tat.After(start) {
			start = l.tat
		}
		l.tat = start.Add(l.txTime(size + l.imp.Overhead))
		if t := l.tat.Add(-l.burst); t.After(depart) {
			depart = t
		}
	}
	due := depart.Add(l.delaySample())
	if l.imp.Stall > 0 && l.rng.Float64() < l.imp.Stall {
		d.stalled = true
		due = due.Add(l.imp.StallFor)
		if l.imp.Rate > 0 {
			// A stalled link sends nothing meanwhile, and has no credit for it afterwards.
			l.tat = l.tat.Add(l.imp.StallFor)
		}
	}
	if due.Before(last) {
		due = last
	}
	if due.After(now) {
		d.due = due
	}
	return d
}
