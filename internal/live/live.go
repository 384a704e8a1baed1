// Package live shows a quiet run's progress on one terminal line that updates in place: probes
// sent and received, loss, last and average RTT. A long "-q" run then tells how it goes without
// printing a line per probe. On anything but a terminal it writes nothing, so that a redirected
// stderr never fills with carriage returns.
package live

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/pinglab/pinglab/internal/probe"
)

// DefaultEvery is the least time between two updates of the line: a few a second are readable,
// and a fast run (-i 0) does not spend its time redrawing.
const DefaultEvery = 250 * time.Millisecond

// clearLine returns to the line's start and clears to its end (ANSI "erase in line").
const clearLine = "\r\x1b[K"

// A View is the status line. Its methods are safe for concurrent use. The zero View is not
// usable; make one with New or ForFile.
type View struct {
	mu    sync.Mutex
	w     io.Writer // nil: not a terminal, show nothing
	now   func() time.Time
	every time.Duration
	drawn time.Time // when the line was last drawn
	shown bool      // the line is on screen

	// lost counts probes given up on: timed out, lost, or answered by an ICMP error.
	sent, received, lost int
	sum, last            time.Duration
}

// New returns a View writing to w when isTerminal, else one that shows nothing. now is the
// clock that spaces the updates at least every apart; nil means time.Now, and every <= 0
// means DefaultEvery.
func New(w io.Writer, isTerminal bool, now func() time.Time, every time.Duration) *View {
	v := &View{now: now, every: every}
	if isTerminal {
		v.w = w
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.every <= 0 {
		v.every = DefaultEvery
	}
	return v
}

// ForFile returns a View on f that shows only when f is a terminal (stderr, usually).
func ForFile(f *os.File) *View {
	return New(f, term.IsTerminal(int(f.Fd())), nil, 0)
}

// Active reports whether the View shows anything.
func (v *View) Active() bool { return v.w != nil }

// Event counts one event of the run and redraws the line, unless it was drawn less than the
// View's interval ago.
func (v *View) Event(ev probe.Event) {
	if v.w == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	switch ev.Type {
	case probe.EventSent:
		v.sent++
	case probe.EventReply:
		v.received++
		v.last = ev.RTT
		v.sum += ev.RTT
	case probe.EventTimeout, probe.EventLost, probe.EventError:
		v.lost++
	default:
		return
	}
	if now := v.now(); !v.shown || now.Sub(v.drawn) >= v.every {
		v.draw(now)
	}
}

// Line returns the status line as it would be drawn now, without the terminal's control codes.
func (v *View) Line() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.line()
}

func (v *View) line() string {
	// The loss is of the probes whose fate is known: one still in flight is not lost yet.
	loss := 0.0
	if done := v.received + v.lost; done > 0 {
		loss = float64(v.lost) * 100 / float64(done)
	}
	s := fmt.Sprintf("%d sent, %d received, %d lost (%.1f%%)", v.sent, v.received, v.lost, loss)
	if v.received > 0 {
		s += fmt.Sprintf(", last %s ms, avg %s ms", millis(v.last), millis(v.sum/time.Duration(v.received)))
	}
	return s
}

func (v *View) draw(now time.Time) {
	// A failed write to the terminal is not worth ending the run for; the summary will say
	// what matters.
	_, _ = io.WriteString(v.w, clearLine+v.line())
	v.drawn, v.shown = now, true
}

// Clear erases the line, before the summary (or a SIGQUIT status) is printed. The next Event
// draws it again.
func (v *View) Clear() {
	if v.w == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.shown {
		_, _ = io.WriteString(v.w, clearLine)
		v.shown = false
	}
}

// millis prints an RTT in milliseconds with three decimals, as ping's summary does.
func millis(d time.Duration) string {
	us := int64(max(d, 0) / time.Microsecond)
	return fmt.Sprintf("%d.%03d", us/1000, us%1000)
}
