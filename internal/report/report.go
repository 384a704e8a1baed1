// Package report renders a run for people and programs: iputils ping's text, the assignment
// handout's lines, one JSON object, and a CSV written as the run goes (which ReadCSV reads back
// for plots and reports). Renderers consume the engine's events, the final statistics and the
// run's start and end, and nothing else, so every client prints the same way.
package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// A Header says what is being pinged.
type Header struct {
	// Proto is "udp", "tcp" or "icmp"; it names the sequence field ("udp_seq").
	Proto string
	// Target is the host as typed, Addr its resolved printed form.
	Target, Addr string
	// Size is the payload size in bytes.
	Size int
	// Untimed says the probes carry no send time (ICMP payloads under 16 bytes): as iputils,
	// the text format then prints no "time=" and no rtt line.
	Untimed bool
	// Line, when set, is the exact header line (ICMP's is iputils'); otherwise the text format
	// prints "PING <Target> (<Addr>) <Size> bytes of data over <PROTO>.".
	Line string
	// OneWay says the client asked the server for one-way receipts, so that a summary without
	// any can say the server did not answer.
	OneWay bool
}

// Options are ping's output flags.
type Options struct {
	// Quiet (-q) prints the header and the summary only.
	Quiet bool
	// Timestamps (-D) puts "[seconds.micros] " (the event's Unix time) before each per-probe line.
	Timestamps bool
	// Outstanding (-O) prints, as iputils does, "no answer yet for icmp_seq=N" when probe N+1
	// is about to leave and probe N had no answer. UDP and TCP always print "Request timeout
	// for udp_seq=N".
	Outstanding bool
	// Percentiles adds to the text summary pinglab's line "rtt p50/p90/p99 = ... ms, jitter =
	// ... ms", which iputils does not print. JSON and CSV always carry those figures.
	Percentiles bool
	// Audible (-a) rings the terminal's bell (BEL) before each reply line, as ping -a.
	Audible bool
	// Unrounded (-3) prints a reply's time= with three decimals, not rounded by its size.
	Unrounded bool
	// StatusWriter is where Status writes (iputils writes its SIGQUIT line to stderr); nil
	// means the renderer's writer, except for JSON, which then writes no status at all so
	// that its output stays one JSON object.
	StatusWriter io.Writer
	// Flood (-f) prints, as iputils ping -f does, a dot for every probe sent, erased by its
	// reply ("\b \b"; an E for an error), instead of a line per probe, so what stays on the
	// terminal is one dot per probe lost. Text format only.
	Flood bool
}

// A Renderer prints a run. Its methods may be called from two goroutines (the engine's events
// and a SIGQUIT handler's Status); it serializes them. It returns no error per call: the first
// write error is kept, later writes are skipped, and Err reports it.
type Renderer interface {
	// Start prints the header, before the first event.
	Start(h Header)
	// Event prints one event as it happens.
	Event(ev probe.Event)
	// Status prints iputils' statistics line without ending the run (SIGQUIT).
	Status(s stats.Summary)
	// Finish prints the summary of the run.
	Finish(s stats.Summary, r probe.Result)
	// Err returns the first write error, or nil.
	Err() error
}

// Formats lists the names New accepts, the default first.
var Formats = []string{"text", "assignment", "json"}

var errFormat = errors.New("unknown format")

// New returns the renderer for format ("text", "assignment" or "json") writing to w.
func New(format string, w io.Writer, opts Options) (Renderer, error) {
	switch format {
	case "text":
		t := &text{opts: opts}
		t.init(w, opts)
		return t, nil
	case "assignment":
		a := &assignment{}
		a.init(w, opts)
		return a, nil
	case "json":
		j := &jsonRenderer{probes: map[int]*jsonProbe{}}
		j.init(w, opts)
		if opts.StatusWriter == nil {
			j.status = nil
		}
		return j, nil
	}
	return nil, fmt.Errorf("report: %w %q (choose %s)", errFormat, format, strings.Join(Formats, ", "))
}

// out is the writers of a renderer, the first error met and the lock every method holds.
type out struct {
	mu     sync.Mutex
	w      io.Writer
	status io.Writer // nil: Status writes nothing
	err    error
}

func (o *out) init(w io.Writer, opts Options) {
	o.w, o.status = w, w
	if opts.StatusWriter != nil {
		o.status = opts.StatusWriter
	}
}

func (o *out) printf(format string, args ...any) { o.fprintf(o.w, format, args...) }

func (o *out) fprintf(w io.Writer, format string, args ...any) {
	if o.err != nil || w == nil {
		return
	}
	if _, err := fmt.Fprintf(w, format, args...); err != nil {
		o.err = fmt.Errorf("report: write: %w", err)
	}
}

// Err returns the first write error.
func (o *out) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// micros is an RTT in whole microseconds, as iputils measures it (negative counts as 0).
func micros(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Microsecond)
}

// pingTime formats an RTT as iputils prints a reply's "time=": three decimals (truncated) under
// 1 ms, then two, one and none as it grows, rounded.
func pingTime(d time.Duration) string {
	t := micros(d)
	switch {
	case t >= 100000-50:
		return fmt.Sprintf("%d", (t+500)/1000)
	case t >= 10000-5:
		return fmt.Sprintf("%d.%01d", (t+50)/1000, ((t+50)%1000)/100)
	case t >= 1000:
		return fmt.Sprintf("%d.%02d", (t+5)/1000, ((t+5)%1000)/10)
	default:
		return fmt.Sprintf("%d.%03d", t/1000, t%1000)
	}
}

// msec formats a duration as iputils' summary does: whole microseconds as "%ld.%03ld" ms.
func msec(d time.Duration) string {
	t := micros(d)
	return fmt.Sprintf("%d.%03d", t/1000, t%1000)
}

// msec6 formats a duration in milliseconds with six decimals, to the nanosecond.
func msec6(d time.Duration) string { return decimal(int64(d), 1e6, "%s%d.%06d") }

// signedMsec formats a duration that may be negative (a one-way delay between two clocks) in
// milliseconds with three decimals.
func signedMsec(d time.Duration) string { return decimal(int64(d/time.Microsecond), 1000, "%s%d.%03d") }

// oneWayLines are the summary's lines of pinglab's one-way extension: where the probes were
// lost and each direction's delay. None when the client did not ask.
func oneWayLines(h Header, s stats.Summary) []string {
	if !s.OneWay {
		if h.OneWay {
			return []string{"one-way: the server sent no receipts (not pinglab's server?): round-trip loss only"}
		}
		return nil
	}
	line := fmt.Sprintf("lost: %d outbound, %d inbound", s.LostOutbound, s.LostInbound)
	if s.LostUnknown > 0 {
		line += fmt.Sprintf(", %d unknown", s.LostUnknown)
	}
	lines := []string{line}
	for _, d := range []struct {
		name string
		v    stats.OneWayDelay
	}{{"outbound", s.Outbound}, {"inbound ", s.Inbound}} {
		if d.v.Samples == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("one-way %s min/avg/max = %s/%s/%s ms, variation = %s ms",
			d.name, signedMsec(d.v.Min), signedMsec(d.v.Avg), signedMsec(d.v.Max), signedMsec(d.v.Variation)))
	}
	return lines
}

// unixMicros formats a time as iputils' -D does: "%lu.%06lu" of seconds and microseconds.
func unixMicros(t time.Time) string { return decimal(t.UnixMicro(), 1e6, "%s%d.%06d") }

// decimal prints n/unit with format, sign first; uint64 keeps MinInt64's magnitude.
func decimal(n int64, unit uint64, format string) string {
	sign, u := "", uint64(n)
	if n < 0 {
		sign, u = "-", uint64(-n)
	}
	return fmt.Sprintf(format, sign, u/unit, u%unit)
}

// runTime is iputils' "time Tms": the run's length rounded to the millisecond.
func runTime(r probe.Result) int64 {
	if r.Start.IsZero() || r.End.IsZero() {
		return 0
	}
	d := r.End.Sub(r.Start)
	if d < 0 {
		return 0
	}
	return int64((d + 500*time.Microsecond) / time.Millisecond)
}

// errWords is what went wrong with an EventError, in iputils' words.
func errWords(ev probe.Event) string {
	switch {
	case ev.Err != nil:
		return ev.Err.Words()
	case ev.Reason != "":
		return ev.Reason
	default:
		return "Unknown error"
	}
}

// errFrom is who reported an EventError: the ICMP error's sender where known.
func errFrom(ev probe.Event, h Header) string {
	if ev.Err != nil && ev.Err.From.IsValid() {
		if ev.Err.Name != "" {
			return ev.Err.Name + " (" + ev.Err.From.String() + ")"
		}
		return ev.Err.From.String()
	}
	if ev.From != "" {
		return ev.From
	}
	return h.Addr
}

// replyBytes is the "N bytes" of a reply.
func replyBytes(ev probe.Event) int {
	if ev.Bytes == 0 {
		return len(ev.Data)
	}
	return ev.Bytes
}
