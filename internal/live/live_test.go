package live

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func sent(seq int) probe.Event { return probe.Event{Type: probe.EventSent, Seq: seq} }
func reply(seq int, rtt time.Duration) probe.Event {
	return probe.Event{Type: probe.EventReply, Seq: seq, RTT: rtt}
}

// view returns a View of a run's Stats and the function that counts an event of the run and
// updates the View, as the client does.
func view(w *bytes.Buffer, isTerminal bool, now func() time.Time, every time.Duration) (*View, func(probe.Event)) {
	st := stats.New()
	v := New(w, isTerminal, st, now, every)
	return v, func(ev probe.Event) {
		st.Add(ev)
		v.Update()
	}
}

func TestViewOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	v, event := view(&buf, true, clk.now, 250*time.Millisecond)
	if !v.Active() {
		t.Fatal("Active() = false on a terminal")
	}
	event(sent(1)) // first event: drawn at once
	clk.t = clk.t.Add(100 * time.Millisecond)
	event(reply(1, 1500*time.Microsecond)) // 100ms later: too soon, not drawn
	clk.t = clk.t.Add(200 * time.Millisecond)
	event(sent(2)) // 300ms after the first draw: drawn
	clk.t = clk.t.Add(time.Second)
	event(probe.Event{Type: probe.EventTimeout, Seq: 2}) // drawn: a second after the last
	event(sent(3))                                       // too soon, not drawn
	clk.t = clk.t.Add(time.Second)
	event(reply(3, 500*time.Microsecond))
	v.Clear()
	v.Clear() // a second Clear writes nothing more

	want := clearLine + "1 sent, 0 received, 0 lost (0.0%), 1 in flight" +
		clearLine + "2 sent, 1 received, 0 lost (0.0%), 1 in flight, last 1.500 ms, avg 1.500 ms" +
		clearLine + "2 sent, 1 received, 1 lost (50.0%), 0 in flight, last 1.500 ms, avg 1.500 ms" +
		clearLine + "3 sent, 2 received, 1 lost (33.3%), 0 in flight, last 0.500 ms, avg 1.000 ms" +
		clearLine
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("terminal output (-want +got):\n%s", diff)
	}
	if got, want := v.Line(), "3 sent, 2 received, 1 lost (33.3%), 0 in flight, last 0.500 ms, avg 1.000 ms"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
}

// TestViewRateLimit checks that a fast run redraws at most once per interval: 1000 events
// within one second of the fake clock draw the line 4 times at 250ms.
func TestViewRateLimit(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	_, event := view(&buf, true, clk.now, 250*time.Millisecond)
	for i := 1; i <= 1000; i++ {
		event(sent(i))
		clk.t = clk.t.Add(time.Millisecond)
	}
	if got := strings.Count(buf.String(), clearLine); got != 4 {
		t.Errorf("drew the line %d times in 1s, want 4 (every 250ms)", got)
	}
}

func TestViewNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	v, event := view(&buf, false, nil, 0)
	if v.Active() {
		t.Error("Active() = true on a non-terminal")
	}
	event(sent(1))
	event(reply(1, time.Millisecond))
	v.Clear()
	if buf.Len() != 0 {
		t.Errorf("wrote %q to a non-terminal, want nothing", buf.String())
	}
}
