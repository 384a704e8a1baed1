package report

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/report")

const goldenDir = "../../testdata/report"

// t0 is the fixed start of every constructed run.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// A scenario is a constructed run: its header, its events in order, its start and end.
type scenario struct {
	h      Header
	events []probe.Event
	result probe.Result
}

// run builds a scenario's events with probe seq sent at t0 + (seq-1)s.
type run struct{ evs []probe.Event }

func sentAt(seq int) time.Time { return t0.Add(time.Duration(seq-1) * time.Second) }

func (r *run) sent(seq int) *run {
	r.evs = append(r.evs, probe.Event{Type: probe.EventSent, Seq: seq, Sent: sentAt(seq), At: sentAt(seq)})
	return r
}

func (r *run) add(typ probe.EventType, seq int, rtt time.Duration, f func(*probe.Event)) *run {
	ev := probe.Event{Type: typ, Seq: seq, Sent: sentAt(seq), At: sentAt(seq).Add(rtt), RTT: rtt}
	if typ == probe.EventTimeout || typ == probe.EventError || typ == probe.EventLost {
		ev.RTT = 0
	}
	if f != nil {
		f(&ev)
	}
	r.evs = append(r.evs, ev)
	return r
}

func udpReply(text string) func(*probe.Event) {
	return func(ev *probe.Event) {
		ev.From, ev.Bytes, ev.Data = "127.0.0.1:12000", len(text), []byte(text)
	}
}

func udpText(seq int) string {
	return strings.ToUpper("ping " + strconv.Itoa(seq) + " " + sentAt(seq).Format("2006-01-02 15:04:05.000000"))
}

var scenarios = map[string]scenario{
	// UDP: every decimal rule of "time=", a duplicate, a timeout then its late reply, a port
	// unreachable, and a probe still unanswered when the run was interrupted.
	"udp": {
		h: Header{Proto: "udp", Target: "127.0.0.1", Addr: "127.0.0.1:12000", Size: 33},
		events: (&run{}).
			sent(1).add(probe.EventReply, 1, 123456*time.Nanosecond, udpReply(udpText(1))).
			sent(2).add(probe.EventReply, 2, 1234567*time.Nanosecond, udpReply(udpText(2))).
			add(probe.EventDuplicate, 2, 1500*time.Microsecond, udpReply(udpText(2))).
			sent(3).sent(4).add(probe.EventTimeout, 3, time.Second, nil).
			add(probe.EventError, 4, 300*time.Microsecond, func(ev *probe.Event) {
				ev.From = "127.0.0.1"
				ev.Err = &icmperr.Error{Type: icmperr.TypeDestUnreach, Code: icmperr.CodePortUnreach,
					From: netip.MustParseAddr("127.0.0.1"), Errno: syscall.ECONNREFUSED}
			}).
			add(probe.EventLate, 3, 1234500*time.Microsecond, udpReply(udpText(3))).
			sent(5).add(probe.EventReply, 5, 12345678*time.Nanosecond, udpReply(udpText(5))).
			sent(6).add(probe.EventReply, 6, 99960*time.Microsecond, udpReply(udpText(6))).
			sent(7).evs,
		result: probe.Result{Start: t0, End: t0.Add(6*time.Second + 400500*time.Microsecond)},
	},
	// ICMP: iputils' own header line, TTLs, a silent timeout (a line only with -O), a host
	// unreachable from a router, and one for the probe that had timed out.
	"icmp": {
		h: Header{Proto: "icmp", Target: "server.lab", Addr: "10.0.0.2", Size: 56,
			Line: "PING server.lab (10.0.0.2) 56(84) bytes of data."},
		events: (&run{}).
			sent(1).add(probe.EventReply, 1, 50*time.Microsecond, func(ev *probe.Event) {
			ev.From, ev.Bytes, ev.TTL, ev.Data = "10.0.0.2", 64, 64, []byte{0, 1, 2, 0xff}
		}).
			sent(2).add(probe.EventTimeout, 2, time.Second, nil).
			sent(3).add(probe.EventError, 3, 3*time.Millisecond, func(ev *probe.Event) {
			ev.From = "10.0.0.1"
			ev.Err = &icmperr.Error{Type: icmperr.TypeDestUnreach, Code: icmperr.CodeHostUnreach,
				From: netip.MustParseAddr("10.0.0.1")}
		}).
			sent(4).add(probe.EventReply, 4, 250700*time.Microsecond, func(ev *probe.Event) {
			ev.From, ev.Bytes, ev.TTL = "10.0.0.2", 64, 63
		}).
			// Probe 2's host unreachable comes after its timeout, as when ARP gives up.
			add(probe.EventError, 2, 3*time.Second, func(ev *probe.Event) {
				ev.From = "10.0.0.1"
				ev.Err = &icmperr.Error{Type: icmperr.TypeDestUnreach, Code: icmperr.CodeHostUnreach,
					From: netip.MustParseAddr("10.0.0.1")}
			}).evs,
		result: probe.Result{Start: t0, End: t0.Add(4 * time.Second)},
	},
	// TCP: connect times, the assignment server's LOST, and a refused connection (no ICMP).
	"tcp": {
		h: Header{Proto: "tcp", Target: "localhost", Addr: "127.0.0.1:12000", Size: 33},
		events: (&run{}).
			sent(1).add(probe.EventReply, 1, 800*time.Microsecond, func(ev *probe.Event) {
			udpReply(udpText(1) + "\n")(ev)
			ev.Connect = 200 * time.Microsecond
		}).
			sent(2).add(probe.EventLost, 2, 2*time.Millisecond, func(ev *probe.Event) {
			ev.From, ev.Reason = "127.0.0.1:12000", "server answered LOST"
		}).
			sent(3).add(probe.EventError, 3, time.Millisecond, func(ev *probe.Event) {
			ev.From = "127.0.0.1:12000"
			ev.Err = icmperr.FromErrno(syscall.ECONNREFUSED, false, netip.Addr{})
		}).
			sent(4).add(probe.EventReply, 4, 5*time.Millisecond, func(ev *probe.Event) {
			udpReply(udpText(4) + "\r\n")(ev)
			ev.Connect = 1500 * time.Microsecond
		}).evs,
		result: probe.Result{Start: t0, End: t0.Add(3*time.Second + 5*time.Millisecond)},
	},
	// Nothing came back.
	"zero": {
		h: Header{Proto: "udp", Target: "192.0.2.1", Addr: "192.0.2.1:12000", Size: 33},
		events: (&run{}).
			sent(1).add(probe.EventTimeout, 1, time.Second, nil).
			sent(2).add(probe.EventTimeout, 2, time.Second, nil).
			sent(3).add(probe.EventTimeout, 3, time.Second, nil).evs,
		result: probe.Result{Start: t0, End: t0.Add(3 * time.Second)},
	},
}

func summary(events []probe.Event) stats.Summary {
	s := stats.New()
	for _, ev := range events {
		s.Add(ev)
	}
	return s.Summary()
}

func render(t *testing.T, sc scenario, format string, opts Options) []byte {
	t.Helper()
	var b bytes.Buffer
	r, err := New(format, &b, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.Start(sc.h)
	for _, ev := range sc.events {
		r.Event(ev)
	}
	r.Finish(summary(sc.events), sc.result)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func renderCSV(t *testing.T, sc scenario) []byte {
	t.Helper()
	var b bytes.Buffer
	c := NewCSV(&b, sc.h)
	for _, ev := range sc.events {
		c.Event(ev)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/report -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		scenario, file, format string
		opts                   Options
	}{
		{"udp", "udp.text.golden", "text", Options{}},
		{"udp", "udp.text-q.golden", "text", Options{Quiet: true}},
		{"udp", "udp.text-percentiles.golden", "text", Options{Percentiles: true}},
		{"udp", "udp.text-D.golden", "text", Options{Timestamps: true}},
		{"udp", "udp.assignment.golden", "assignment", Options{}},
		{"udp", "udp.json.golden", "json", Options{}},
		{"icmp", "icmp.text.golden", "text", Options{}},
		{"icmp", "icmp.text-O-D.golden", "text", Options{Outstanding: true, Timestamps: true}},
		{"icmp", "icmp.assignment.golden", "assignment", Options{}},
		{"icmp", "icmp.json.golden", "json", Options{}},
		{"tcp", "tcp.text.golden", "text", Options{}},
		{"tcp", "tcp.assignment.golden", "assignment", Options{}},
		{"tcp", "tcp.json.golden", "json", Options{}},
		{"zero", "zero.text.golden", "text", Options{}},
		{"zero", "zero.text-q.golden", "text", Options{Quiet: true}},
		{"zero", "zero.assignment.golden", "assignment", Options{}},
		{"zero", "zero.json.golden", "json", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			golden(t, tt.file, render(t, scenarios[tt.scenario], tt.format, tt.opts))
		})
	}
	for _, name := range []string{"udp", "icmp", "tcp", "zero"} {
		t.Run(name+".csv", func(t *testing.T) {
			golden(t, name+".csv", renderCSV(t, scenarios[name]))
		})
	}
}

// TestStatusGolden pins the SIGQUIT line, with and without replies.
func TestStatusGolden(t *testing.T) {
	var b bytes.Buffer
	for _, name := range []string{"udp", "icmp", "zero"} {
		r, err := New("text", &b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r.Status(summary(scenarios[name].events))
	}
	golden(t, "status.golden", b.Bytes())
}

func TestStatusWriter(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			var out, status bytes.Buffer
			r, err := New(format, &out, Options{StatusWriter: &status})
			if err != nil {
				t.Fatal(err)
			}
			r.Status(stats.Summary{Transmitted: 4, Received: 3, Min: time.Millisecond, Avg: time.Millisecond,
				EWMA: time.Millisecond, Max: time.Millisecond})
			if want := "3/4 packets, 25% loss, min/avg/ewma/max = 1.000/1.000/1.000/1.000 ms\n"; status.String() != want {
				t.Errorf("status writer got %q, want %q", status.String(), want)
			}
			if out.Len() != 0 {
				t.Errorf("Status wrote %q to the output", out.String())
			}
		})
	}
	// Without a status writer, JSON keeps its output one JSON object.
	var out bytes.Buffer
	r, _ := New("json", &out, Options{})
	r.Status(stats.Summary{Transmitted: 1})
	if out.Len() != 0 {
		t.Errorf("json Status wrote %q to the output", out.String())
	}
}

func TestNewUnknownFormat(t *testing.T) {
	_, err := New("xml", &bytes.Buffer{}, Options{})
	if err == nil {
		t.Fatal("New(\"xml\") succeeded")
	}
	for _, want := range []string{`"xml"`, "text", "assignment", "json"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestPingTime(t *testing.T) {
	for _, tt := range []struct {
		micros int64
		want   string
	}{
		{0, "0.000"}, {50, "0.050"}, {999, "0.999"}, {1000, "1.00"}, {1004, "1.00"}, {1005, "1.01"},
		{9994, "9.99"}, {9995, "10.0"}, {12345, "12.3"}, {12350, "12.4"}, {99949, "99.9"},
		{99950, "100"}, {123456, "123"}, {1234500, "1235"}, {-3, "0.000"},
	} {
		if got := pingTime(time.Duration(tt.micros)*time.Microsecond + 999*time.Nanosecond); got != tt.want {
			t.Errorf("pingTime(%d µs) = %q, want %q", tt.micros, got, tt.want)
		}
	}
}

// TestLossG checks C's "%g" of a float, as iputils prints the loss; the wants are what
// iputils' expression printed when compiled with gcc.
func TestLossG(t *testing.T) {
	for _, tt := range []struct {
		tx, rx int
		want   string
	}{
		{1, 1, "0"}, {5, 4, "20"}, {3, 0, "100"}, {3, 2, "33.3333"}, {3, 1, "66.6667"}, {7, 4, "42.8571"},
		{7, 6, "14.2857"}, {1000000, 999999, "0.0001"}, {10000000, 9999999, "1e-05"},
		{100000, 1, "99.999"}, {6, 5, "16.6667"}, {9, 8, "11.1111"},
	} {
		loss := float64(tt.tx-tt.rx) * 100 / float64(tt.tx)
		if got := lossG(loss); got != tt.want {
			t.Errorf("lossG(%d sent, %d received) = %q, want %q", tt.tx, tt.rx, got, tt.want)
		}
	}
}

func TestRunTime(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{{0, 0}, {499999, 0}, {500000, 1}, {1499999, 1}, {2043500 * time.Microsecond, 2044}, {-time.Second, 0}} {
		if got := runTime(probe.Result{Start: t0, End: t0.Add(tt.d)}); got != tt.want {
			t.Errorf("runTime(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
	if got := runTime(probe.Result{}); got != 0 {
		t.Errorf("runTime of no run = %d, want 0", got)
	}
}

type failWriter struct{ writes int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.writes++
	return 0, errors.New("disk full")
}

// TestWriteError: the first write error is kept and reported, and nothing more is written.
func TestWriteError(t *testing.T) {
	sc := scenarios["udp"]
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			w := &failWriter{}
			r, err := New(format, w, Options{})
			if err != nil {
				t.Fatal(err)
			}
			r.Start(sc.h)
			for _, ev := range sc.events {
				r.Event(ev)
			}
			r.Finish(summary(sc.events), sc.result)
			if err := r.Err(); err == nil || !strings.Contains(err.Error(), "disk full") {
				t.Errorf("Err() = %v, want the write error", err)
			}
			if w.writes != 1 {
				t.Errorf("%d writes after the first failed, want none", w.writes-1)
			}
		})
	}
	t.Run("csv", func(t *testing.T) {
		c := NewCSV(&failWriter{}, sc.h)
		for _, ev := range sc.events {
			c.Event(ev)
		}
		if err := c.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("Flush() = %v, want the write error", err)
		}
	})
}

// TestConcurrentStatus calls Status while events are rendered, as SIGQUIT does; run with -race.
func TestConcurrentStatus(t *testing.T) {
	sc := scenarios["udp"]
	for _, format := range Formats {
		var out, status bytes.Buffer
		r, err := New(format, &out, Options{StatusWriter: &status})
		if err != nil {
			t.Fatal(err)
		}
		r.Start(sc.h)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 50 {
				r.Status(summary(sc.events))
			}
		}()
		for range 20 {
			for _, ev := range sc.events {
				r.Event(ev)
			}
		}
		<-done
		r.Finish(summary(sc.events), sc.result)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(status.String(), "\n"); got != 50 {
			t.Errorf("%s: %d status lines, want 50", format, got)
		}
	}
}
