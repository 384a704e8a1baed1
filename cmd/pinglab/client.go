package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/metrics"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/report"
	"github.com/pinglab/pinglab/internal/stats"
)

// probeOptions reads the engine's options from clientFlags.
func probeOptions(c *cli.Context) (probe.Options, error) {
	var o probe.Options
	o.Count = c.Int("count")
	if o.Count < 0 {
		return o, exitUsage("%s: -c: %d is negative (0 means until interrupted)", c.Command.HelpName, o.Count)
	}
	var err error
	if o.Interval, err = flagDuration(c, "interval"); err != nil {
		return o, err
	}
	if o.Timeout, err = flagDuration(c, "timeout"); err != nil {
		return o, err
	}
	if o.Timeout == 0 {
		return o, exitUsage("%s: -W: the timeout must be above 0", c.Command.HelpName)
	}
	if o.Deadline, err = flagDuration(c, "deadline"); err != nil {
		return o, err
	}
	// issue 8: --flood and --window are load modes; without -i they send back to back, as
	// iputils' -f does.
	o.Flood = c.Bool("flood")
	o.Window = c.Int("window")
	if o.Window < 0 {
		return o, exitUsage("%s: --window: %d is negative (0: no cap)", c.Command.HelpName, o.Window)
	}
	if (o.Flood || o.Window > 0) && !c.IsSet("interval") {
		o.Interval = 0
	}
	return o, nil
}

// clientRun is one client run: the engine's options and the renderers, set up from the flags
// before the transport is opened, so that a bad flag is reported before anything is sent.
type clientRun struct {
	c     *cli.Context
	opts  probe.Options
	ropts report.Options
	// linger is how long --metrics goes on serving after the run.
	linger time.Duration
}

// newClientRun checks the client flags of c.
func newClientRun(c *cli.Context) (*clientRun, error) {
	opts, err := probeOptions(c)
	if err != nil {
		return nil, err
	}
	ropts := report.Options{
		Quiet:       c.Bool("quiet"),
		Timestamps:  c.Bool("timestamp"),
		Outstanding: c.Bool("report-outstanding"),
		Percentiles: c.Bool("percentiles"),
		// iputils prints the SIGQUIT status line on stderr, apart from the run's output.
		StatusWriter: c.App.ErrWriter,
		Flood:        opts.Flood,
	}
	if _, err := report.New(c.String("format"), nil, ropts); err != nil {
		return nil, flagFailure(c, "--format", err)
	}
	if err := checkPlotFlag(c); err != nil { // issue 7: --plot
		return nil, err
	}
	if err := checkMetricsAddr(c); err != nil {
		return nil, err
	}
	lingerFor, err := flagDuration(c, "metrics-linger")
	if err != nil {
		return nil, err
	}
	return &clientRun{c: c, opts: opts, ropts: ropts, linger: lingerFor}, nil
}

// runClient runs the probe engine over t with the client flags of c: it renders as --format
// says, writes --csv, answers SIGQUIT with the statistics so far, and returns ping's exit code:
// nil when replies came, 1 when none did (or fewer than -c before a -w deadline), 2 when the run
// could not be done.
func runClient(c *cli.Context, h report.Header, t probe.Transport) error {
	cr, err := newClientRun(c)
	if err != nil {
		return err
	}
	return cr.run(c.Context, h, t)
}

func (cr *clientRun) run(ctx context.Context, h report.Header, t probe.Transport) error {
	c := cr.c
	r, err := report.New(c.String("format"), c.App.Writer, cr.ropts)
	if err != nil {
		return flagFailure(c, "--format", err)
	}
	var csv *report.CSV
	if path := c.String("csv"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return flagFailure(c, "--csv", err)
		}
		defer f.Close()
		csv = report.NewCSV(f, h)
	}

	// The metrics are one more consumer of the engine's events, served from before the first
	// probe to the end of the run (and --metrics-linger after it).
	probes := metrics.NewProbes()
	series := probes.Target(h.Target, h.Proto)
	msrv, err := startMetrics(ctx, c, probes)
	if err != nil {
		return err
	}
	if msrv != nil {
		fmt.Fprintf(c.App.ErrWriter, "%s: metrics on %s\n", c.Command.HelpName, msrv.URL())
		defer msrv.Close()
	}

	st := stats.New()
	x := newClientExtras(c, h, st) // --plot and the live line of -q
	var mu sync.Mutex              // the engine's events and SIGQUIT's status line take turns
	r.Start(h)
	stopQuit := onQuit(func() {
		mu.Lock()
		defer mu.Unlock()
		x.Clear()
		r.Status(st.Summary())
	})
	res, runErr := probe.Run(ctx, t, cr.opts, func(ev probe.Event) {
		mu.Lock()
		defer mu.Unlock()
		st.Add(ev)
		series.Event(ev)
		r.Event(ev)
		x.Event(ev)
		if csv != nil {
			csv.Event(ev)
		}
	})
	stopQuit()
	sum := st.Summary()
	x.Clear()
	r.Finish(sum, res)
	if csv != nil {
		if err := csv.Flush(); err != nil {
			return flagFailure(c, "--csv", err)
		}
	}
	if err := x.WritePlot(); err != nil {
		return err
	}
	if msrv != nil {
		linger(ctx, cr.linger)
	}
	switch {
	case r.Err() != nil && !errors.Is(r.Err(), syscall.EPIPE):
		return cli.Exit(fmt.Sprintf("%s: write output: %v", c.Command.HelpName, r.Err()), 2)
	case runErr != nil:
		return failure(c, runErr)
	case sum.Received == 0:
		return cli.Exit("", 1)
	case cr.opts.Count > 0 && cr.opts.Deadline > 0 && sum.Received < cr.opts.Count:
		return cli.Exit("", 1)
	}
	return nil
}

// onQuit calls f on every SIGQUIT (Ctrl-\) until the returned stop is called, as ping prints
// its statistics so far without stopping.
func onQuit(f func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGQUIT)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ch:
				f()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}
