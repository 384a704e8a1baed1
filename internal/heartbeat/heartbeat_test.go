package heartbeat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestTracker(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:4000")
	restarted := netip.MustParseAddrPort("10.0.0.1:4001")
	other := netip.MustParseAddrPort("10.0.0.2:4000")
	t0 := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tr := New(3 * time.Second)

	type step struct {
		from netip.AddrPort
		seq  int
		at   float64
		// delay of this heartbeat, ms
		delay float64
		check bool // a Check at at instead of a heartbeat
		want  []string
	}
	steps := []step{
		{from: a, seq: 1, at: 1, delay: 1, want: []string{"heartbeat client 10.0.0.1:4000 started (heartbeat 1, one-way delay 1.000 ms)"}},
		{from: a, seq: 2, at: 2, delay: 3, want: []string{"heartbeat 2 from 10.0.0.1:4000: one-way delay 3.000 ms"}},
		{from: a, seq: 6, at: 6, delay: 1, want: []string{
			"heartbeat client 10.0.0.1:4000: missing 3-5 (3 lost)",
			"heartbeat 6 from 10.0.0.1:4000: one-way delay 1.000 ms",
		}},
		{from: a, seq: 4, at: 6.1, delay: 1, want: []string{"heartbeat 4 from 10.0.0.1:4000: came late, after a later one (reordered, no longer lost)"}},
		{from: a, seq: 4, at: 6.2, delay: 1, want: []string{"heartbeat 4 from 10.0.0.1:4000: duplicate"}},
		{from: a, seq: 8, at: 8, delay: 1, want: []string{
			"heartbeat client 10.0.0.1:4000: missing 7 (1 lost)",
			"heartbeat 8 from 10.0.0.1:4000: one-way delay 1.000 ms",
		}},
		{from: other, seq: 3, at: 9, delay: 2, want: []string{
			"heartbeat client 10.0.0.2:4000 started (heartbeat 3, one-way delay 2.000 ms)",
			"heartbeat client 10.0.0.2:4000: missing 1-2 (2 lost)",
		}},
		{check: true, at: 10.9, want: nil},
		{check: true, at: 11, want: []string{"client 10.0.0.1:4000 stopped (no heartbeat for 3 s; last was heartbeat 8)"}},
		{check: true, at: 11.5, want: nil}, // once only
		{from: a, seq: 12, at: 15.2, delay: 1, want: []string{
			"client 10.0.0.1:4000 came back after 7.2 s (heartbeat 12)",
			"heartbeat client 10.0.0.1:4000: missing 9-11 (3 lost)",
		}},
		{check: true, at: 18.2, want: []string{
			"client 10.0.0.1:4000 stopped (no heartbeat for 3 s; last was heartbeat 12)",
			"client 10.0.0.2:4000 stopped (no heartbeat for 3 s; last was heartbeat 3)",
		}},
		// Killed and started again: a new port, sequence numbers from 1.
		{from: restarted, seq: 1, at: 20, delay: 1, want: []string{
			"client 10.0.0.1:4000 came back after 4.8 s as 10.0.0.1:4001 (heartbeat 1; it had stopped after heartbeat 12)",
		}},
	}
	for i, s := range steps {
		var evs []Event
		if s.check {
			evs = tr.Check(sec(s.at))
		} else {
			at := sec(s.at)
			evs = tr.Beat(s.from, s.seq, at.Add(-time.Duration(s.delay*float64(time.Millisecond))), at)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.String())
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Fatalf("step %d (-want +got):\n%s", i, diff)
		}
	}
	st := tr.Stats()
	if len(st) != 3 {
		t.Fatalf("%d clients, want 3", len(st))
	}
	got := st[0]
	want := ClientStats{
		Addr: a, Received: 7, Lost: 6, Reordered: 1, Duplicates: 1, Last: 12, LastAt: sec(15.2),
		Stopped: true, MinDelay: time.Millisecond, AvgDelay: 9 * time.Millisecond / 7, MaxDelay: 3 * time.Millisecond,
		// |3-1| + |1-3| over 6 differences
		Variation: 4 * time.Millisecond / 6,
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("stats of %s (-want +got):\n%s", a, diff)
	}
	if st[2].Addr != restarted || st[2].Stopped {
		t.Errorf("restarted client reported stopped: %+v", st[2])
	}
}

func TestFillSplitsRanges(t *testing.T) {
	c := &client{gaps: []Range{{3, 9}}}
	for _, seq := range []int{3, 9, 6, 6, 12} {
		c.fill(seq)
	}
	if diff := cmp.Diff([]Range{{4, 5}, {7, 8}}, c.gaps); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
}

func TestBounds(t *testing.T) {
	tr := New(0)
	if tr.Timeout() != DefaultTimeout {
		t.Errorf("New(0).Timeout() = %v", tr.Timeout())
	}
	now := time.Now()
	for i := range maxClients + 5 {
		tr.Beat(netip.AddrPortFrom(netip.MustParseAddr("10.1.0.1"), uint16(i+1)), 1, now, now)
	}
	if n := len(tr.Stats()); n != maxClients {
		t.Errorf("tracker follows %d clients, want the bound %d", n, maxClients)
	}
	a := netip.MustParseAddrPort("10.0.0.1:1")
	tr = New(time.Second)
	for seq := 1; seq < 4*maxGaps; seq += 2 {
		tr.Beat(a, seq, now, now)
	}
	tr.mu.Lock()
	n := len(tr.clients[a].gaps)
	tr.mu.Unlock()
	if n != maxGaps {
		t.Errorf("client keeps %d gaps, want the bound %d", n, maxGaps)
	}
	if lost := tr.Stats()[0].Lost; lost != 2*maxGaps-1 {
		t.Errorf("lost %d, want %d: forgotten gaps are still lost", lost, 2*maxGaps-1)
	}
}
