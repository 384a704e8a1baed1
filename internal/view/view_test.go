package view

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
)

// feed gives target i n probes 100 ms apart: replies, with every fifth timed out and every
// seventh answered by an ICMP error.
func feed(w *Watch, i, n int, t0 time.Time) {
	for seq := 1; seq <= n; seq++ {
		sent := t0.Add(time.Duration(seq) * 100 * time.Millisecond)
		w.Event(i, probe.Event{Type: probe.EventSent, Seq: seq, Sent: sent, At: sent})
		switch {
		case seq%7 == 0:
			w.Event(i, probe.Event{Type: probe.EventError, Seq: seq, Sent: sent, At: sent, Err: &icmperr.Error{Type: 3, Code: 1}})
		case seq%5 == 0:
			w.Event(i, probe.Event{Type: probe.EventTimeout, Seq: seq, Sent: sent, At: sent.Add(time.Second)})
		default:
			rtt := time.Duration(seq) * time.Millisecond
			w.Event(i, probe.Event{Type: probe.EventReply, Seq: seq, Sent: sent, At: sent.Add(rtt), RTT: rtt})
		}
	}
}

// TestRenderFits checks that the screen fits the terminal, 80x24 and larger, in both scales,
// with the marks and the table's figures (the stats package's) on it.
func TestRenderFits(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	now := t0.Add(20 * time.Second)
	w := New([]string{"udp:127.0.0.1:12000", "icmp:127.0.0.1"}, func() time.Time { return now })
	feed(w, 0, 100, t0)
	feed(w, 1, 10, t0)
	for _, size := range [][2]int{{80, 24}, {100, 30}, {200, 60}} {
		for _, log := range []bool{false, true} {
			if log != w.log {
				w.ToggleLog()
			}
			s := w.Render(size[0], size[1])
			lines := strings.Split(s, "\n")
			if len(lines) > size[1] {
				t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
			}
			for _, l := range lines {
				if n := len([]rune(l)); n > size[0] {
					t.Errorf("%dx%d: a line of %d columns: %q", size[0], size[1], n, l)
				}
			}
			for _, want := range []string{"•", "x", "!", "now", "target", "p95"} {
				if !strings.Contains(s, want) {
					t.Errorf("%dx%d log=%v: no %q on the screen:\n%s", size[0], size[1], log, want, s)
				}
			}
		}
	}
	sum := w.Summary(0)
	// 100 probes: 14 errors (every 7th), 18 timeouts (the 20 fifths but the 35th and 70th).
	if got := []int{sum.Transmitted, sum.Received, sum.Errors, sum.Timeouts}; !cmp.Equal(got, []int{100, 68, 14, 18}) {
		t.Errorf("sent/received/errors/timeouts = %v", got)
	}
	row := w.table(100)[1]
	for _, want := range []string{"100", "68", "32.0", "14", ms(sum.Min), ms(sum.Max), ms(sum.P95)} {
		if !strings.Contains(row, " "+want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	w.Reset()
	if s := w.Summary(0); s.Transmitted != 0 {
		t.Errorf("after Reset: %+v", s)
	}
}

// TestPointsBounded checks that the chart's history holds at most MaxPoints per target.
func TestPointsBounded(t *testing.T) {
	w := New([]string{"a"}, nil)
	t0 := time.Now()
	for seq := range 3 * MaxPoints {
		w.Event(0, probe.Event{Type: probe.EventReply, Seq: seq, At: t0, RTT: time.Millisecond})
	}
	if n := len(w.targets[0].points); n > MaxPoints || n < MaxPoints/2 {
		t.Errorf("%d points held, want at most %d and at least half", n, MaxPoints)
	}
	if s := w.Summary(0); s.Received != 3*MaxPoints {
		t.Errorf("received %d, want every reply counted: %d", s.Received, 3*MaxPoints)
	}
}

// TestZoom checks the +/- steps and their ends.
func TestZoom(t *testing.T) {
	w := New(nil, nil)
	var got []time.Duration
	for range 4 {
		w.Zoom(true)
		got = append(got, windows[w.window])
	}
	for range 9 {
		w.Zoom(false)
	}
	got = append(got, windows[w.window])
	want := []time.Duration{30 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second, time.Hour}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("windows (-want +got):\n%s", diff)
	}
}
