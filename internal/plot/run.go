package plot

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/pinglab/pinglab/internal/probe"
)

// crossGlyph is an X drawn as one path, so that each lost probe is one countable mark in an
// SVG (draw.CrossGlyph strokes two) and thick enough to see next to the reply dots.
type crossGlyph struct{}

func (crossGlyph) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(1.5)})
	r := sty.Radius * 0.8
	var p vg.Path
	p.Move(vg.Point{X: pt.X - r, Y: pt.Y - r})
	p.Line(vg.Point{X: pt.X + r, Y: pt.Y + r})
	p.Move(vg.Point{X: pt.X - r, Y: pt.Y + r})
	p.Line(vg.Point{X: pt.X + r, Y: pt.Y - r})
	c.Stroke(p)
}

// scatter returns a scatter of xys with the given glyph; nil when xys is empty.
func scatter(xys plotter.XYs, shape draw.GlyphDrawer, clr color.Color, radius vg.Length) *plotter.Scatter {
	if len(xys) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		// NewScatter fails only on NaN or infinite values, which the caller never passes.
		panic(fmt.Sprintf("plot: scatter: %v", err))
	}
	s.GlyphStyle = draw.GlyphStyle{Shape: shape, Color: clr, Radius: radius}
	return s
}

// RenderRun draws one run's figure in format ("svg", "png" or "pdf") to w: above, the RTT of
// each probe by sequence number, with lost probes (red crosses) along the top and ICMP errors
// (orange triangles) along the bottom, late replies as gray rings; below, the histogram of the
// replies' RTTs. The title names the target, protocol, probe count, loss and the run's time.
func RenderRun(w io.Writer, format string, s Series, o Options) error {
	top, bottom := runPlots(s)
	return render(w, format, o, func(c draw.Canvas) {
		h := c.Max.Y - c.Min.Y
		top.Draw(draw.Crop(c, 0, 0, h*0.4, 0))
		bottom.Draw(draw.Crop(c, 0, 0, 0, -h*0.6))
	})
}

// WriteRun writes one run's figure (see RenderRun) to path, in the format its extension names:
// .svg, .png or .pdf.
func WriteRun(path string, s Series, o Options) error {
	return writeFile(path, o, func(w io.Writer, format string, o Options) error {
		return RenderRun(w, format, s, o)
	})
}

// runTitle names the run: "udp ping 127.0.0.1: 20 probes, 15 received, 25.0% loss" and when
// it ran. A saved run knows when each probe left, not when the last one timed out, so the
// time given is the span of the sends (and of the replies that came after the last send).
func runTitle(s Series) string {
	sum := s.Summary()
	t := fmt.Sprintf("%s ping %s: %d probes, %d received, %s loss",
		s.Proto, s.Target, sum.Transmitted, sum.Received, percent(sum.Loss))
	switch {
	case sum.Errors == 1:
		t += ", 1 error"
	case sum.Errors > 1:
		t += fmt.Sprintf(", %d errors", sum.Errors)
	}
	if start := s.start(); !start.IsZero() {
		t += "\nstarted " + start.UTC().Format("2006-01-02 15:04:05 UTC")
		if s.Time > 0 {
			// The summary's own figure and rounding (iputils': to the nearest millisecond).
			t += fmt.Sprintf(", time %dms", (s.Time+500*time.Microsecond)/time.Millisecond)
		} else {
			t += fmt.Sprintf(", probes sent over %v", s.end().Sub(start).Round(time.Millisecond))
		}
	}
	return t
}

// percent prints a loss share as the table does: one decimal.
func percent(p float64) string { return fmt.Sprintf("%.1f%%", p) }

func runPlots(s Series) (top, bottom *plot.Plot) {
	var replies, lost, errs, late plotter.XYs
	var rtts plotter.Values
	maxRTT := 0.0
	maxSeq := 1
	for _, p := range s.Points {
		maxSeq = max(maxSeq, p.Seq)
		switch p.Type {
		case probe.EventReply:
			replies = append(replies, plotter.XY{X: float64(p.Seq), Y: ms(p.RTT)})
			rtts = append(rtts, ms(p.RTT))
			maxRTT = math.Max(maxRTT, ms(p.RTT))
		case probe.EventLate:
			late = append(late, plotter.XY{X: float64(p.Seq), Y: ms(p.RTT)})
			maxRTT = math.Max(maxRTT, ms(p.RTT))
		}
	}
	// Lost probes and errors have no RTT: they sit on a row above the highest RTT and on the
	// axis, where they are seen at once whatever the scale.
	lostY := maxRTT * 1.1
	if lostY == 0 {
		lostY = 1
	}
	for _, p := range s.Points {
		switch p.Type {
		case probe.EventTimeout, probe.EventLost:
			lost = append(lost, plotter.XY{X: float64(p.Seq), Y: lostY})
		case probe.EventError:
			errs = append(errs, plotter.XY{X: float64(p.Seq), Y: 0})
		}
	}

	top = plot.New()
	top.Title.Text = runTitle(s)
	top.X.Label.Text = "sequence number"
	top.Y.Label.Text = "RTT (ms)"
	top.Y.Min = 0
	// A probe's width of room at either end, so that the first and last marks are whole.
	top.X.Min, top.X.Max = 0, float64(maxSeq+1)
	// Headroom above the row of lost probes for the legend.
	top.Y.Max = lostY * 1.3
	top.Add(plotter.NewGrid())
	top.Legend.Top = true
	if len(replies) > 0 {
		l, pts, err := plotter.NewLinePoints(replies)
		if err == nil {
			l.Color = ReplyColor
			l.Width = vg.Points(1)
			pts.GlyphStyle = draw.GlyphStyle{Shape: draw.CircleGlyph{}, Color: ReplyColor, Radius: vg.Points(2)}
			top.Add(l, pts)
			top.Legend.Add("reply", l, pts)
		}
	}
	marks := []struct {
		xys    plotter.XYs
		shape  draw.GlyphDrawer
		clr    color.Color
		radius vg.Length
		label  string
	}{
		{lost, crossGlyph{}, LostColor, vg.Points(4), "lost"},
		{errs, draw.PyramidGlyph{}, ErrorColor, vg.Points(4), "ICMP error"},
		{late, draw.RingGlyph{}, LateColor, vg.Points(3), "late reply"},
	}
	for _, m := range marks {
		if sc := scatter(m.xys, m.shape, m.clr, m.radius); sc != nil {
			top.Add(sc)
			top.Legend.Add(fmt.Sprintf("%s (%d)", m.label, len(m.xys)), sc)
		}
	}

	bottom = plot.New()
	bottom.X.Label.Text = "RTT (ms)"
	bottom.Y.Label.Text = "replies"
	if len(rtts) == 0 {
		bottom.Title.Text = "RTT histogram: no replies"
		return top, bottom
	}
	bottom.Title.Text = "RTT histogram"
	bottom.Y.Tick.Marker = wholeTicks{} // counts of replies
	bins := int(math.Ceil(math.Sqrt(float64(len(rtts)))))
	bins = min(max(bins, 5), 40)
	hist, err := plotter.NewHist(rtts, bins)
	if err == nil {
		hist.FillColor = ReplyColor
		hist.LineStyle.Color = color.White
		bottom.Add(hist)
	}
	return top, bottom
}

// wholeTicks marks an axis of counts: gonum's default ticks without the fractional ones, so
// that a histogram of a few replies reads 0 1 2 3, not 0 0.5 1 1.5.
type wholeTicks struct{}

func (wholeTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	labelled := 0
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Value != math.Trunc(t.Value) {
			continue
		}
		if t.Label != "" {
			t.Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
			labelled++
		}
		out = append(out, t)
	}
	if labelled >= 2 {
		return out
	}
	// A range of a few counts: every whole number, labelled.
	out = out[:0]
	for v := math.Ceil(lo); v <= hi; v++ {
		out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return out
}

// logTicks marks a log axis: gonum's powers of ten over a wide range, and over a range
// narrower than a decade (every RTT between 0.05 and 0.2 ms), where no power of ten or only
// one falls inside, a few round values with labels.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := (plot.LogTicks{Prec: -1}).Ticks(lo, hi)
	labelled := 0
	for _, t := range ticks {
		if t.Label != "" && t.Value >= lo && t.Value <= hi {
			labelled++
		}
	}
	if labelled >= 2 {
		return ticks
	}
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Value > 0 {
			out = append(out, t)
		}
	}
	return out
}
