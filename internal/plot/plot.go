// Package plot draws pinglab's runs with gonum.org/v1/plot: one run's RTT per probe with its
// losses and ICMP errors (WriteRun, the clients' --plot) and several saved runs side by side
// (WriteComparison, "pinglab plot"). It takes a Series per run, the engine's outcome events made
// by a Recorder during a run or read back from a saved CSV by FromRun, so that a plot of a live
// run and of its CSV are the same.
package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// A Point is one outcome of one probe: its reply, its loss, an ICMP error for it, a duplicate
// or a late reply, or that it was unanswered when the run ended. A probe has one Point per
// outcome; a late reply follows its timeout.
type Point struct {
	Seq int
	// Sent is when the probe left.
	Sent time.Time
	// Type is what became of it: the engine's event for the outcome (EventReply, EventTimeout,
	// EventLost, EventError, EventDuplicate or EventLate).
	Type probe.EventType
	// RTT is set for replies, duplicates and late replies.
	RTT time.Duration
}

// A Series is one run.
type Series struct {
	// Label names the run in a comparison and a table: its file name or --label.
	Label string
	// Proto is "udp", "tcp" or "icmp"; Target is the host as typed.
	Proto, Target string
	// Sent is how many probes left; 0 means the number of probes that have a Point, which is
	// all a saved CSV knows (a probe still outstanding when a run ended has no row).
	Sent int
	// Points are the outcomes in the order they happened.
	Points []Point
	// Time is the run's time as its summary gives it ("time 1951ms": from the first send to
	// the end of the run), when the run itself is drawn; 0 for a saved run, whose CSV does
	// not tell when it ended.
	Time time.Duration
}

// start returns when the run's first probe left (zero for an empty run).
func (s Series) start() time.Time {
	var t time.Time
	for _, p := range s.Points {
		if !p.Sent.IsZero() && (t.IsZero() || p.Sent.Before(t)) {
			t = p.Sent
		}
	}
	return t
}

// end returns when the last thing in the run happened, as far as its points tell.
func (s Series) end() time.Time {
	var t time.Time
	for _, p := range s.Points {
		if e := p.Sent.Add(p.RTT); e.After(t) {
			t = e
		}
	}
	return t
}

// Summary computes the run's statistics exactly as a live run does: its points are the engine's
// outcome events, fed through package stats with an EventSent before each probe's first.
func (s Series) Summary() stats.Summary {
	st := stats.New()
	sent := make(map[int]bool)
	for _, p := range s.Points {
		if !sent[p.Seq] {
			sent[p.Seq] = true
			st.Add(probe.Event{Type: probe.EventSent, Seq: p.Seq, Sent: p.Sent, At: p.Sent})
		}
		st.Add(probe.Event{Type: p.Type, Seq: p.Seq, Sent: p.Sent, At: p.Sent.Add(p.RTT), RTT: p.RTT})
	}
	// Probes that left but had no outcome yet count as sent, as the live run counted them.
	for extra := s.Sent - len(sent); extra > 0; extra-- {
		st.Add(probe.Event{Type: probe.EventSent})
	}
	return st.Summary()
}

// A Recorder collects a run's points from the engine's events, for WriteRun at its end.
// Its methods are safe for concurrent use.
type Recorder struct {
	mu sync.Mutex
	s  Series
}

// NewRecorder returns a Recorder for a run of proto to target.
func NewRecorder(proto, target string) *Recorder {
	return &Recorder{s: Series{Label: target, Proto: proto, Target: target}}
}

// Event records one event.
func (r *Recorder) Event(ev probe.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Type == probe.EventSent {
		r.s.Sent++
		return
	}
	if p, ok := FromEvent(ev); ok {
		r.s.Points = append(r.s.Points, p)
	}
}

// Series returns what was recorded so far.
func (r *Recorder) Series() Series {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	s.Points = append([]Point(nil), r.s.Points...)
	return s
}

// FromEvent returns the Point of an outcome event; ok is false for EventSent and unknown types.
func FromEvent(ev probe.Event) (p Point, ok bool) {
	p = Point{Seq: ev.Seq, Sent: ev.Sent, Type: ev.Type}
	switch ev.Type {
	case probe.EventReply, probe.EventDuplicate, probe.EventLate:
		p.RTT = ev.RTT
	case probe.EventTimeout, probe.EventLost, probe.EventError:
	default:
		return Point{}, false
	}
	return p, true
}

// Options size a figure. Zero fields take the defaults.
type Options struct {
	// Width and Height are in pixels at 96 dots per inch: a PNG is exactly this size, an SVG or
	// PDF the same size in points (3/4 of a pixel each).
	Width, Height int
}

// The default figure size.
const (
	DefaultWidth  = 960
	DefaultHeight = 720
)

const dpi = 96

func (o Options) size() (w, h vg.Length) {
	pw, ph := o.Width, o.Height
	if pw <= 0 {
		pw = DefaultWidth
	}
	if ph <= 0 {
		ph = DefaultHeight
	}
	return vg.Length(pw) * vg.Inch / dpi, vg.Length(ph) * vg.Inch / dpi
}

var (
	errFormat = errors.New("unknown figure format")
	errNoRuns = errors.New("no runs to draw")
	errDraw   = errors.New("cannot draw the figure")
	// ErrNoReplies is returned for a comparison in which no run has a reply: there is no RTT
	// to draw.
	ErrNoReplies = errors.New("no replies to draw")
)

// Formats are the figure formats, by file extension.
var Formats = []string{"svg", "png", "pdf"}

// FormatOf returns the figure format a path's extension asks for, or an error naming it.
func FormatOf(path string) (string, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	for _, f := range Formats {
		if ext == f {
			return f, nil
		}
	}
	if ext == "" {
		return "", fmt.Errorf("plot: %w: %q has no extension (want .svg, .png or .pdf)", errFormat, path)
	}
	return "", fmt.Errorf("plot: %w %q in %q (want .svg, .png or .pdf)", errFormat, "."+ext, path)
}

// canvas makes a canvas of format; the caller draws on it and writes it out.
func canvas(format string, o Options) (vg.CanvasWriterTo, error) {
	w, h := o.size()
	switch format {
	case "svg":
		return vgsvg.New(w, h), nil
	case "png":
		return vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))}, nil
	case "pdf":
		return vgpdf.New(w, h), nil
	}
	return nil, fmt.Errorf("plot: %w %q (want %s)", errFormat, format, strings.Join(Formats, ", "))
}

// render draws with draw on a canvas of format and writes it to w.
func render(w io.Writer, format string, o Options, drawFn func(draw.Canvas)) error {
	c, err := canvas(format, o)
	if err != nil {
		return err
	}
	// A margin, or the last tick label and the legend touch the image's edge.
	pad := vg.Points(10)
	drawFn(draw.Crop(draw.New(c), pad, -pad, pad, -pad))
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("plot: write %s: %w", format, err)
	}
	return nil
}

// writeFile renders into the file at path, in the format its extension names. The figure is
// drawn in memory first, so that a figure that cannot be drawn leaves no file behind.
func writeFile(path string, o Options, renderFn func(io.Writer, string, Options) error) (err error) {
	format, err := FormatOf(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	func() {
		// gonum/plot panics on a figure it cannot lay out (a log axis over no values): that is
		// an error of this figure, not a reason to end the program.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("plot: %w: %v", errDraw, r)
			}
		}()
		err = renderFn(&buf, format, o)
	}()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// The colors of a run's figure. Each has one meaning, so that a reader (and a test counting an
// SVG's paths) tells marks apart by color as well as by shape.
var (
	ReplyColor = color.RGBA{R: 0x1F, G: 0x77, B: 0xB4, A: 0xFF} // replies: blue dots and line
	LostColor  = color.RGBA{R: 0xD6, G: 0x27, B: 0x28, A: 0xFF} // lost probes: red crosses
	ErrorColor = color.RGBA{R: 0xFF, G: 0x7F, B: 0x0E, A: 0xFF} // ICMP errors: orange triangles
	LateColor  = color.RGBA{R: 0x7F, G: 0x7F, B: 0x7F, A: 0xFF} // late replies: gray rings
)

// RunColors are the colors of the runs of a comparison, in order; they repeat after the last.
// None is one of the single-run figure's colors.
var RunColors = []color.RGBA{
	{R: 0x1F, G: 0x77, B: 0xB4, A: 0xFF}, // blue
	{R: 0x2C, G: 0xA0, B: 0x2C, A: 0xFF}, // green
	{R: 0x94, G: 0x67, B: 0xBD, A: 0xFF}, // purple
	{R: 0x8C, G: 0x56, B: 0x4B, A: 0xFF}, // brown
	{R: 0xE3, G: 0x77, B: 0xC2, A: 0xFF}, // pink
	{R: 0x17, G: 0xBE, B: 0xCF, A: 0xFF}, // cyan
	{R: 0xBC, G: 0xBD, B: 0x22, A: 0xFF}, // olive
}

// RunColor returns the color of run i of a comparison.
func RunColor(i int) color.RGBA { return RunColors[i%len(RunColors)] }

// LostRunColor returns the color of run i's lost probes in a comparison: its color, darker.
func LostRunColor(i int) color.RGBA {
	c := RunColor(i)
	return color.RGBA{R: c.R / 2, G: c.G / 2, B: c.B / 2, A: 0xFF}
}

// ms is a duration in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
