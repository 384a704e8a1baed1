package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/pinglab/pinglab/icmpping"
	"github.com/pinglab/pinglab/internal/live"
	"github.com/pinglab/pinglab/internal/plot"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/report"
	"github.com/pinglab/pinglab/internal/stats"
	"github.com/pinglab/pinglab/internal/view"
	"github.com/pinglab/pinglab/tcpping"
)

func init() { register(watchCommand) }

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "watch several targets live: a chart of RTT over time and a table per target",
		UsageText: "pinglab watch [flags] TARGET...",
		Description: `Pings every TARGET at once, each with the client flags (-i, -W, -s, -c ...), and shows them
live in the terminal: a chart of RTT over time, one colour per target, lost probes marked x
and ICMP errors ! on its top row; below it a table per target: sent, received, loss, errors,
last, min, avg, max, p95 and jitter (ms), and the errors by kind.

A TARGET is icmp:HOST, udp:HOST[:PORT], tcp:HOST[:PORT] (port 12000 unless given) or a bare
HOST, which is ICMP.

Keys: q quit (each target's summary is then printed, as after Ctrl-C), p pause the picture
(the probes go on), r reset the statistics, l linear or log RTT axis, + / - narrow or widen the
time window. When the output is no terminal, a line per target is printed every second.
--csv and --plot write one file per target: with several targets, FILE-1.csv, FILE-2.csv ...
in the order given.

Examples:
   pinglab watch 127.0.0.1 udp:127.0.0.1 tcp:127.0.0.1:12000
   pinglab watch -i 0.2 udp:10.0.0.2 icmp:10.0.0.2 --csv run.csv`,
		Flags: append(clientFlags(0),
			&cli.StringFlag{Name: "connect", Value: tcpping.ConnectKeep.String(), Usage: "tcp: targets' `MODE`: keep or per-ping"},
			&cli.BoolFlag{Name: "numeric", Aliases: []string{"n"}, Usage: "look no names up: print addresses only"},
		),
		Action: watch,
	}
}

// A watchTarget is one TARGET argument, checked.
type watchTarget struct {
	arg, proto, host string
}

// parseWatchTarget reads one TARGET; the port, when given, must be a number 1..65535.
func parseWatchTarget(arg string) (watchTarget, error) {
	t := watchTarget{arg: arg, proto: "icmp", host: arg}
	if _, err := netip.ParseAddr(strings.Trim(arg, "[]")); err != nil {
		if scheme, rest, ok := strings.Cut(arg, ":"); ok {
			switch scheme {
			case "icmp", "udp", "tcp":
				t.proto, t.host = scheme, rest
			default:
				return t, fmt.Errorf("%q: unknown scheme %q (icmp:, udp:, tcp: or a bare HOST)", arg, scheme)
			}
		}
	}
	if t.host == "" {
		return t, fmt.Errorf("%q: no host", arg)
	}
	if t.proto == "icmp" {
		return t, nil
	}
	host, port := t.host, ""
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil || strings.HasPrefix(host, "[") {
		if h, p, err := net.SplitHostPort(host); err == nil {
			host, port = h, p
		} else if strings.Contains(host, ":") {
			return t, fmt.Errorf("%q: bad HOST:PORT", arg)
		}
	}
	if host == "" {
		return t, fmt.Errorf("%q: no host", arg)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return t, fmt.Errorf("%q: bad port %q (1..65535)", arg, port)
		}
	}
	return t, nil
}

// numbered is path with -N before its extension when several targets each write one.
func numbered(path string, i, n int) string {
	if path == "" || n == 1 {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), i+1, ext)
}

// watchRun is one target's run: its transport and its consumers of the engine's events.
type watchRun struct {
	h     report.Header
	t     probe.Transport
	close func() error
	st    *stats.Stats // the whole run's, for the summary after q
	csv   *report.CSV
	csvF  *os.File
	x     *clientExtras
	res   probe.Result
	err   error
}

func watch(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Args().Len() == 0 {
		return exitUsage("%s: no TARGET (icmp:HOST, udp:HOST[:PORT], tcp:HOST[:PORT] or HOST)", name)
	}
	var targets []watchTarget
	for _, a := range c.Args().Slice() {
		t, err := parseWatchTarget(a)
		if err != nil {
			return exitUsage("%s: %v", name, err)
		}
		targets = append(targets, t)
	}
	family, err := ipFamily(c)
	if err != nil {
		return err
	}
	mode, err := tcpping.ParseConnectMode(c.String("connect"))
	if err != nil {
		return exitUsage("%s: --connect: %q is not keep or per-ping", name, c.String("connect"))
	}
	cr, err := newClientRun(c)
	if err != nil {
		return err
	}
	var size int
	var icmpCfg icmpping.Config
	for _, t := range targets {
		switch t.proto {
		case "icmp":
			if err := icmpping.CheckInterval(os.Getuid(), cr.opts.Interval); err != nil {
				return exitUsage("%s: %v", name, err)
			}
			if icmpCfg, err = pingConfig(c); err != nil {
				return err
			}
			if !c.IsSet("size") {
				icmpCfg.Size = icmpping.DefaultSize
			}
		default:
			if size, err = textSize(c); err != nil {
				return err
			}
		}
	}

	// Every argument is checked; now the sockets open, all before the first probe.
	runs := make([]*watchRun, len(targets))
	defer func() {
		for _, r := range runs {
			if r != nil && r.close != nil {
				r.close()
			}
		}
	}()
	for i, t := range targets {
		r := &watchRun{st: stats.New()}
		switch t.proto {
		case "icmp":
			h, conn, err := dialICMP(c, icmpCfg, t.host, family)
			if err != nil {
				return err
			}
			r.h, r.t, r.close = h, conn, conn.Close
		case "udp":
			h, conn, err := dialUDP(c, t.host, family, size)
			if err != nil {
				return err
			}
			r.h, r.t, r.close = h, conn, conn.Close
		case "tcp":
			h, cl, err := dialTCP(c, t.host, family, size, mode, cr.opts.Timeout)
			if err != nil {
				return err
			}
			r.h, r.t, r.close = h, cl, cl.Close
		}
		r.x = &clientExtras{c: c, live: live.New(nil, false, r.st, nil, 0), path: numbered(c.String("plot"), i, len(targets))}
		if r.x.path != "" {
			r.x.rec = plot.NewRecorder(r.h.Proto, r.h.Target)
		}
		if path := numbered(c.String("csv"), i, len(targets)); path != "" {
			f, err := os.Create(path)
			if err != nil {
				return flagFailure(c, "--csv", err)
			}
			r.csvF, r.csv = f, report.NewCSV(f, r.h)
		}
		runs[i] = r
	}

	labels := make([]string, len(targets))
	for i, t := range targets {
		labels[i] = t.proto + ":" + t.host
	}
	w := view.New(labels, nil)
	ctx, stop := context.WithCancel(c.Context)
	defer stop()
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mu sync.Mutex
			r.res, r.err = probe.Run(ctx, r.t, cr.opts, func(ev probe.Event) {
				mu.Lock()
				defer mu.Unlock()
				r.st.Add(ev)
				r.x.Event(ev)
				if r.csv != nil {
					r.csv.Event(ev)
				}
				w.Event(i, ev)
			})
			w.Done(i)
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	out := c.App.Writer
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		// The view ends on q (or Ctrl-C, which the terminal's raw mode hands it as a key); the
		// runs may have finished long before, their last figures still on the screen.
		if err := w.Run(ctx, os.Stdin, f); err != nil {
			stop()
			return failure(c, err)
		}
	} else {
		plainLines(ctx, out, w, allDone)
	}
	stop()
	<-allDone

	var firstErr error
	anyReceived := false
	for _, r := range runs {
		rr, err := report.New("text", out, cr.ropts)
		if err != nil {
			return flagFailure(c, "--format", err)
		}
		rr.Start(r.h)
		sum := r.st.Summary()
		rr.Finish(sum, r.res)
		anyReceived = anyReceived || sum.Received > 0
		if r.csv != nil {
			err := r.csv.Flush()
			r.csvF.Close()
			if err != nil {
				return flagFailure(c, "--csv", err)
			}
			wrote(c, r.csvF.Name())
		}
		if err := r.x.WritePlot(r.res); err != nil {
			return err
		}
		if r.err != nil && !errors.Is(r.err, context.Canceled) && firstErr == nil {
			firstErr = r.err
		}
	}
	switch {
	case firstErr != nil:
		return failure(c, firstErr)
	case !anyReceived:
		return cli.Exit("", 1)
	}
	return nil
}

// plainLines prints the view's lines every second until the runs end or ctx does.
func plainLines(ctx context.Context, out io.Writer, w *view.Watch, done <-chan struct{}) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			for _, l := range w.Lines() {
				fmt.Fprintln(out, l)
			}
			return
		case <-tk.C:
			for _, l := range w.Lines() {
				fmt.Fprintln(out, l)
			}
		}
	}
}
