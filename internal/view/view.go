// Package view is pinglab's live view of several runs at once: a chart of RTT over time and a
// table per target, drawn in a terminal with bubbletea and lipgloss, or as plain lines where
// the output is no terminal. It is one more consumer of the probe engine's events: its figures
// are internal/stats', and the chart's points are the events themselves.
package view

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// MaxPoints bounds the chart's history of each target: at one probe a second it is more than
// the widest window; a flood keeps its latest MaxPoints events.
const MaxPoints = 8192

// The time windows +/- step through.
var windows = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
	5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// DefaultWindow is the chart's time window at the start (windows[2]).
const DefaultWindow = time.Minute

// The colours of the targets, in order: ANSI colours every terminal has.
var colours = []lipgloss.Color{"2", "4", "3", "5", "6", "1", "10", "12"}

type kind uint8

const (
	reply kind = iota
	lost       // a timeout or a probe the transport said was lost
	icmpError
)

type point struct {
	at   time.Time
	rtt  time.Duration
	kind kind
}

type target struct {
	label  string
	st     *stats.Stats
	points []point // oldest first, at most MaxPoints
	done   bool
}

// A Watch holds the targets' statistics (reset by the r key) and chart points. Its methods are
// safe for concurrent use: each run's engine calls Event from its own goroutine.
type Watch struct {
	mu      sync.Mutex
	targets []*target
	now     func() time.Time
	window  int // index in windows
	log     bool
	paused  bool
	frozen  string // the frame shown while paused
}

// New returns a Watch of the targets named by labels; now is the clock (time.Now if nil).
func New(labels []string, now func() time.Time) *Watch {
	if now == nil {
		now = time.Now
	}
	w := &Watch{now: now, window: 2}
	for _, l := range labels {
		w.targets = append(w.targets, &target{label: l, st: stats.New()})
	}
	return w
}

// Event adds one event of target i's run.
func (w *Watch) Event(i int, ev probe.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.targets[i]
	t.st.Add(ev)
	p := point{at: ev.At, rtt: ev.RTT}
	switch ev.Type {
	case probe.EventReply:
		p.kind = reply
	case probe.EventTimeout, probe.EventLost:
		p.kind = lost
	case probe.EventError:
		p.kind = icmpError
	default:
		return
	}
	if len(t.points) == MaxPoints {
		// Drop the older half at once, so that appending stays amortised O(1).
		t.points = append(t.points[:0], t.points[MaxPoints/2:]...)
	}
	t.points = append(t.points, p)
}

// Done marks target i's run finished.
func (w *Watch) Done(i int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.targets[i].done = true
}

// Reset starts every target's statistics and chart afresh (the r key); the runs go on.
func (w *Watch) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.targets {
		t.st = stats.New()
		t.points = nil
	}
}

// Zoom narrows (in) or widens the time window one step.
func (w *Watch) Zoom(in bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if in && w.window > 0 {
		w.window--
	} else if !in && w.window < len(windows)-1 {
		w.window++
	}
}

// ToggleLog switches the RTT axis between linear and log.
func (w *Watch) ToggleLog() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = !w.log
}

// TogglePause freezes the picture (the runs go on) or lets it move again.
func (w *Watch) TogglePause(width, height int) {
	w.mu.Lock()
	w.paused = !w.paused
	paused := w.paused
	w.mu.Unlock()
	if paused {
		f := w.Render(width, height)
		w.mu.Lock()
		w.frozen = f
		w.mu.Unlock()
	}
}

// Summary is target i's statistics since the start or the last reset.
func (w *Watch) Summary(i int) stats.Summary {
	w.mu.Lock()
	st := w.targets[i].st
	w.mu.Unlock()
	return st.Summary()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

// Lines is the plain-text view: one line per target.
func (w *Watch) Lines() []string {
	var out []string
	for i, t := range w.targets {
		s := w.Summary(i)
		l := fmt.Sprintf("%s: %d sent, %d received, %.1f%% loss, %d errors", t.label, s.Transmitted, s.Received, s.SettledLoss(), s.Errors)
		if s.Received > 0 {
			l += fmt.Sprintf(", rtt last/min/avg/max/p95/jitter = %s/%s/%s/%s/%s/%s ms", ms(s.Last), ms(s.Min), ms(s.Avg), ms(s.Max), ms(s.P95), ms(s.Jitter))
		}
		out = append(out, l)
	}
	return out
}

// Render draws the whole screen in width x height cells.
func (w *Watch) Render(width, height int) string {
	width, height = max(width, 40), max(height, 10)
	w.mu.Lock()
	window, logScale, paused := windows[w.window], w.log, w.paused
	w.mu.Unlock()
	scale := "linear"
	if logScale {
		scale = "log"
	}
	title := fmt.Sprintf("pinglab watch  window %s  %s RTT", window, scale)
	if paused {
		title += "  PAUSED"
	}
	keys := "q quit  p pause  r reset  l log  +/- zoom"
	if pad := width - len(title) - len(keys); pad >= 2 {
		title += strings.Repeat(" ", pad) + keys
	}
	table := w.table(width)
	chartHeight := height - 1 - len(table) - 2
	lines := []string{lipgloss.NewStyle().Bold(true).Render(truncate(title, width))}
	lines = append(lines, w.chart(width, max(chartHeight, 3), window, logScale)...)
	lines = append(lines, table...)
	return strings.Join(lines, "\n")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

const labelWidth = 9 // the RTT axis' labels and its line

// chart draws the RTT chart: height-1 rows of plot and the time axis below.
func (w *Watch) chart(width, height int, window time.Duration, logScale bool) []string {
	rows, cols := height-1, width-labelWidth
	now := w.now()
	start := now.Add(-window)
	w.mu.Lock()
	all := make([][]point, len(w.targets))
	for i, t := range w.targets {
		for _, p := range t.points {
			if !p.at.Before(start) && !p.at.After(now) {
				all[i] = append(all[i], p)
			}
		}
	}
	w.mu.Unlock()
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for _, ps := range all {
		for _, p := range ps {
			if p.kind == reply {
				lo, hi = min(lo, p.rtt), max(hi, p.rtt)
			}
		}
	}
	if hi == 0 {
		lo, hi = time.Millisecond/10, time.Millisecond
	}
	hi = hi + hi/10
	lo = max(lo-lo/10, time.Microsecond)
	if !logScale {
		lo = 0
	}
	// y maps an RTT to a row from the top, the top row kept for the losses' marks.
	y := func(d time.Duration) int {
		var f float64
		if logScale {
			f = (math.Log(float64(max(d, lo))) - math.Log(float64(lo))) / (math.Log(float64(hi)) - math.Log(float64(lo)))
		} else {
			f = float64(d-lo) / float64(hi-lo)
		}
		r := (rows - 1) - int(math.Round(f*float64(rows-2)))
		return min(max(r, 1), rows-1)
	}
	// rtt is the inverse of y at a row, for the axis' labels.
	rtt := func(r int) time.Duration {
		f := float64(rows-1-r) / float64(rows-2)
		if logScale {
			return time.Duration(math.Exp(math.Log(float64(lo)) + f*(math.Log(float64(hi))-math.Log(float64(lo)))))
		}
		return lo + time.Duration(f*float64(hi-lo))
	}
	grid := make([][]rune, rows)
	owner := make([][]int, rows)
	for r := range grid {
		grid[r] = []rune(strings.Repeat(" ", cols))
		owner[r] = make([]int, cols)
	}
	for i, ps := range all {
		for _, p := range ps {
			c := int(float64(p.at.Sub(start)) / float64(window) * float64(cols-1))
			c = min(max(c, 0), cols-1)
			switch p.kind {
			case reply:
				r := y(p.rtt)
				grid[r][c], owner[r][c] = '•', i
			case lost:
				grid[0][c], owner[0][c] = 'x', i
			case icmpError:
				grid[0][c], owner[0][c] = '!', i
			}
		}
	}
	out := make([]string, 0, height)
	for r := range grid {
		label := ""
		switch {
		case r == 0:
			label = "lost"
		case r == 1 || r == rows-1 || r == rows/2:
			label = ms(rtt(r))
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%*s ┤", labelWidth-2, label)
		for c, ch := range grid[r] {
			if ch == ' ' {
				b.WriteRune(ch)
				continue
			}
			b.WriteString(lipgloss.NewStyle().Foreground(colours[owner[r][c]%len(colours)]).Render(string(ch)))
		}
		out = append(out, b.String())
	}
	axis := fmt.Sprintf("%*s └", labelWidth-2, "ms")
	left, right := "-"+window.String(), "now"
	axis += left + strings.Repeat("─", max(cols-len(left)-len(right), 1)) + right
	return append(out, axis)
}

// The table's columns after the target's: their titles and widths.
var columns = []struct {
	title string
	width int
}{{"sent", 6}, {"recv", 6}, {"loss%", 6}, {"err", 4}, {"last", 8}, {"min", 8}, {"avg", 8}, {"max", 8}, {"p95", 8}, {"jitter", 8}}

// table is the table's lines: a header, a row per target, then the errors by kind.
func (w *Watch) table(width int) []string {
	fixed := 0
	for _, c := range columns {
		fixed += c.width
	}
	name := max(width-fixed-1, 8)
	var head strings.Builder
	fmt.Fprintf(&head, "%-*s", name, "target")
	for _, c := range columns {
		fmt.Fprintf(&head, "%*s", c.width, c.title)
	}
	lines := []string{lipgloss.NewStyle().Bold(true).Render(head.String())}
	var kinds []string
	for i, t := range w.targets {
		w.mu.Lock()
		st, done := t.st, t.done
		w.mu.Unlock()
		s := st.Summary()
		label := t.label
		if done {
			label += " (done)"
		}
		cells := []string{fmt.Sprint(s.Transmitted), fmt.Sprint(s.Received), fmt.Sprintf("%.1f", s.SettledLoss()), fmt.Sprint(s.Errors)}
		if s.Received > 0 {
			cells = append(cells, ms(s.Last), ms(s.Min), ms(s.Avg), ms(s.Max), ms(s.P95), ms(s.Jitter))
		} else {
			cells = append(cells, "-", "-", "-", "-", "-", "-")
		}
		var row strings.Builder
		fmt.Fprintf(&row, "%-*s", name, truncate(label, name-1))
		for j, c := range columns {
			fmt.Fprintf(&row, "%*s", c.width, cells[j])
		}
		lines = append(lines, lipgloss.NewStyle().Foreground(colours[i%len(colours)]).Render(row.String()))
		for k, n := range st.ErrorKinds() {
			kinds = append(kinds, fmt.Sprintf("%s: %d %s", t.label, n, k))
		}
	}
	for _, k := range kinds {
		lines = append(lines, truncate(k, width))
	}
	return lines
}

// tick redraws the screen four times a second.
type tick struct{}

func every() tea.Cmd {
	return tea.Tick(250*time.Millisecond, func(time.Time) tea.Msg { return tick{} })
}

type model struct {
	w             *Watch
	width, height int
}

func (m model) Init() tea.Cmd { return every() }

func (m model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyMsg:
		if msg.Type == tea.KeyCtrlC || msg.Type == tea.KeyEsc {
			return m, tea.Quit
		}
		if msg.Type != tea.KeyRunes && msg.Type != tea.KeySpace {
			return m, nil
		}
		// Keys typed faster than the view reads come as one message of several runes.
		for _, r := range msg.Runes {
			if r == 'q' {
				return m, tea.Quit
			}
			m.key(r)
		}
	case tick:
		return m, every()
	}
	return m, nil
}

func (m model) key(r rune) {
	switch r {
	case 'p', ' ':
		m.w.TogglePause(m.width, m.height)
	case 'r':
		m.w.Reset()
	case 'l':
		m.w.ToggleLog()
	case '+', '=':
		m.w.Zoom(true)
	case '-', '_':
		m.w.Zoom(false)
	}
}

func (m model) View() string {
	if m.width == 0 {
		return ""
	}
	m.w.mu.Lock()
	paused, frozen := m.w.paused, m.w.frozen
	m.w.mu.Unlock()
	if paused && frozen != "" {
		return frozen
	}
	return m.w.Render(m.width, m.height)
}

// Run shows the full-screen view on the terminal (in, out) until the q key or ctx's end.
func (w *Watch) Run(ctx context.Context, in io.Reader, out io.Writer) error {
	p := tea.NewProgram(model{w: w}, tea.WithAltScreen(), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("view: %w", err)
	}
	return nil
}
