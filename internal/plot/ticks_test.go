package plot

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWholeTicks: a count axis is labelled with whole numbers only, however few the counts.
func TestWholeTicks(t *testing.T) {
	for _, r := range [][2]float64{{0, 1}, {0, 3.3}, {0, 7}, {0, 250}} {
		var labels []string
		for _, tk := range (wholeTicks{}).Ticks(r[0], r[1]) {
			if tk.Label == "" {
				continue
			}
			if tk.Value != float64(int(tk.Value)) || strings.Contains(tk.Label, ".") {
				t.Errorf("range %v: tick %v labelled %q is not a whole number", r, tk.Value, tk.Label)
			}
			labels = append(labels, tk.Label)
		}
		if len(labels) < 2 {
			t.Errorf("range %v: labels %q, want at least two", r, labels)
		}
	}
	var got []string
	for _, tk := range (wholeTicks{}).Ticks(0, 3.3) {
		got = append(got, tk.Label)
	}
	if diff := cmp.Diff([]string{"0", "1", "2", "3"}, got); diff != "" {
		t.Errorf("ticks over 0..3.3 (-want +got):\n%s", diff)
	}
}

// TestLogTicksNarrow: a log axis over less than a decade still has labels inside the range.
func TestLogTicksNarrow(t *testing.T) {
	for _, r := range [][2]float64{{0.05, 0.2}, {0.11, 0.13}, {0.9, 4}, {0.01, 100}} {
		n := 0
		for _, tk := range (logTicks{}).Ticks(r[0], r[1]) {
			if tk.Label != "" && tk.Value >= r[0] && tk.Value <= r[1] {
				n++
			}
			if tk.Value <= 0 {
				t.Errorf("range %v: tick at %v on a log axis", r, tk.Value)
			}
		}
		if n < 2 {
			t.Errorf("range %v: %d labelled ticks inside, want at least 2", r, n)
		}
	}
}

// TestRunTitleTime: a drawn run's title gives the summary's "time Nms", rounded as iputils.
func TestRunTitleTime(t *testing.T) {
	start := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	s := Series{Proto: "udp", Target: "127.0.0.1", Points: []Point{{Seq: 1, Sent: start}}, Time: 1951499 * time.Microsecond}
	if got := runTitle(s); !strings.Contains(got, "started 2026-11-22 16:00:00 UTC, time 1951ms") {
		t.Errorf("title %q does not give the summary's time 1951ms", got)
	}
	s.Time = 0
	if got := runTitle(s); !strings.Contains(got, "probes sent over") {
		t.Errorf("a saved run's title %q does not say what its time spans", got)
	}
}
