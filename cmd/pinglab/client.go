package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/metrics"
	"github.com/pinglab/pinglab/internal/pingmsg"
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
	// --flood and --window are load modes; without -i they send back to back, as iputils' -f
	// does.
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
	if err := checkPlotFlag(c); err != nil {
		return nil, err
	}
	if path := c.String("csv"); path != "" {
		if err := checkWritable(path); err != nil {
			return nil, exitUsage("%s: --csv: %v", c.Command.HelpName, err)
		}
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
		wrote(c, c.String("csv"))
	}
	if err := x.WritePlot(res); err != nil {
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

// checkWritable refuses, before anything is sent, a file that could not be written when the
// run has something to write: its folder missing or read-only, or the path itself a folder.
func checkWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a folder", path)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".pinglab-check-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot write in %s: %v", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// textSize reads -s for the UDP and TCP pingers, whose probes carry the assignment's text:
// 0 (not set) is the default size; a size set below the text's own length is refused, where
// ICMP's -s 0 (a bare header) is valid.
func textSize(c *cli.Context) (int, error) {
	size := c.Int("size")
	if c.IsSet("size") && size < pingmsg.MinSize {
		// The packages' own words for a size they refuse, which take 0 for their default.
		return 0, exitUsage("%s: size too small for the message (at least %d bytes), not %d", c.Command.HelpName, pingmsg.MinSize, size)
	}
	return size, nil
}

// wrote says that a file the user asked for is there, on stderr, apart from the run's output
// (which may be JSON in a pipe): after --csv, --plot and plot -o alike.
func wrote(c *cli.Context, path string) {
	fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", path)
}
