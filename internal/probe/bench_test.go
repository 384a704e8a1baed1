package probe

import (
	"context"
	"testing"
	"time"
)

// loopTransport is an in-memory network that echoes every probe at once: the engine's own cost
// per probe is all that is left to measure.
type loopTransport struct{ ch chan int }

func (l loopTransport) Send(ctx context.Context, seq int) (time.Time, error) {
	l.ch <- seq
	return time.Time{}, nil
}

func (l loopTransport) Receive(ctx context.Context) (Packet, error) {
	select {
	case seq := <-l.ch:
		return Packet{Seq: seq, Kind: KindReply, Bytes: 64, From: "127.0.0.1:12000"}, nil
	case <-ctx.Done():
		return Packet{}, ctx.Err()
	}
}

// BenchmarkRun measures the engine per probe (one op is one probe sent and answered) over an
// in-memory transport, stop-and-wait, with 32 probes in flight and as ping -f: allocs/op is
// what each probe costs the garbage collector.
func BenchmarkRun(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"stop-and-wait", Options{}},
		{"window-32", Options{Window: 32}},
		{"flood", Options{Flood: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t := loopTransport{ch: make(chan int, 64)}
			opts := bc.opts
			opts.Count = b.N
			replies := 0
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := Run(context.Background(), t, opts, func(ev Event) {
				if ev.Type == EventReply {
					replies++
				}
			}); err != nil {
				b.Fatal(err)
			}
			if replies != b.N {
				b.Fatalf("%d replies to %d probes", replies, b.N)
			}
		})
	}
}

// syncLoop is loopTransport read from the engine's goroutine (DeadlineReceiver), as the ICMP
// transport is in a flood.
type syncLoop struct{ loopTransport }

func (l syncLoop) ReceiveBefore(ctx context.Context, deadline time.Time) (Packet, bool, error) {
	select {
	case seq := <-l.ch:
		return Packet{Seq: seq, Kind: KindReply, Bytes: 64, From: "127.0.0.1:12000"}, true, nil
	default:
		return Packet{}, false, nil
	}
}

// BenchmarkRunSync is BenchmarkRun's flood with the engine reading too: no goroutine hand-off.
func BenchmarkRunSync(b *testing.B) {
	t := syncLoop{loopTransport{ch: make(chan int, 64)}}
	replies := 0
	b.ReportAllocs()
	if _, err := Run(context.Background(), t, Options{Count: b.N, Flood: true}, func(ev Event) {
		if ev.Type == EventReply {
			replies++
		}
	}); err != nil {
		b.Fatal(err)
	}
	if replies != b.N {
		b.Fatalf("%d replies to %d probes", replies, b.N)
	}
}
