package main

import (
	"errors"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/live"
	"github.com/pinglab/pinglab/internal/plot"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/report"
	"github.com/pinglab/pinglab/internal/stats"
)

func init() {
	register(plotCommand)
	register(reportCommand)
}

func plotCommand() *cli.Command {
	return &cli.Command{
		Name:      "plot",
		Usage:     "draw saved runs (--csv files) side by side to compare scenarios",
		UsageText: "pinglab plot RUN.csv [RUN2.csv ...] -o FILE [--label L ...] [--width PX] [--height PX]",
		Description: `Draws the runs saved with --csv in one figure: each run's RTT over time (lost probes
marked), the distribution (CDF) of each run's RTTs, and each run's loss as a bar. A run is
named by its file name, or by --label (given once per run, in order). The format follows
the extension of -o: .svg, .png or .pdf.

Examples:
   pinglab udp ping 127.0.0.1 -c 100 -i 0.05 -q --csv noloss.csv
   pinglab udp ping 127.0.0.1:12001 -c 100 -i 0.05 -q --csv drop20.csv
   pinglab plot noloss.csv drop20.csv -o compare.png
   pinglab plot noloss.csv drop20.csv -o compare.svg --label "no loss" --label "drop 20%"`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the figure to `FILE` (.svg, .png or .pdf)"},
			&cli.StringSliceFlag{Name: "label", Usage: "name the runs, in order: `LABEL` (once per run; default: the file name)"},
			&cli.IntFlag{Name: "width", Value: plot.DefaultWidth, Usage: "figure width in `PIXELS` (at 96 dpi for SVG and PDF)"},
			&cli.IntFlag{Name: "height", Value: plot.DefaultHeight, Usage: "figure height in `PIXELS`"},
		},
		Action: plotAction,
	}
}

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "print the statistics of saved runs (--csv files) as a Markdown table",
		UsageText: "pinglab report RUN.csv [RUN2.csv ...] [--format markdown|csv] [--label L ...]",
		Description: `Prints one row per run saved with --csv: target, protocol, probes sent, replies, errors,
loss, RTT min/avg/max/mdev, p50/p90/p99 and jitter in milliseconds, computed as the live
run computed them. Markdown pastes into a lab report; --format csv opens in a spreadsheet.

Examples:
   pinglab report noloss.csv drop20.csv
   pinglab report noloss.csv drop20.csv --label "no loss" --label "drop 20%"
   pinglab report *.csv --format csv > runs.csv`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: report.TableFormats[0], Usage: "table `FORMAT`: " + strings.Join(report.TableFormats, " or ")},
			&cli.StringSliceFlag{Name: "label", Usage: "name the runs, in order: `LABEL` (once per run; default: the file name)"},
		},
		Action: reportAction,
	}
}

// readRuns reads the command's CSV arguments and the label of each (--label, in order, or ""
// for the file's name). Any file that cannot be read, or is not pinglab's, is a usage error
// naming it (and its line).
func readRuns(c *cli.Context) ([]report.Run, []string, error) {
	paths := c.Args().Slice()
	if len(paths) == 0 {
		return nil, nil, exitUsage("%s: no run to read: give one or more RUN.csv files saved with --csv", c.Command.HelpName)
	}
	labels := c.StringSlice("label")
	if len(labels) > len(paths) {
		return nil, nil, exitUsage("%s: %d labels for %d runs: give at most one --label per run", c.Command.HelpName, len(labels), len(paths))
	}
	labels = append(labels, make([]string, len(paths)-len(labels))...)
	runs := make([]report.Run, 0, len(paths))
	for _, path := range paths {
		run, err := readRun(path)
		if err != nil {
			return nil, nil, failure(c, err)
		}
		runs = append(runs, run)
	}
	return runs, labels, nil
}

func readRun(path string) (report.Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return report.Run{}, err
	}
	defer f.Close()
	return report.ReadCSV(f, path)
}

func plotAction(c *cli.Context) error {
	out := c.String("output")
	if out == "" {
		return exitUsage("%s: -o FILE is required (the figure's .svg, .png or .pdf)", c.Command.HelpName)
	}
	if _, err := plot.FormatOf(out); err != nil {
		return flagFailure(c, "-o", err)
	}
	if err := checkWritable(out); err != nil {
		return exitUsage("%s: -o: %v", c.Command.HelpName, err)
	}
	opts, err := figureSize(c)
	if err != nil {
		return err
	}
	runs, labels, err := readRuns(c)
	if err != nil {
		return err
	}
	series := make([]plot.Series, len(runs))
	for i, run := range runs {
		if len(run.Rows) == 0 {
			return exitUsage("%s: %s: no probes in it (only the header): nothing to draw", c.Command.HelpName, run.Name)
		}
		series[i] = plot.FromRun(run, labels[i])
	}
	if err := plot.WriteComparison(out, series, opts); errors.Is(err, plot.ErrNoReplies) {
		return exitUsage("%s: %s: no replies to draw, every probe was lost (pinglab report %s gives the counts)",
			c.Command.HelpName, strings.Join(c.Args().Slice(), ", "), strings.Join(c.Args().Slice(), " "))
	} else if err != nil {
		return failure(c, err)
	}
	wrote(c, out)
	return nil
}

// figureSize reads --width and --height; a figure too small for its axes or absurdly large
// is a usage error rather than a drawing that fails or fills memory.
func figureSize(c *cli.Context) (plot.Options, error) {
	o := plot.Options{Width: c.Int("width"), Height: c.Int("height")}
	for _, f := range []struct {
		name string
		v    int
	}{{"width", o.Width}, {"height", o.Height}} {
		if f.v < 200 || f.v > 10000 {
			return o, exitUsage("%s: --%s: %d pixels is outside 200 to 10000", c.Command.HelpName, f.name, f.v)
		}
	}
	return o, nil
}

func reportAction(c *cli.Context) error {
	format := c.String("format")
	if format != "markdown" && format != "csv" {
		return exitUsage("%s: --format: %q is not %s", c.Command.HelpName, format, strings.Join(report.TableFormats, " or "))
	}
	runs, labels, err := readRuns(c)
	if err != nil {
		return err
	}
	table := make([]report.TableRun, len(runs))
	for i, run := range runs {
		table[i] = run.TableRun(labels[i])
	}
	if err := report.WriteTable(c.App.Writer, format, table); err != nil {
		return cli.Exit(c.Command.HelpName+": "+err.Error(), 2)
	}
	return nil
}

// clientExtras are the recorder behind a client run's --plot and the live status line of a
// quiet run on a terminal. clientRun.run feeds it the engine's events, after the run's Stats.
type clientExtras struct {
	c    *cli.Context
	rec  *plot.Recorder // nil without --plot
	live *live.View
	path string // --plot's file
}

func newClientExtras(c *cli.Context, h report.Header, st *stats.Stats) *clientExtras {
	x := &clientExtras{c: c, live: live.New(nil, false, st, nil, 0), path: c.String("plot")}
	if c.String("plot") != "" {
		x.rec = plot.NewRecorder(h.Proto, h.Target)
	}
	if f, ok := c.App.ErrWriter.(*os.File); ok && c.Bool("quiet") {
		x.live = live.ForFile(f, st)
	}
	return x
}

// checkPlotFlag checks --plot's extension, so that a bad one is reported before anything is sent.
func checkPlotFlag(c *cli.Context) error {
	if path := c.String("plot"); path != "" {
		if _, err := plot.FormatOf(path); err != nil {
			return flagFailure(c, "--plot", err)
		}
		if err := checkWritable(path); err != nil {
			return exitUsage("%s: --plot: %v", c.Command.HelpName, err)
		}
	}
	return nil
}

// Event records one event for the plot and updates the live line, which reads the run's Stats.
func (x *clientExtras) Event(ev probe.Event) {
	if x.rec != nil {
		x.rec.Event(ev)
	}
	x.live.Update()
}

// Clear erases the live line before anything else is printed to the terminal.
func (x *clientExtras) Clear() { x.live.Clear() }

// WritePlot writes --plot's figure of the run, whose title gives the summary's time.
func (x *clientExtras) WritePlot(res probe.Result) error {
	if x.rec == nil {
		return nil
	}
	s := x.rec.Series()
	if !res.Start.IsZero() && res.End.After(res.Start) {
		s.Time = res.End.Sub(res.Start)
	}
	if err := plot.WriteRun(x.path, s, plot.Options{}); err != nil {
		return flagFailure(x.c, "--plot", err)
	}
	wrote(x.c, x.path)
	return nil
}
