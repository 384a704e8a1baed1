package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pinglab/pinglab/internal/icmperr"
)

// The tests run inside testing/synctest bubbles: time there is a fake clock that moves only when
// every goroutine waits, so a run of many seconds takes none, and the times below are exact.

// answer is what the fake network does with one probe: a packet after a delay.
type answer struct {
	after time.Duration
	kind  Kind
	err   *icmperr.Error
	seq   int // when not 0, the packet names this seq instead of the probe's own
}

// fakeTransport answers each probe as script says, through timers on the bubble's clock.
type fakeTransport struct {
	script  func(seq int) []answer
	sendErr func(seq int) error
	ch      chan Packet

	mu    sync.Mutex
	sends []time.Duration // when each probe left, from the bubble's start
	t0    time.Time
}

func newFake(script func(seq int) []answer) *fakeTransport {
	return &fakeTransport{script: script, ch: make(chan Packet, 4096), t0: time.Now()}
}

func (f *fakeTransport) Send(ctx context.Context, seq int) (time.Time, error) {
	f.mu.Lock()
	f.sends = append(f.sends, time.Since(f.t0))
	f.mu.Unlock()
	if f.sendErr != nil {
		if err := f.sendErr(seq); err != nil {
			return time.Time{}, err
		}
	}
	for _, a := range f.script(seq) {
		p := Packet{Seq: seq, Kind: a.kind, Bytes: 33, From: "127.0.0.1:12000", Err: a.err}
		if a.seq != 0 {
			p.Seq = a.seq
		}
		time.AfterFunc(a.after, func() { f.ch <- p })
	}
	return time.Time{}, nil
}

func (f *fakeTransport) Receive(ctx context.Context) (Packet, error) {
	select {
	case p := <-f.ch:
		return p, nil
	case <-ctx.Done():
		return Packet{}, ctx.Err()
	}
}

func reply(after time.Duration) []answer { return []answer{{after: after, kind: KindReply}} }

// logRun runs the engine and returns its events as "T type seq [rtt]" lines, T from the start.
func logRun(t *testing.T, ctx context.Context, f *fakeTransport, opts Options) ([]string, Result, error) {
	t.Helper()
	var log []string
	res, err := Run(ctx, f, opts, func(ev Event) {
		line := fmt.Sprintf("%v %v %d", ev.At.Sub(f.t0), ev.Type, ev.Seq)
		if ev.RTT != 0 {
			line += fmt.Sprintf(" rtt=%v", ev.RTT)
		}
		if ev.Err != nil {
			line += " " + ev.Err.Words()
		}
		if ev.Reason != "" {
			line += " " + ev.Reason
		}
		log = append(log, line)
	})
	return log, res, err
}

func TestScheduleDoesNotDrift(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(int) []answer { return reply(30 * time.Millisecond) })
		_, res, err := logRun(t, t.Context(), f, Options{Count: 20, Interval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var want []time.Duration
		for k := range 20 {
			want = append(want, time.Duration(k)*100*time.Millisecond)
		}
		if diff := cmp.Diff(want, f.sends); diff != "" {
			t.Errorf("send times (-want +got):\n%s", diff)
		}
		// 1.9 s of schedule plus the last probe's reply, not 20 x (100 ms + RTT).
		if got, want := res.End.Sub(res.Start), 1930*time.Millisecond; got != want {
			t.Errorf("run took %v, want %v", got, want)
		}
	})
}

func TestStopAndWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(seq int) []answer {
			if seq == 3 {
				return nil // lost: the next probe leaves when its timeout passes
			}
			return reply(30 * time.Millisecond)
		})
		log, _, err := logRun(t, t.Context(), f, Options{Count: 4, Interval: 0, Timeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"0s sent 1", "30ms reply 1 rtt=30ms",
			"30ms sent 2", "60ms reply 2 rtt=30ms",
			"60ms sent 3", "560ms timeout 3",
			"560ms sent 4", "590ms reply 4 rtt=30ms",
		}
		if diff := cmp.Diff(want, log); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestTimeoutLateDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(seq int) []answer {
			switch seq {
			case 1:
				return []answer{{after: 10 * time.Millisecond, kind: KindReply}, {after: 20 * time.Millisecond, kind: KindReply}}
			case 2:
				return nil
			case 3:
				return reply(1500 * time.Millisecond)
			}
			return reply(5 * time.Millisecond)
		})
		log, _, err := logRun(t, t.Context(), f, Options{Count: 5, Interval: time.Second, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"0s sent 1", "10ms reply 1 rtt=10ms", "20ms duplicate 1 rtt=20ms",
			"1s sent 2",
			"2s timeout 2", "2s sent 3",
			"3s timeout 3", "3s sent 4", "3.005s reply 4 rtt=5ms",
			"3.5s late 3 rtt=1.5s",
			"4s sent 5", "4.005s reply 5 rtt=5ms",
		}
		if diff := cmp.Diff(want, log); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestLateBeforeTimeoutNoticed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The reply lands exactly at the deadline: it is late, and the timeout comes first.
		f := newFake(func(int) []answer { return reply(time.Second) })
		log, _, err := logRun(t, t.Context(), f, Options{Count: 1, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"0s sent 1", "1s timeout 1"}
		if diff := cmp.Diff(want, log); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(int) []answer { return reply(time.Millisecond) })
		log, res, err := logRun(t, t.Context(), f, Options{Interval: time.Second, Deadline: 5500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(f.sends); got != 6 {
			t.Errorf("sent %d probes before a 5.5 s deadline at 1 s, want 6 (log %q)", got, log)
		}
		if got := res.End.Sub(res.Start); got != 5500*time.Millisecond {
			t.Errorf("run took %v, want 5.5s", got)
		}
	})
}

func TestCountWithDeadlineWaitsForReplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// iputils: with -w, -c counts replies; probes go on until that many came.
		f := newFake(func(seq int) []answer {
			if seq <= 2 {
				return nil
			}
			return reply(time.Millisecond)
		})
		_, _, err := logRun(t, t.Context(), f, Options{Count: 3, Interval: 100 * time.Millisecond, Deadline: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(f.sends); got != 5 {
			t.Errorf("sent %d probes, want 5 (2 lost, then 3 replies)", got)
		}
	})
}

func TestCountWithDeadlineEndsAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(int) []answer { return nil })
		_, res, err := logRun(t, t.Context(), f, Options{Count: 3, Interval: time.Second, Deadline: 2500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(f.sends); got != 3 {
			t.Errorf("sent %d probes, want 3", got)
		}
		if got := res.End.Sub(res.Start); got != 2500*time.Millisecond {
			t.Errorf("run took %v, want 2.5s", got)
		}
	})
}

func TestErrorsAndLost(t *testing.T) {
	unreach := &icmperr.Error{Type: 3, Code: 3, From: netip.MustParseAddr("127.0.0.1")}
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(seq int) []answer {
			switch seq {
			case 1:
				return []answer{{after: time.Millisecond, kind: KindError, err: unreach}, {after: 2 * time.Millisecond, kind: KindError, err: unreach}}
			case 2:
				p := []answer{{after: 3 * time.Millisecond, kind: KindLost}}
				return p
			case 4:
				// An error after the timeout is still reported (ARP giving up after seconds).
				return []answer{{after: 2500 * time.Millisecond, kind: KindError, err: unreach}}
			}
			return nil
		})
		f.sendErr = func(seq int) error {
			if seq == 3 {
				return fmt.Errorf("connect: %w", &icmperr.Error{Type: icmperr.NoICMP, Reason: "Connection refused"})
			}
			return nil
		}
		log, _, err := logRun(t, t.Context(), f, Options{Count: 6, Interval: time.Second, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"0s sent 1", "1ms error 1 Destination Port Unreachable",
			"1s sent 2", "1.003s lost 2",
			"2s sent 3", "2s error 3 Connection refused",
			"3s sent 4", "4s timeout 4", "4s sent 5",
			"5s timeout 5", "5s sent 6", "5.5s error 4 Destination Port Unreachable",
			"6s timeout 6",
		}
		if diff := cmp.Diff(want, log); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestStrangersIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(seq int) []answer {
			return []answer{{after: time.Millisecond, kind: KindReply, seq: 999}, {after: 2 * time.Millisecond, kind: KindReply}}
		})
		log, _, err := logRun(t, t.Context(), f, Options{Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"0s sent 1", "2ms reply 1 rtt=2ms"}
		if diff := cmp.Diff(want, log); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestCancelEndsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		f := newFake(func(int) []answer { return reply(time.Millisecond) })
		time.AfterFunc(2500*time.Millisecond, cancel)
		_, res, err := logRun(t, ctx, f, Options{Interval: time.Second})
		if err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
		if got := len(f.sends); got != 3 {
			t.Errorf("sent %d probes, want 3", got)
		}
		if got := res.End.Sub(res.Start); got != 2500*time.Millisecond {
			t.Errorf("run took %v, want 2.5s", got)
		}
	})
}

var errBroken = errors.New("socket broken")

type brokenTransport struct{ sendErr, recvErr error }

func (b brokenTransport) Send(context.Context, int) (time.Time, error) { return time.Time{}, b.sendErr }
func (b brokenTransport) Receive(ctx context.Context) (Packet, error) {
	if b.recvErr != nil {
		return Packet{}, b.recvErr
	}
	<-ctx.Done()
	return Packet{}, ctx.Err()
}

func TestTransportFailureEndsRun(t *testing.T) {
	for name, tr := range map[string]brokenTransport{
		"send":    {sendErr: errBroken},
		"receive": {recvErr: errBroken},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, err := Run(t.Context(), tr, Options{Count: 3, Interval: time.Second}, func(Event) {})
				if !errors.Is(err, errBroken) {
					t.Errorf("Run = %v, want %v", err, errBroken)
				}
			})
		})
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Count: -1}, {Interval: -time.Second}, {Timeout: -1}, {Deadline: -1}} {
		if _, err := Run(t.Context(), brokenTransport{}, o, func(Event) {}); !errors.Is(err, errNegative) {
			t.Errorf("Run(%+v) = %v, want %v", o, err, errNegative)
		}
	}
}

func TestManyProbesForgetOldOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(int) []answer { return reply(time.Microsecond) })
		var replies int
		e := &engine{t: f, opts: Options{Count: 5000, Interval: 10 * time.Millisecond, Timeout: time.Second}}
		e.emit = func(ev Event) {
			if ev.Type == EventReply {
				replies++
			}
		}
		if _, err := e.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		if replies != 5000 {
			t.Errorf("%d replies, want 5000", replies)
		}
		// 10 s of probes at 10 ms is 1001; the ring holds them in the next power of two.
		if len(e.ring) > 2048 {
			t.Errorf("engine's ring holds %d probes", len(e.ring))
		}
	})
}

func TestWindowKeepsProbesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(int) []answer { return reply(10 * time.Millisecond) })
		_, res, err := logRun(t, t.Context(), f, Options{Count: 8, Window: 4})
		if err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{0, 0, 0, 0, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
		if diff := cmp.Diff(want, f.sends); diff != "" {
			t.Errorf("send times (-want +got):\n%s", diff)
		}
		if got := res.End.Sub(res.Start); got != 20*time.Millisecond {
			t.Errorf("run took %v, want 20ms", got)
		}
	})
}

func TestWindowHoldsTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One in flight at a time: a slow reply holds the next probe back past its turn.
		f := newFake(func(seq int) []answer {
			if seq == 1 {
				return reply(250 * time.Millisecond)
			}
			return reply(time.Millisecond)
		})
		if _, _, err := logRun(t, t.Context(), f, Options{Count: 3, Interval: 100 * time.Millisecond, Window: 1}); err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{0, 250 * time.Millisecond, 251 * time.Millisecond}
		if diff := cmp.Diff(want, f.sends); diff != "" {
			t.Errorf("send times (-want +got):\n%s", diff)
		}
	})
}

func TestFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Answered probes go back to back; an unanswered one holds the next only 10 ms.
		f := newFake(func(seq int) []answer {
			if seq == 2 {
				return nil
			}
			return reply(time.Millisecond)
		})
		if _, _, err := logRun(t, t.Context(), f, Options{Count: 4, Flood: true, Timeout: time.Second}); err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{0, time.Millisecond, 11 * time.Millisecond, 12 * time.Millisecond}
		if diff := cmp.Diff(want, f.sends); diff != "" {
			t.Errorf("send times (-want +got):\n%s", diff)
		}
	})
}

// TestLateCopiesOnce checks that a late reply that comes three times is late once, and its
// other copies duplicates.
func TestLateCopiesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(seq int) []answer {
			if seq > 1 {
				return reply(5 * time.Millisecond)
			}
			return []answer{{after: 1500 * time.Millisecond, kind: KindReply}, {after: 1600 * time.Millisecond, kind: KindReply},
				{after: 1700 * time.Millisecond, kind: KindReply}}
		})
		log, _, err := logRun(t, t.Context(), f, Options{Count: 3, Interval: time.Second, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"0s sent 1", "1s timeout 1", "1s sent 2", "1.005s reply 2 rtt=5ms",
			"1.5s late 1 rtt=1.5s", "1.6s duplicate 1 rtt=1.6s", "1.7s duplicate 1 rtt=1.7s",
			"2s sent 3", "2.005s reply 3 rtt=5ms"}
		if diff := cmp.Diff(want, log); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}
