package icmpping

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
)

// TestReceiveBefore reads replies from the sending goroutine, as the probe engine does in a
// flood (probe.DeadlineReceiver), over raw IPv4 and IPv6 sockets with their filters: a reply,
// a deadline with nothing to read, a cancel while waiting, then Receive as before.
func TestReceiveBefore(t *testing.T) {
	testutil.RequireRoot(t)
	var _ probe.DeadlineReceiver = (*Conn)(nil)
	for _, target := range []string{"127.0.0.1", "::1"} {
		t.Run(target, func(t *testing.T) {
			c := dial(t, Config{Target: netip.MustParseAddr(target), Privileged: true})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for seq := 1; seq <= 100; seq++ {
				before := time.Now()
				if _, err := c.Send(ctx, seq); err != nil {
					t.Fatalf("send %d: %v", seq, err)
				}
				p, got, err := c.ReceiveBefore(ctx, time.Now().Add(5*time.Second))
				if err != nil || !got {
					t.Fatalf("seq %d: ReceiveBefore = %v, %v", seq, got, err)
				}
				if p.Seq != seq || p.Kind != probe.KindReply || p.From != target || p.TTL != 64 {
					t.Fatalf("seq %d: got %+v, want its reply from %s with ttl 64", seq, p, target)
				}
				if p.Time.Before(before) {
					t.Fatalf("seq %d: kernel timestamp %v before the send %v", seq, p.Time, before)
				}
			}
			// Nothing sent: the deadline passes, with nothing got and no error.
			if p, got, err := c.ReceiveBefore(ctx, time.Now().Add(20*time.Millisecond)); got || err != nil {
				t.Fatalf("ReceiveBefore with nothing sent = %+v, %v, %v", p, got, err)
			}
			// Waiting with no deadline, a cancel ends the wait.
			cctx, ccancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, _, err := c.ReceiveBefore(cctx, time.Time{})
				done <- err
			}()
			time.Sleep(10 * time.Millisecond) // usually waiting by now; either way it must return
			ccancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("ReceiveBefore after cancel = %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ReceiveBefore did not return after cancel")
			}
			checkLoopbackReply(t, c, target, 101)
		})
	}
}
