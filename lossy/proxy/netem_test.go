package proxy

import (
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func always(bool) bool { return true }

// run sends n packets of size bytes through a link spaced by gap and returns the verdicts.
func run(l *link, n, size int, gap time.Duration) []verdict {
	out := make([]verdict, n)
	for i := range out {
		out[i] = l.decide(t0.Add(time.Duration(i)*gap), size, always)
	}
	return out
}

func lossShare(vs []verdict) float64 {
	lost := 0
	for _, v := range vs {
		if v.n == 0 {
			lost++
		}
	}
	return float64(lost) / float64(len(vs))
}

// meanBurst is the mean length of runs of lost packets.
func meanBurst(vs []verdict) float64 {
	runs, lost, in := 0, 0, false
	for _, v := range vs {
		if v.n == 0 {
			lost++
			if !in {
				runs++
			}
		}
		in = v.n == 0
	}
	if runs == 0 {
		return 0
	}
	return float64(lost) / float64(runs)
}

func TestLoss(t *testing.T) {
	const n = 200000
	for _, tt := range []struct {
		name            string
		imp             Impairment
		loss, burst     float64 // expected share and mean burst length
		lossTol, burstT float64
	}{
		{"bernoulli 20%", Impairment{Loss: 0.2}, 0.2, 1.25, 0.005, 0.03},
		{"none", Impairment{}, 0, 0, 0, 0},
		{"all", Impairment{Loss: 1}, 1, n, 0, 0},
		// netem's correlation mixes each draw with the last: the mean stays near P for small
		// P only approximately, but losses come in longer runs than Bernoulli's 1/(1-P).
		{"gemodel p only is bernoulli", Impairment{LossBurst: &GilbertElliott{P: 0.1, R: 0.9, LossBad: 1}}, 0.1, 1 / 0.9, 0.004, 0.03},
		// p 2%, r 25%: Bad 2/27 of the time, bursts of mean 1/r = 4.
		{"gemodel bursts", Impairment{LossBurst: &GilbertElliott{P: 0.02, R: 0.25, LossBad: 1}}, 0.02 / 0.27, 4, 0.006, 0.4},
		// 1-h 50%, 1-k 1%: the mean is the chain's.
		{"gemodel 4 params", Impairment{LossBurst: &GilbertElliott{P: 0.05, R: 0.2, LossBad: 0.5, LossGood: 0.01}}, (&GilbertElliott{P: 0.05, R: 0.2, LossBad: 0.5, LossGood: 0.01}).MeanLoss(), 0, 0.006, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vs := run(newLink(tt.imp, 1), n, 100, time.Millisecond)
			if got := lossShare(vs); math.Abs(got-tt.loss) > tt.lossTol {
				t.Errorf("loss %.4f, want %.4f ± %.4f", got, tt.loss, tt.lossTol)
			}
			if tt.burst > 0 && tt.burstT < 10 {
				if got := meanBurst(vs); math.Abs(got-tt.burst) > tt.burstT {
					t.Errorf("mean burst %.3f, want %.3f ± %.3f", got, tt.burst, tt.burstT)
				}
			}
		})
	}
}

func TestLossCorrelation(t *testing.T) {
	plain := meanBurst(run(newLink(Impairment{Loss: 0.3}, 2), 100000, 100, time.Millisecond))
	corr := meanBurst(run(newLink(Impairment{Loss: 0.3, LossCorr: 0.75}, 2), 100000, 100, time.Millisecond))
	if corr < 1.1*plain {
		t.Errorf("mean burst with 75%% correlation %.2f, without %.2f: want the correlated one longer", corr, plain)
	}
}

func TestGemodelDefaults(t *testing.T) {
	for _, tt := range []struct {
		args []float64
		want GilbertElliott
		err  string
	}{
		{[]float64{0.05}, GilbertElliott{P: 0.05, R: 0.95, LossBad: 1}, ""},
		{[]float64{0.05, 0.3}, GilbertElliott{P: 0.05, R: 0.3, LossBad: 1}, ""},
		{[]float64{0.05, 0.3, 0.8, 0.01}, GilbertElliott{P: 0.05, R: 0.3, LossBad: 0.8, LossGood: 0.01}, ""},
		{nil, GilbertElliott{}, "want P"},
		{[]float64{1, 1, 1, 1, 1}, GilbertElliott{}, "want P"},
		{[]float64{2}, GilbertElliott{}, "share"},
	} {
		g, err := Gemodel(tt.args...)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Gemodel(%v) error %v, want one with %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, g, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })); diff != "" {
			t.Errorf("Gemodel(%v) (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestDuplicate(t *testing.T) {
	// 30% duplicated, 10% lost: a packet ends up with 0 copies 0.7*0.1 + 0.3*0.1*0.1 of the
	// time (lost and, if duplicated, its copy lost too), 2 copies 0.3*0.9*0.9.
	vs := run(newLink(Impairment{Duplicate: 0.3, Loss: 0.1}, 3), 200000, 100, time.Millisecond)
	var copies [3]int
	for _, v := range vs {
		copies[v.n]++
	}
	n := float64(len(vs))
	for k, want := range []float64{0.7*0.1 + 0.3*0.1*0.1, 0, 0.3 * 0.9 * 0.9} {
		if k == 1 {
			continue
		}
		if got := float64(copies[k]) / n; math.Abs(got-want) > 0.005 {
			t.Errorf("%d copies: share %.4f, want %.4f", k, got, want)
		}
	}
}

func TestCorrupt(t *testing.T) {
	vs := run(newLink(Impairment{Corrupt: 0.25}, 4), 100000, 10, time.Millisecond)
	flipped := 0
	for _, v := range vs {
		if b := v.plans[0].flipBit; b >= 0 {
			flipped++
			if b >= 80 {
				t.Fatalf("bit %d of a 10-byte packet", b)
			}
		}
	}
	if got := float64(flipped) / 100000; math.Abs(got-0.25) > 0.01 {
		t.Errorf("corrupted %.4f, want 0.25", got)
	}
}

func TestReorderGap(t *testing.T) {
	// reorder 100% gap 5: netem delays four packets, then sends the fifth at once, over again.
	vs := run(newLink(Impairment{Delay: 10 * time.Millisecond, Reorder: 1, ReorderGap: 5}, 5), 20, 100, time.Millisecond)
	var got []int
	for i, v := range vs {
		if v.plans[0].reordered {
			got = append(got, i)
		}
		if v.plans[0].reordered != v.plans[0].due.IsZero() {
			t.Errorf("packet %d: reordered %v but due %v", i, v.plans[0].reordered, v.plans[0].due)
		}
	}
	if diff := cmp.Diff([]int{4, 9, 14, 19}, got); diff != "" {
		t.Errorf("reordered packets (-want +got):\n%s", diff)
	}
	// Gap 1 (the default): each packet jumps the queue with the probability alone.
	vs = run(newLink(Impairment{Delay: 10 * time.Millisecond, Reorder: 0.25}, 6), 100000, 100, time.Millisecond)
	r := 0
	for _, v := range vs {
		if v.plans[0].reordered {
			r++
		}
	}
	if got := float64(r) / 100000; math.Abs(got-0.25) > 0.01 {
		t.Errorf("reordered %.4f, want 0.25", got)
	}
}

func TestDelayDistributions(t *testing.T) {
	const n = 100000
	delay, jitter := 50*time.Millisecond, 10*time.Millisecond
	for _, tt := range []struct {
		dist             Distribution
		mean, sd         float64 // ms
		min, max         float64 // ms, bounds no draw passes
		meanTol, sdTol   float64
		p50, p50Tol, p99 float64
	}{
		{Uniform, 50, 10 / math.Sqrt(3), 40, 60, 0.1, 0.1, 50, 0.2, 59.8},
		{Normal, 50, 10, 10, 90, 0.15, 0.15, 50, 0.2, 73.3},
		// Pareto shape 3 shifted to mean 0: skewed right, median below the mean.
		// Pareto shape 3 shifted to mean 0: skewed right, median below the mean; the table's
		// clamp at 32767/8192 cuts the tail, which brings the mean a little below 50 ms.
		{Pareto, 50 + 10*tableMean(Pareto), 0, 50 - 10*(0.5*4/3), 50 + 10*32767.0/8192, 0.3, 0, 50 + 10*(math.Pow(0.5, -1.0/3)-1.5)*4/3, 0.3, 0},
		{ParetoNormal, 50 + 10*tableMean(ParetoNormal), 0, 10, 90, 0.3, 0, 0, 0, 0},
	} {
		t.Run(string(tt.dist), func(t *testing.T) {
			l := newLink(Impairment{Delay: delay, Jitter: jitter, Distribution: tt.dist}, 7)
			ds := make([]float64, n)
			var sum float64
			for i := range ds {
				ds[i] = float64(l.delaySample()) / 1e6
				sum += ds[i]
				if ds[i] < tt.min-1e-9 || ds[i] > tt.max+1e-9 {
					t.Fatalf("delay %.3f ms outside %.3f..%.3f", ds[i], tt.min, tt.max)
				}
			}
			mean := sum / n
			var ss float64
			for _, d := range ds {
				ss += (d - mean) * (d - mean)
			}
			sd := math.Sqrt(ss / n)
			sort.Float64s(ds)
			if math.Abs(mean-tt.mean) > tt.meanTol {
				t.Errorf("mean %.3f ms, want %.3f ± %.2f", mean, tt.mean, tt.meanTol)
			}
			if tt.sdTol > 0 && math.Abs(sd-tt.sd) > tt.sdTol {
				t.Errorf("sd %.3f ms, want %.3f ± %.2f", sd, tt.sd, tt.sdTol)
			}
			if tt.p50Tol > 0 && math.Abs(ds[n/2]-tt.p50) > tt.p50Tol {
				t.Errorf("median %.3f ms, want %.3f", ds[n/2], tt.p50)
			}
			if tt.p99 > 0 && math.Abs(ds[n*99/100]-tt.p99) > 0.5 {
				t.Errorf("p99 %.3f ms, want %.3f", ds[n*99/100], tt.p99)
			}
		})
	}
}

// tableMean is the mean of the distribution's deviate over its quantiles, as netem's table.
func tableMean(d Distribution) float64 {
	const n = 1 << 20
	var s float64
	for i := range n {
		s += deviate(d, (float64(i)+0.5)/n)
	}
	return s / n
}

// dueAfter is how long after now a plan leaves: 0 for a packet sent at once.
func dueAfter(p plan, now time.Time) time.Duration {
	if p.due.IsZero() {
		return 0
	}
	return p.due.Sub(now)
}

func TestRate(t *testing.T) {
	// 1000 bytes at 100 kB/s: one every 10 ms; a burst of 5 packets sent at once leaves at
	// 10, 20, ... 50 ms (netem's packet time, no bucket depth).
	l := newLink(Impairment{Rate: 100000}, 8)
	var got []time.Duration
	for range 5 {
		v := l.decide(t0, 1000, always)
		got = append(got, v.plans[0].due.Sub(t0))
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond, 50 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("departures (-want +got):\n%s", diff)
	}
	// A bucket 2000 bytes deep lets the first three go at once (the third is sent by 30 ms, 20
	// ms of credit), then one per 10 ms; with 28 bytes overhead each counts 1028.
	l = newLink(Impairment{Rate: 100000, RateBurst: 2000}, 8)
	got = got[:0]
	for range 5 {
		got = append(got, dueAfter(l.decide(t0, 1000, always).plans[0], t0))
	}
	want = []time.Duration{0, 0, 10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("departures with a 2000-byte bucket (-want +got):\n%s", diff)
	}
	// Rate then delay: the 50 ms delay adds to the packet's time on the link.
	l = newLink(Impairment{Rate: 100000, Delay: 50 * time.Millisecond, Overhead: 28}, 8)
	if got := l.decide(t0, 972, always).plans[0].due.Sub(t0); got != 60*time.Millisecond {
		t.Errorf("972+28 bytes at 100 kB/s with 50 ms delay: due %v, want 60ms", got)
	}
	// A packet that does not fit leaves the link's clock alone.
	l = newLink(Impairment{Rate: 100000}, 8)
	if v := l.decide(t0, 1000, func(bool) bool { return false }); v.n != 0 || !v.queueFull {
		t.Errorf("verdict %+v, want a queue drop", v)
	}
	if got := l.decide(t0, 1000, always).plans[0].due.Sub(t0); got != 10*time.Millisecond {
		t.Errorf("after a queue drop: due %v, want 10ms", got)
	}
}

func TestStream(t *testing.T) {
	// Jitter never reorders a stream: each chunk is due no earlier than the one before.
	l := newLink(Impairment{Delay: 20 * time.Millisecond, Jitter: 20 * time.Millisecond}, 9)
	var last time.Time
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * 100 * time.Microsecond)
		d := l.decideStream(now, last, 100)
		if d.due.Before(last) {
			t.Fatalf("chunk %d due %v before the last one's %v", i, d.due, last)
		}
		last = d.due
	}
	// Reset 100%: a prefix shorter than the chunk, then the reset.
	l = newLink(Impairment{Reset: 1}, 9)
	for range 100 {
		d := l.decideStream(t0, time.Time{}, 10)
		if !d.reset || d.keep < 0 || d.keep >= 10 {
			t.Fatalf("decision %+v, want a reset after 0-9 bytes", d)
		}
	}
	// Stall 100% for 1s: due a second later.
	l = newLink(Impairment{Stall: 1, StallFor: time.Second}, 9)
	if d := l.decideStream(t0, time.Time{}, 10); !d.stalled || d.due.Sub(t0) != time.Second {
		t.Errorf("decision %+v, want a stall of 1s", d)
	}
}

func TestSeedReproducible(t *testing.T) {
	imp := Impairment{Loss: 0.3, Duplicate: 0.1, Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Corrupt: 0.1}
	a := run(newLink(imp, 42), 1000, 100, time.Millisecond)
	b := run(newLink(imp, 42), 1000, 100, time.Millisecond)
	c := run(newLink(imp, 43), 1000, 100, time.Millisecond)
	opt := cmp.AllowUnexported(verdict{}, plan{})
	if diff := cmp.Diff(a, b, opt); diff != "" {
		t.Errorf("same seed, different decisions:\n%s", diff)
	}
	if cmp.Equal(a, c, opt) {
		t.Error("seeds 42 and 43 made the same decisions")
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		proto string
		imp   Impairment
		err   string
	}{
		{"ok udp", "udp", Impairment{Loss: 0.2, Delay: time.Second, Jitter: time.Second, Reorder: 0.1}, ""},
		{"ok tcp", "tcp", Impairment{Delay: time.Second, Rate: 1000, Reset: 0.1, Stall: 0.1, StallFor: time.Second}, ""},
		{"share", "udp", Impairment{Loss: 1.5}, "loss 1.5"},
		{"nan", "udp", Impairment{Duplicate: math.NaN()}, "duplicate NaN"},
		{"jitter", "udp", Impairment{Delay: time.Millisecond, Jitter: 2 * time.Millisecond}, "jitter needs a delay"},
		{"normal jitter may exceed", "udp", Impairment{Delay: time.Millisecond, Jitter: 2 * time.Millisecond, Distribution: Normal}, ""},
		{"dist", "udp", Impairment{Distribution: "gauss"}, "distribution must be"},
		{"reorder", "udp", Impairment{Reorder: 0.1}, "reorder needs a delay"},
		{"both losses", "udp", Impairment{Loss: 0.1, LossBurst: &GilbertElliott{P: 0.1}}, "exclude"},
		{"tcp loss", "tcp", Impairment{Loss: 0.1}, "TCP stream"},
		{"udp reset", "udp", Impairment{Reset: 0.1}, "TCP streams"},
		{"stall without time", "tcp", Impairment{Stall: 0.1}, "stall-for"},
		{"long delay", "udp", Impairment{Delay: 2 * time.Minute}, "out of range"},
		{"proto", "sctp", Impairment{}, "udp or tcp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.imp.Validate(tt.proto)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}
