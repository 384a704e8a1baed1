package probe

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// syncFake is fakeTransport as a DeadlineReceiver; it counts the calls to Receive, which the
// engine makes only when it runs a reading goroutine.
type syncFake struct {
	*fakeTransport
	receives atomic.Int64
}

func (s *syncFake) Receive(ctx context.Context) (Packet, error) {
	s.receives.Add(1)
	return s.fakeTransport.Receive(ctx)
}

func (s *syncFake) ReceiveBefore(ctx context.Context, deadline time.Time) (Packet, bool, error) {
	var tc <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		tc = t.C
	}
	select {
	case p := <-s.ch:
		return p, true, nil
	case <-tc:
		return Packet{}, false, nil
	case <-ctx.Done():
		return Packet{}, false, ctx.Err()
	}
}

// eventLog runs the engine over t and returns its events as logRun does.
func eventLog(t *testing.T, ctx context.Context, tr Transport, t0 time.Time, opts Options) []string {
	t.Helper()
	var log []string
	_, err := Run(ctx, tr, opts, func(ev Event) {
		line := fmt.Sprintf("%v %v %d", ev.At.Sub(t0), ev.Type, ev.Seq)
		if ev.RTT != 0 {
			line += fmt.Sprintf(" rtt=%v", ev.RTT)
		}
		log = append(log, line)
	})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// TestDeadlineReceiverSameEvents checks that a run reading from the engine's goroutine
// (DeadlineReceiver: stop-and-wait and flood) emits exactly what a run with a reading
// goroutine does, losses and late replies included, and that other modes still read from a
// goroutine.
func TestDeadlineReceiverSameEvents(t *testing.T) {
	script := func(seq int) []answer {
		switch seq {
		case 2:
			return nil // lost
		case 3:
			return reply(1500 * time.Millisecond) // late, after its 1 s timeout
		}
		return reply(time.Millisecond)
	}
	for _, tt := range []struct {
		name string
		opts Options
		sync bool
	}{
		{"stop-and-wait", Options{Count: 5}, true},
		{"flood", Options{Count: 5, Flood: true}, true},
		{"window", Options{Count: 5, Window: 2}, false},
		{"interval", Options{Count: 5, Interval: 100 * time.Millisecond}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want, got []string
			synctest.Test(t, func(t *testing.T) {
				f := newFake(script)
				want = eventLog(t, t.Context(), f, f.t0, tt.opts)
			})
			synctest.Test(t, func(t *testing.T) {
				s := &syncFake{fakeTransport: newFake(script)}
				got = eventLog(t, t.Context(), s, s.t0, tt.opts)
				if n := s.receives.Load(); (n == 0) != tt.sync {
					t.Errorf("Receive called %d times; want it called: %v", n, !tt.sync)
				}
			})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events with ReceiveBefore (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeadlineReceiverCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s := &syncFake{fakeTransport: newFake(func(int) []answer { return nil })}
		time.AfterFunc(2500*time.Millisecond, cancel)
		res, err := Run(ctx, s, Options{}, func(Event) {})
		if err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
		if got := res.End.Sub(res.Start); got != 2500*time.Millisecond {
			t.Errorf("run took %v, want 2.5s", got)
		}
	})
}
