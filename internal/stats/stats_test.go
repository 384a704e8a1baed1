package stats

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
)

const us1 = time.Microsecond

func sent(n int) []probe.Event {
	evs := make([]probe.Event, n)
	for i := range evs {
		evs[i] = probe.Event{Type: probe.EventSent, Seq: i + 1}
	}
	return evs
}

func reply(seq int, rtt time.Duration) probe.Event {
	return probe.Event{Type: probe.EventReply, Seq: seq, RTT: rtt}
}

func of(typ probe.EventType, seq int, rtt time.Duration) probe.Event {
	return probe.Event{Type: typ, Seq: seq, RTT: rtt}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		name   string
		events []probe.Event
		want   Summary
	}{
		{
			name: "nothing",
			want: Summary{},
		},
		{
			name:   "sent, no reply",
			events: append(sent(3), of(probe.EventTimeout, 1, 0), of(probe.EventError, 2, 0), of(probe.EventLost, 3, 0)),
			want:   Summary{Transmitted: 3, Timeouts: 1, Errors: 1, Lost: 1, Loss: 100},
		},
		{
			// 1234.567 µs is timed as 1234 µs, as iputils truncates to its microsecond clock.
			name:   "one reply",
			events: append(sent(1), reply(1, 1234567*time.Nanosecond)),
			want: Summary{
				Transmitted: 1, Received: 1, Samples: 1,
				Min: 1234 * us1, Avg: 1234 * us1, Max: 1234 * us1, Mdev: 0,
				P50: 1234 * us1, P90: 1234 * us1, P99: 1234 * us1, P95: 1234 * us1,
				EWMA: 1234 * us1, Last: 1234 * us1,
			},
		},
		{
			// Float arithmetic gives avg 101.333 µs and mdev 1.247 µs; iputils' integers give
			// avg 101 and mdev isqrt((30810 - 92416/3) / 3) = isqrt((30810-30805)/3) = isqrt(1) = 1.
			// EWMA: 800, 800+101-100 = 801, 801+103-100 = 804 -> 804/8 = 100 µs.
			// Jitter: (|101-100| + |103-101|) / 2 = 1.5 µs.
			name:   "integer arithmetic, not float",
			events: append(sent(4), reply(1, 100*us1), reply(2, 101*us1+999), reply(3, 103*us1)),
			want: Summary{
				Transmitted: 4, Received: 3, Samples: 3, Loss: 25,
				Min: 100 * us1, Avg: 101 * us1, Max: 103 * us1, Mdev: 1 * us1,
				P50: 101 * us1, P90: 103 * us1, P99: 103 * us1, P95: 103 * us1,
				Jitter: 1500 * time.Nanosecond, EWMA: 100 * us1, Last: 103 * us1,
			},
		},
		{
			// tsum >= INT_MAX takes iputils' other branch: tsum2/n - avg^2 =
			// (3e18+8e9+10)/3 - 1000000001^2 = 666666669, isqrt = 25819 µs (the true
			// deviation is 1.247 µs; iputils prints 25.819 ms, and so do we).
			name:   "large sums take iputils' other branch",
			events: append(sent(3), reply(1, 1e9*us1), reply(2, (1e9+1)*us1), reply(3, (1e9+3)*us1)),
			want: Summary{
				Transmitted: 3, Received: 3, Samples: 3,
				Min: 1e9 * us1, Avg: (1e9 + 1) * us1, Max: (1e9 + 3) * us1, Mdev: 25819 * us1,
				P50: (1e9 + 1) * us1, P90: (1e9 + 3) * us1, P99: (1e9 + 3) * us1, P95: (1e9 + 3) * us1,
				Jitter: 1500 * time.Nanosecond, EWMA: 1e9 * us1, Last: (1e9 + 3) * us1,
			},
		},
		{
			// iputils times duplicates: n = 2, tsum = 400, avg = 200,
			// var = (100000 - 160000/2) / 2 = 10000, mdev = 100. EWMA: 800, 800+300-100 = 1000 -> 125.
			// Percentiles and jitter use replies only.
			name:   "duplicate",
			events: append(sent(1), reply(1, 100*us1), of(probe.EventDuplicate, 1, 300*us1)),
			want: Summary{
				Transmitted: 1, Received: 1, Duplicates: 1, Samples: 1,
				Min: 100 * us1, Avg: 200 * us1, Max: 300 * us1, Mdev: 100 * us1,
				P50: 100 * us1, P90: 100 * us1, P99: 100 * us1, P95: 100 * us1,
				EWMA: 125 * us1, Last: 100 * us1,
			},
		},
		{
			// The late reply is neither received nor timed: loss 1/2 = 50%.
			name: "late reply is not received",
			events: append(sent(2), reply(1, 500*us1), of(probe.EventTimeout, 2, 0),
				of(probe.EventLate, 2, 3*time.Second)),
			want: Summary{
				Transmitted: 2, Received: 1, Late: 1, Timeouts: 1, Samples: 1, Loss: 50,
				Min: 500 * us1, Avg: 500 * us1, Max: 500 * us1,
				P50: 500 * us1, P90: 500 * us1, P99: 500 * us1, P95: 500 * us1,
				EWMA: 500 * us1, Last: 500 * us1,
			},
		},
		{
			// Nearest rank over 3,1,2,...: sorted 1..10 ms, p50 = rank 5, p90 = rank 9,
			// p99 = rank ceil(9.9) = 10. Jitter over arrival order 3,1,2,4,5,6,7,8,9,10:
			// 2+1+2+1+1+1+1+1+1 = 11 ms / 9.
			// avg 5.5 ms -> 5500 µs; var = (385e6 - 55000^2/10) / 10 = 8.25e6, mdev = 2872 µs.
			name: "percentiles",
			events: append(sent(10),
				reply(1, 3*time.Millisecond), reply(2, 1*time.Millisecond), reply(3, 2*time.Millisecond),
				reply(4, 4*time.Millisecond), reply(5, 5*time.Millisecond), reply(6, 6*time.Millisecond),
				reply(7, 7*time.Millisecond), reply(8, 8*time.Millisecond), reply(9, 9*time.Millisecond),
				reply(10, 10*time.Millisecond)),
			want: Summary{
				Transmitted: 10, Received: 10, Samples: 10,
				Min: time.Millisecond, Avg: 5500 * us1, Max: 10 * time.Millisecond, Mdev: 2872 * us1,
				P50: 5 * time.Millisecond, P90: 9 * time.Millisecond, P99: 10 * time.Millisecond, P95: 10 * time.Millisecond,
				Jitter: 11 * time.Millisecond / 9, EWMA: ewma(3000, 1000, 2000, 4000, 5000, 6000, 7000, 8000, 9000, 10000),
				Last: 10 * time.Millisecond,
			},
		},
		{
			// A negative RTT (clock went back) counts as 0, and iputils' EWMA restarts from the
			// next sample while it is 0.
			name:   "negative rtt",
			events: append(sent(2), reply(1, -5*us1), reply(2, 80*us1)),
			want: Summary{
				Transmitted: 2, Received: 2, Samples: 2,
				Min: 0, Avg: 40 * us1, Max: 80 * us1, Mdev: 40 * us1,
				P50: 0, P90: 80 * us1, P99: 80 * us1, P95: 80 * us1,
				Jitter: 80 * us1, EWMA: 80 * us1, Last: 80 * us1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for _, ev := range tt.events {
				s.Add(ev)
			}
			// The nanosecond figures of the replies have a test of their own, TestReplyFigures.
			ignore := cmpopts.IgnoreFields(Summary{}, "ReplyMin", "ReplyMax", "ReplyAvg")
			if diff := cmp.Diff(tt.want, s.Summary(), ignore); diff != "" {
				t.Errorf("Summary() (-want +got):\n%s", diff)
			}
		})
	}
}

// ewma is iputils' recurrence written out independently, for the long case.
func ewma(micros ...int64) time.Duration {
	var r int64
	for _, t := range micros {
		if r == 0 {
			r = 8 * t
			continue
		}
		r += t - r/8
	}
	return time.Duration(r/8) * us1
}

func TestLossIsIputils(t *testing.T) {
	s := New()
	for _, ev := range append(sent(3), reply(1, us1)) {
		s.Add(ev)
	}
	got := s.Summary().Loss
	if want := 200.0 / 3; math.Abs(got-want) > 1e-12 {
		t.Errorf("Loss = %v, want %v", got, want)
	}
}

// TestLLSqrt pins iputils' llsqrt, including the k²-1 overshoot (iputils prints mdev 0.002 ms
// for a variance of 3 µs²).
func TestLLSqrt(t *testing.T) {
	for _, tt := range []struct{ in, want int64 }{
		{-4, -4}, {0, 0}, {1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 2}, {8, 3}, {9, 3}, {15, 4}, {16, 4},
		{666666669, 25819}, {math.MaxInt64 - 1, 3037000499}, {math.MaxInt64, math.MaxInt64},
	} {
		if got := llsqrt(tt.in); got != tt.want {
			t.Errorf("llsqrt(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestConcurrent reads summaries while events are added, as a SIGQUIT handler does; run with -race.
func TestConcurrent(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 1; i <= 1000; i++ {
			s.Add(probe.Event{Type: probe.EventSent, Seq: i})
			s.Add(reply(i, time.Duration(i)*us1))
		}
	}()
	go func() {
		defer wg.Done()
		for range 200 {
			if sum := s.Summary(); sum.Received > sum.Transmitted {
				t.Errorf("received %d > transmitted %d", sum.Received, sum.Transmitted)
				return
			}
		}
	}()
	wg.Wait()
	if got := s.Summary(); got.Received != 1000 || got.Max != 1000*us1 {
		t.Errorf("after the run: received %d max %v, want 1000 and 1ms", got.Received, got.Max)
	}
}

func TestOneWay(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	s := New()
	// Server clock 100 ms ahead: the delays hold the offset, the variation does not.
	for i, d := range []struct{ out, in float64 }{{5, 10}, {7, 10}, {5, 10}, {5, 14}} {
		sent := t0.Add(time.Duration(i) * time.Second)
		rx := sent.Add(ms(100 + d.out))
		s.Add(probe.Event{Type: probe.EventSent, Seq: i + 1, Sent: sent})
		s.Add(probe.Event{Type: probe.EventReply, Seq: i + 1, Sent: sent, At: rx.Add(ms(d.in - 100)),
			RTT: ms(d.out + d.in), Receipt: &pingmsg.Receipt{Received: rx}})
	}
	for seq, dir := range []probe.Direction{probe.Outbound, probe.Inbound, probe.Inbound, probe.Unknown} {
		s.Add(probe.Event{Type: probe.EventSent, Seq: 10 + seq})
		s.Add(probe.Event{Type: probe.EventTimeout, Seq: 10 + seq})
		s.Add(probe.Event{Type: probe.EventDirection, Seq: 10 + seq, Dir: dir})
	}
	got := s.Summary()
	if !got.OneWay || got.LostOutbound != 1 || got.LostInbound != 2 || got.LostUnknown != 1 {
		t.Errorf("directions: one-way %v, lost %d out, %d in, %d unknown; want true, 1, 2, 1",
			got.OneWay, got.LostOutbound, got.LostInbound, got.LostUnknown)
	}
	wantOut := OneWayDelay{Min: ms(105), Avg: ms(105.5), Max: ms(107), Variation: ms(4.0 / 3), Samples: 4}
	wantIn := OneWayDelay{Min: ms(-90), Avg: ms(-89), Max: ms(-86), Variation: ms(4.0 / 3), Samples: 4}
	if diff := cmp.Diff(wantOut, got.Outbound); diff != "" {
		t.Errorf("outbound (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantIn, got.Inbound); diff != "" {
		t.Errorf("inbound (-want +got):\n%s", diff)
	}
	if plain := New().Summary(); plain.OneWay {
		t.Error("an empty run is one-way")
	}
}

// TestReplyFigures checks the replies' least, most and mean RTT to the nanosecond: duplicates
// and late replies are not replies, and nothing is rounded to microseconds.
func TestReplyFigures(t *testing.T) {
	s := New()
	for _, ev := range append(sent(4),
		reply(1, 1500123*time.Nanosecond), reply(2, 999*time.Nanosecond),
		probe.Event{Type: probe.EventDuplicate, Seq: 2, RTT: time.Nanosecond},
		probe.Event{Type: probe.EventTimeout, Seq: 3},
		probe.Event{Type: probe.EventLate, Seq: 3, RTT: time.Hour},
		reply(4, 2*time.Millisecond)) {
		s.Add(ev)
	}
	got := s.Summary()
	want := []time.Duration{999 * time.Nanosecond, 2 * time.Millisecond, (1500123 + 999 + 2000000) / 3 * time.Nanosecond}
	if diff := cmp.Diff(want, []time.Duration{got.ReplyMin, got.ReplyMax, got.ReplyAvg}); diff != "" {
		t.Errorf("ReplyMin, ReplyMax, ReplyAvg (-want +got):\n%s", diff)
	}
	if e := New().Summary(); e.ReplyMin != 0 || e.ReplyMax != 0 || e.ReplyAvg != 0 {
		t.Errorf("no reply: %v %v %v, want zeros", e.ReplyMin, e.ReplyMax, e.ReplyAvg)
	}
}

// TestRunning checks that Running is Summary without the percentiles.
func TestRunning(t *testing.T) {
	s := New()
	for _, ev := range append(sent(3), reply(1, 3*time.Millisecond), reply(2, time.Millisecond),
		probe.Event{Type: probe.EventError, Seq: 3}) {
		s.Add(ev)
	}
	want := s.Summary()
	if want.P50 == 0 || want.P90 == 0 || want.P99 == 0 {
		t.Fatalf("Summary has no percentiles to leave out: %+v", want)
	}
	want.P50, want.P90, want.P95, want.P99 = 0, 0, 0, 0
	if diff := cmp.Diff(want, s.Running()); diff != "" {
		t.Errorf("Running() (-want +got):\n%s", diff)
	}
}

func TestSettledLoss(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sum     Summary
		givenUp int
		settled float64
	}{
		{"nothing yet", Summary{Transmitted: 1}, 0, 0},
		{"one in flight", Summary{Transmitted: 2, Received: 1}, 0, 0},
		{"a timeout", Summary{Transmitted: 2, Received: 1, Timeouts: 1}, 1, 50},
		{"each way of losing, a late reply not undoing it", Summary{Transmitted: 7, Received: 3, Timeouts: 1, Lost: 1, Errors: 1, Late: 1}, 3, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sum.GivenUp(); got != tc.givenUp {
				t.Errorf("GivenUp() = %d, want %d", got, tc.givenUp)
			}
			if got := tc.sum.SettledLoss(); got != tc.settled {
				t.Errorf("SettledLoss() = %v, want %v", got, tc.settled)
			}
		})
	}
}

// TestErrorKindsAndP95 checks the live view's figures: the errors by their words and the 95th
// percentile by nearest rank.
func TestErrorKindsAndP95(t *testing.T) {
	s := New()
	evs := sent(22)
	for i := 1; i <= 20; i++ {
		evs = append(evs, reply(i, time.Duration(i)*time.Millisecond))
	}
	unreach := &icmperr.Error{Type: 3, Code: 1}
	evs = append(evs, probe.Event{Type: probe.EventError, Seq: 21, Err: unreach},
		probe.Event{Type: probe.EventError, Seq: 22, Err: unreach})
	for _, ev := range evs {
		s.Add(ev)
	}
	got := s.Summary()
	if got.P95 != 19*time.Millisecond {
		t.Errorf("P95 = %v, want 19ms (the 19th of 20)", got.P95)
	}
	want := map[string]int{unreach.Words(): 2}
	if diff := cmp.Diff(want, s.ErrorKinds()); diff != "" {
		t.Errorf("ErrorKinds (-want +got):\n%s", diff)
	}
}
