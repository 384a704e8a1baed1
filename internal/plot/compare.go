package plot

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/pinglab/pinglab/internal/probe"
)

// RenderComparison draws several runs in format ("svg", "png" or "pdf") to w, so that
// scenarios can be compared: above, each run's RTT over the seconds since its first probe, with
// its lost probes as crosses (the run's color, darker) along the top; below left, the CDF of
// each run's RTTs; below right, each run's loss as a bar. Run i is drawn in RunColor(i) and
// named by its Label.
func RenderComparison(w io.Writer, format string, runs []Series, o Options) error {
	if len(runs) == 0 {
		return fmt.Errorf("plot: %w", errNoRuns)
	}
	overTime, cdf, loss := comparePlots(runs)
	return render(w, format, o, func(c draw.Canvas) {
		wd, h := c.Max.X-c.Min.X, c.Max.Y-c.Min.Y
		overTime.Draw(draw.Crop(c, 0, 0, h*0.5, 0))
		below := draw.Crop(c, 0, 0, 0, -h*0.5)
		cdf.Draw(draw.Crop(below, 0, -wd*0.4, 0, 0))
		loss.Draw(draw.Crop(below, wd*0.6, 0, 0, 0))
	})
}

// WriteComparison writes the comparison of runs (see RenderComparison) to path, in the format
// its extension names: .svg, .png or .pdf.
func WriteComparison(path string, runs []Series, o Options) error {
	if !anyReply(runs) {
		return fmt.Errorf("plot: %w", ErrNoReplies)
	}
	return writeFile(path, o, func(w io.Writer, format string, o Options) error {
		return RenderComparison(w, format, runs, o)
	})
}

func comparePlots(runs []Series) (overTime, cdf, loss *plot.Plot) {
	overTime = plot.New()
	overTime.Title.Text = "RTT over time"
	overTime.X.Label.Text = "seconds since the first probe"
	overTime.Y.Label.Text = "RTT (ms)"
	overTime.Y.Min = 0
	overTime.X.Min = 0
	overTime.Add(plotter.NewGrid())
	overTime.Legend.Top = true

	cdf = plot.New()
	cdf.Title.Text = "RTT distribution (CDF)"
	cdf.X.Label.Text = "RTT (ms, log scale)"
	// A log scale keeps the bulk of the replies readable next to a few slow outliers.
	cdf.X.Scale = plot.LogScale{}
	cdf.X.Tick.Marker = logTicks{}
	cdf.Y.Label.Text = "share of replies"
	cdf.Y.Min, cdf.Y.Max = 0, 1
	cdf.Add(plotter.NewGrid())
	// Bottom right, where every CDF has already reached 1 and nothing is drawn.
	cdf.Legend.Top = false
	cdf.Legend.Left = false
	cdf.Legend.YOffs = vg.Points(10)

	loss = plot.New()
	loss.Title.Text = "loss"
	loss.Y.Label.Text = "loss (%)"
	loss.Y.Min = 0

	maxRTT := 0.0
	for _, s := range runs {
		for _, p := range s.Points {
			if p.Type == probe.EventReply {
				maxRTT = math.Max(maxRTT, ms(p.RTT))
			}
		}
	}
	if maxRTT == 0 {
		maxRTT = 1
	}
	// Each run's lost probes have a row of their own above the highest RTT, so that runs
	// losing the same probes do not hide each other's marks; above the rows, the legend.
	lostY := func(i int) float64 { return maxRTT * (1.08 + 0.07*float64(i)) }
	overTime.Y.Max = lostY(len(runs)-1) + maxRTT*(0.1+0.07*float64(len(runs)+1))
	names := make([]string, len(runs))
	anyLost := false
	var labels plotter.XYLabels
	for i, s := range runs {
		names[i] = wrap(s.Label, 14)
		start := s.start()
		var line, lost plotter.XYs
		var rtts []float64
		for _, p := range s.Points {
			x := p.Sent.Sub(start).Seconds()
			switch p.Type {
			case probe.EventReply:
				line = append(line, plotter.XY{X: x, Y: ms(p.RTT)})
				// The log scale has no 0: a reply faster than a microsecond is drawn at 1 µs.
				rtts = append(rtts, math.Max(ms(p.RTT), 0.001))
			case probe.EventTimeout, probe.EventLost:
				lost = append(lost, plotter.XY{X: x, Y: lostY(i)})
			}
		}
		if len(line) > 0 {
			if l, err := plotter.NewLine(line); err == nil {
				l.Color = RunColor(i)
				l.Width = vg.Points(1)
				overTime.Add(l)
				overTime.Legend.Add(s.Label, l)
			}
		}
		if sc := scatter(lost, crossGlyph{}, LostRunColor(i), vg.Points(3.5)); sc != nil {
			overTime.Add(sc)
			anyLost = true
		}
		if len(rtts) > 0 {
			slices.Sort(rtts)
			steps := make(plotter.XYs, 0, len(rtts)+1)
			steps = append(steps, plotter.XY{X: rtts[0], Y: 0})
			for k, v := range rtts {
				steps = append(steps, plotter.XY{X: v, Y: float64(k+1) / float64(len(rtts))})
			}
			if l, err := plotter.NewLine(steps); err == nil {
				l.StepStyle = plotter.PreStep
				l.Color = RunColor(i)
				l.Width = vg.Points(1.5)
				cdf.Add(l)
				cdf.Legend.Add(s.Label, l)
			}
		}
		sum := s.Summary()
		bar, err := plotter.NewBarChart(plotter.Values{sum.Loss}, vg.Points(40))
		if err == nil {
			bar.XMin = float64(i)
			bar.Color = RunColor(i)
			bar.LineStyle.Width = 0
			loss.Add(bar)
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: sum.Loss})
		labels.Labels = append(labels.Labels, percent(sum.Loss))
	}
	if anyLost {
		overTime.Legend.Add("lost (run's color, darker)", lostThumb{})
	}
	if l, err := plotter.NewLabels(labels); err == nil {
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = draw.XCenter
		}
		l.Offset = vg.Point{Y: vg.Points(3)}
		loss.Add(l)
	}
	loss.NominalX(names...)
	// Half a bar's slot of room at either end, so that the outer bars and their labels are whole.
	loss.X.Min, loss.X.Max = -0.5, float64(len(runs))-0.5
	// Room above the tallest bar for its label.
	loss.Y.Max = math.Max(loss.Y.Max*1.15, 1)
	return overTime, cdf, loss
}

// lostThumb is the legend's mark for lost probes in a comparison: a gray cross, since each
// run's crosses have that run's (darker) color.
type lostThumb struct{}

func (lostThumb) Thumbnail(c *draw.Canvas) {
	pt := vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: (c.Min.Y + c.Max.Y) / 2}
	crossGlyph{}.DrawGlyph(c, draw.GlyphStyle{Color: LateColor, Radius: vg.Points(3.5)}, pt)
}

// wrap breaks a label into lines of about width characters at its spaces, so that the names
// under the loss bars do not run into each other.
func wrap(label string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(label) {
		if i > 0 {
			if n+1+len(w) > width {
				b.WriteByte('\n')
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

func anyReply(runs []Series) bool {
	for _, s := range runs {
		for _, p := range s.Points {
			if p.Type == probe.EventReply {
				return true
			}
		}
	}
	return false
}
