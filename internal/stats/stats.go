// Package stats turns the probe engine's events into the numbers ping prints: counts, loss and
// RTT statistics. Min, avg, max, mdev and the EWMA are computed exactly as iputils ping computes
// them (integer microseconds, in the same order), so that pinglab's summary line for a run is
// the one iputils would print for it; percentiles and jitter are pinglab's additions.
package stats

import (
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
)

// A Summary is the statistics of a run so far. Every RTT in it is a whole number of
// microseconds, as iputils keeps them.
type Summary struct {
	// Transmitted counts EventSent; Received counts EventReply (first replies in time).
	Transmitted, Received int
	// Duplicates counts EventDuplicate, Late EventLate, Errors EventError, Lost EventLost and
	// Timeouts EventTimeout. Late replies are not received: their probe is lost.
	Duplicates, Late, Errors, Lost, Timeouts int
	// Loss is iputils' packet loss in percent: (Transmitted-Received)*100/Transmitted, 0 when
	// nothing was sent. Errors and timeouts are lost probes.
	Loss float64
	// Min, Avg, Max and Mdev are iputils' "rtt min/avg/max/mdev" over the replies and the
	// duplicates (iputils times duplicates too), zero when nothing was received. Avg is
	// tsum/n and Mdev the integer square root of the variance, in integer microseconds.
	Min, Avg, Max, Mdev time.Duration
	// P50, P90 and P99 are nearest-rank percentiles of the replies' RTTs (duplicates and late
	// replies excluded): the smallest sample with at least p% of the samples at or below it,
	// which is always one of the measured RTTs.
	P50, P90, P99 time.Duration
	// P95 is the nearest-rank 95th percentile, as P90 and P99 (the live view's column).
	P95 time.Duration
	// Jitter is the mean absolute difference between consecutive replies' RTTs, in arrival
	// order; zero with fewer than two replies.
	Jitter time.Duration
	// EWMA is iputils' smoothed RTT (weight 1/8, the value of "min/avg/ewma/max").
	EWMA time.Duration
	// Last is the most recent reply's RTT.
	Last time.Duration
	// Samples is how many RTTs P50, P90, P99 and Jitter are computed from: one per reply.
	Samples int
	// ReplyMin, ReplyMax and ReplyAvg are over the replies only, to the nanosecond as measured
	// (the mean truncated to the nanosecond): the figures of the assignment handout's client,
	// which agree with the per-packet RTTs it prints (Python floats) where iputils' whole
	// microseconds would not.
	ReplyMin, ReplyMax, ReplyAvg time.Duration
	// OneWay is set when the server answered pinglab's one-way extension: the losses then have
	// directions and the replies one-way delays.
	OneWay bool
	// LostOutbound, LostInbound and LostUnknown count EventDirection by direction: requests
	// that never reached the server, replies lost on the way back, and losses no receipt told.
	LostOutbound, LostInbound, LostUnknown int
	// Outbound and Inbound are the one-way delays of the replies that carried a receipt.
	Outbound, Inbound OneWayDelay
}

// OneWayDelay is the delay of one direction, from the server's receive time: the outbound
// delay is the server's clock at receipt minus the client's at sending, the inbound the
// client's at arrival minus the server's at receipt (a server's hold on a reply counts on the
// way back). Unless the two clocks are synchronised, Min, Avg and Max hold their offset (and
// may be negative); Variation, the mean difference between consecutive replies' delays (the
// IPDV of RFC 3393, as irtt reports it per direction), does not.
type OneWayDelay struct {
	Min, Avg, Max, Variation time.Duration
	// Samples is how many replies it is computed from.
	Samples int
}

// GivenUp is how many probes were given up on: timed out, lost, or answered by an ICMP error.
// A late reply does not undo it.
func (s Summary) GivenUp() int { return s.Timeouts + s.Lost + s.Errors }

// SettledLoss is the loss in percent among the probes whose fate is known (received or given
// up on), 0 when none is: unlike Loss, iputils' figure for a finished run, it does not count a
// probe still in flight as lost, so it is the figure to show while a run goes on.
func (s Summary) SettledLoss() float64 {
	done := s.Received + s.GivenUp()
	if done == 0 {
		return 0
	}
	return float64(s.GivenUp()) * 100 / float64(done)
}

// Stats accumulates events. Its methods are safe for concurrent use, so that a SIGQUIT handler
// can read a Summary while the engine adds events.
type Stats struct {
	mu sync.Mutex

	sent, received, dups, late, errs, lost, timeouts int

	// iputils' accumulators, in microseconds: tsum and tsum2 over replies and duplicates.
	tsum, tsum2 int64
	tmin, tmax  int64
	ewma        int64 // iputils' rts->rtt: 8 times the smoothed RTT

	errKinds map[string]int

	rtts    []int64 // replies' RTTs in arrival order, µs
	absDiff int64   // sum of |rtts[i]-rtts[i-1]|, µs

	// The replies' RTTs to the nanosecond: least, most and sum.
	nsMin, nsMax, nsSum time.Duration

	oneWay            bool
	lostDir           [probe.Unknown + 1]int
	outbound, inbound delayAcc
}

// delayAcc accumulates one direction's delays, in nanoseconds.
type delayAcc struct {
	n                   int
	sum, min, max, last time.Duration
	absDiff             time.Duration
}

func (a *delayAcc) add(d time.Duration) {
	if a.n == 0 {
		a.min, a.max = d, d
	} else {
		diff := d - a.last
		if diff < 0 {
			diff = -diff
		}
		a.absDiff += diff
	}
	a.n++
	a.sum += d
	a.min, a.max, a.last = min(a.min, d), max(a.max, d), d
}

func (a *delayAcc) summary() OneWayDelay {
	if a.n == 0 {
		return OneWayDelay{}
	}
	o := OneWayDelay{Min: a.min, Avg: a.sum / time.Duration(a.n), Max: a.max, Samples: a.n}
	if a.n > 1 {
		o.Variation = a.absDiff / time.Duration(a.n-1)
	}
	return o
}

// New returns empty statistics.
func New() *Stats { return &Stats{} }

// Add counts one event.
func (s *Stats) Add(ev probe.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Type {
	case probe.EventSent:
		s.sent++
	case probe.EventReply:
		s.received++
		if s.received == 1 || ev.RTT < s.nsMin {
			s.nsMin = ev.RTT
		}
		if s.received == 1 || ev.RTT > s.nsMax {
			s.nsMax = ev.RTT
		}
		s.nsSum += ev.RTT
		t := micros(ev.RTT)
		s.time(t)
		if n := len(s.rtts); n > 0 {
			d := t - s.rtts[n-1]
			if d < 0 {
				d = -d
			}
			s.absDiff += d
		}
		s.rtts = append(s.rtts, t)
		if r := ev.Receipt; r != nil && !ev.Sent.IsZero() {
			s.oneWay = true
			s.outbound.add(r.Received.Sub(ev.Sent))
			s.inbound.add(ev.At.Sub(r.Received))
		}
	case probe.EventDirection:
		s.oneWay = true
		if ev.Dir >= probe.Outbound && ev.Dir <= probe.Unknown {
			s.lostDir[ev.Dir]++
		}
	case probe.EventDuplicate:
		s.dups++
		s.time(micros(ev.RTT))
	case probe.EventLate:
		s.late++
	case probe.EventTimeout:
		s.timeouts++
	case probe.EventLost:
		s.lost++
	case probe.EventError:
		s.errs++
		kind := "error"
		if ev.Err != nil {
			kind = ev.Err.Words()
		}
		if s.errKinds == nil {
			s.errKinds = make(map[string]int)
		}
		s.errKinds[kind]++
	}
}

// micros truncates an RTT to whole microseconds, as iputils measures it; a negative RTT (a clock
// that went back) counts as 0, as iputils' "taking countermeasures" does.
func micros(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Microsecond)
}

// time is iputils' gather_statistics for one timed reply or duplicate.
func (s *Stats) time(t int64) {
	if s.received+s.dups == 1 {
		s.tmin, s.tmax = t, t
	}
	s.tsum += t
	s.tsum2 += t * t
	s.tmin = min(s.tmin, t)
	s.tmax = max(s.tmax, t)
	if s.ewma == 0 {
		s.ewma = t * 8
	} else {
		s.ewma += t - s.ewma/8
	}
}

// Summary returns the statistics so far.
func (s *Stats) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summary(true)
}

// Running returns the statistics so far but the percentiles (P50, P90 and P99 stay zero), which
// take a sort of every RTT: the figures for a status line redrawn several times a second.
func (s *Stats) Running() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summary(false)
}

// ErrorKinds counts the errors so far by their words ("Destination Host Unreachable"); nil
// when there was none.
func (s *Stats) ErrorKinds() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.errKinds)
}

func (s *Stats) summary(percentiles bool) Summary {
	sum := Summary{
		Transmitted:  s.sent,
		Received:     s.received,
		Duplicates:   s.dups,
		Late:         s.late,
		Errors:       s.errs,
		Lost:         s.lost,
		Timeouts:     s.timeouts,
		Samples:      len(s.rtts),
		OneWay:       s.oneWay,
		LostOutbound: s.lostDir[probe.Outbound],
		LostInbound:  s.lostDir[probe.Inbound],
		LostUnknown:  s.lostDir[probe.Unknown],
		Outbound:     s.outbound.summary(),
		Inbound:      s.inbound.summary(),
	}
	if s.sent > 0 {
		sum.Loss = float64(s.sent-s.received) * 100 / float64(s.sent)
	}
	if s.received == 0 {
		return sum
	}
	total := int64(s.received + s.dups)
	avg := s.tsum / total
	var variance int64
	if s.tsum < math.MaxInt32 {
		// iputils' order: for small RTTs, dividing once keeps integer rounding from
		// swallowing the variance.
		variance = (s.tsum2 - s.tsum*s.tsum/total) / total
	} else {
		variance = s.tsum2/total - avg*avg
	}
	sum.Min = us(s.tmin)
	sum.Avg = us(avg)
	sum.Max = us(s.tmax)
	sum.Mdev = us(llsqrt(variance))
	sum.EWMA = us(s.ewma / 8)
	sum.Last = us(s.rtts[len(s.rtts)-1])
	sum.ReplyMin, sum.ReplyMax = s.nsMin, s.nsMax
	sum.ReplyAvg = s.nsSum / time.Duration(s.received)
	if n := len(s.rtts); n > 1 {
		sum.Jitter = time.Duration(s.absDiff) * time.Microsecond / time.Duration(n-1)
	}
	if !percentiles {
		return sum
	}
	sorted := slices.Clone(s.rtts)
	slices.Sort(sorted)
	sum.P50 = us(nearestRank(sorted, 50))
	sum.P90 = us(nearestRank(sorted, 90))
	sum.P95 = us(nearestRank(sorted, 95))
	sum.P99 = us(nearestRank(sorted, 99))
	return sum
}

func us(v int64) time.Duration { return time.Duration(v) * time.Microsecond }

// nearestRank returns the p-th percentile of sorted (not empty): the sample of rank ⌈p·n/100⌉.
func nearestRank(sorted []int64, p int) int64 {
	n := len(sorted)
	rank := (p*n + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// llsqrt is iputils' integer square root, quirks included: Newton's method stops when x stops
// decreasing and returns that last x, so for a = k²-1 it gives k, not k-1 (llsqrt(3) = 2,
// llsqrt(8) = 3); it returns a non-positive a, and MaxInt64, unchanged.
func llsqrt(a int64) int64 {
	x := a
	if x <= 0 {
		return x
	}
	prev := int64(math.MaxInt64)
	for x < prev {
		prev = x
		// (x + a/x) / 2 without overflowing when x is near MaxInt64.
		q := a / x
		x = x/2 + q/2 + (x%2+q%2)/2
	}
	return x
}
