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

	"github.com/pinglab/pinglab/internal/stats"
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

	stats *stats.Stats // the run's
}

// New returns a View of the run whose events st counts, writing to w when isTerminal, else one
// that shows nothing. now is the clock that spaces the updates at least every apart; nil means
// time.Now, and every <= 0 means DefaultEvery.
func New(w io.Writer, isTerminal bool, st *stats.Stats, now func() time.Time, every time.Duration) *View {
	v := &View{now: now, every: every, stats: st}
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

// ForFile returns a View of st on f that shows only when f is a terminal (stderr, usually).
func ForFile(f *os.File, st *stats.Stats) *View {
	return New(f, term.IsTerminal(int(f.Fd())), st, nil, 0)
}

// Active reports whether the View shows anything.
func (v *View) Active() bool { return v.w != nil }

// Update redraws the line after the run's Stats counted an event, unless the line was drawn
// less than the View's interval ago. The View keeps no figures of its own: the line says what
// the run's summary will.
func (v *View) Update() {
	if v.w == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
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

// line is the status line. Its figures are package stats', as the summary's will be: "lost"
// is the probes given up on and the loss is among the probes whose fate is known; the probes
// still in flight are counted apart, since they are not lost yet; the average is iputils'.
func (v *View) line() string {
	sum := v.stats.Running()
	inFlight := max(sum.Transmitted-sum.Received-sum.GivenUp(), 0)
	s := fmt.Sprintf("%d sent, %d received, %d lost (%.1f%%), %d in flight", sum.Transmitted, sum.Received, sum.GivenUp(), sum.SettledLoss(), inFlight)
	if sum.Received > 0 {
		s += fmt.Sprintf(", last %s ms, avg %s ms", millis(sum.Last), millis(sum.Avg))
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
