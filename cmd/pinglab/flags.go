package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// durationFlag is a flag that takes Go's durations ("200ms", "1.5s") and ping's plain seconds
// ("0.2", "1") alike. Read it with flagDuration, which names the flag in its error.
func durationFlag(name, alias string, value time.Duration, usage string) *cli.StringFlag {
	f := &cli.StringFlag{Name: name, Usage: usage, Value: formatDuration(value)}
	if alias != "" {
		f.Aliases = []string{alias}
	}
	return f
}

// flagDuration reads a durationFlag. A negative or malformed value is a usage error (exit 2).
func flagDuration(c *cli.Context, name string) (time.Duration, error) {
	s := c.String(name)
	d, err := parseDuration(s)
	if err != nil {
		return 0, exitUsage("%s: --%s: %v", c.Command.HelpName, name, err)
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration (want 200ms, 1s or plain seconds like 0.2)")
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		d = time.Duration(f * float64(time.Second))
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (want 200ms, 1s or plain seconds like 0.2)", s)
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}

// shareFlag is a flag that takes a share as a percentage ("20%") or a fraction ("0.2").
// Read it with flagShare.
func shareFlag(name, usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Usage: usage + " (`SHARE`: \"20%\" or 0.2)", Value: "0"}
}

// flagShare reads a shareFlag as a fraction in [0, 1]. Anything else is a usage error.
func flagShare(c *cli.Context, name string) (float64, error) {
	p, err := parseShare(c.String(name))
	if err != nil {
		return 0, exitUsage("%s: --%s: %v", c.Command.HelpName, name, err)
	}
	return p, nil
}

func parseShare(s string) (float64, error) {
	s = strings.TrimSpace(s)
	percent := strings.HasSuffix(s, "%")
	num := strings.TrimSpace(strings.TrimSuffix(s, "%"))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a share (want a percentage like 20%% or a fraction like 0.2)", s)
	}
	if percent {
		f /= 100
	} else if f > 1 && f <= 100 {
		return 0, fmt.Errorf("%q is above 1: write %s%% for a percentage", s, num)
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("%q is outside 0%% to 100%%", s)
	}
	return f, nil
}

// clientFlags are the flags every pinger shares, named as iputils ping names them.
// defaultSize is the payload size when -s is not given.
func clientFlags(defaultSize int) []cli.Flag {
	return append([]cli.Flag{
		&cli.IntFlag{Name: "count", Aliases: []string{"c"}, Usage: "stop after `N` probes (0: until interrupted)"},
		durationFlag("interval", "i", time.Second, "wait `INTERVAL` between probes (0: next as soon as the last is answered)"),
		durationFlag("timeout", "W", time.Second, "wait up to `TIMEOUT` for each reply"),
		durationFlag("deadline", "w", 0, "stop the whole run after `DEADLINE` (0: none; trace's -w is the wait per hop)"),
		&cli.IntFlag{Name: "size", Aliases: []string{"s"}, Value: defaultSize, Usage: "send `BYTES` of payload"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the header and the summary (trace's -q is probes per hop)"},
		&cli.BoolFlag{Name: "timestamp", Aliases: []string{"D"}, Usage: "print the unix time before each line"},
		&cli.BoolFlag{Name: "report-outstanding", Aliases: []string{"O"}, Usage: "report a probe with no answer before the next is sent"},
		&cli.BoolFlag{Name: "ipv4", Aliases: []string{"4"}, Usage: "use IPv4 only"},
		&cli.BoolFlag{Name: "ipv6", Aliases: []string{"6"}, Usage: "use IPv6 only"},
		&cli.BoolFlag{Name: "percentiles", Usage: "end the text summary with pinglab's extra line: rtt p50/p90/p99 and jitter"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text, assignment or json"},
		&cli.StringFlag{Name: "csv", Usage: "write one row per probe to `FILE` as it happens"},
		&cli.StringFlag{Name: "plot", Usage: "draw the run to `FILE` at its end (.svg, .png or .pdf)"},
		// The load modes a benchmark or an instructor stressing a server uses.
		&cli.BoolFlag{Name: "flood", Aliases: []string{"f"}, Usage: "flood as ping -f: the next probe as soon as the last is answered, at least every 10 ms; a dot per probe, erased by its reply (trace's -f is the first hop)"},
		&cli.IntFlag{Name: "window", Usage: "keep `N` probes in flight (without -i: back to back; with -i: at most N outstanding)"},
	}, clientMetricsFlags()...)
}

// oneWayFlag is --one-way of the UDP and TCP pingers: pinglab's one-way extension.
func oneWayFlag() cli.Flag {
	return &cli.BoolFlag{Name: "one-way", Usage: "ask pinglab's server which way each lost probe was lost, and time each direction"}
}

// ipFamily reads -4 / -6 as the suffix of a network name ("", "4" or "6").
func ipFamily(c *cli.Context) (string, error) {
	v4, v6 := c.Bool("ipv4"), c.Bool("ipv6")
	switch {
	case v4 && v6:
		return "", exitUsage("%s: -4 and -6 exclude each other", c.Command.HelpName)
	case v4:
		return "4", nil
	case v6:
		return "6", nil
	}
	return "", nil
}

// oneArg returns the command's single positional argument, named what in the error.
func oneArg(c *cli.Context, what string) (string, error) {
	switch c.Args().Len() {
	case 0:
		return "", exitUsage("%s: missing %s (see --help)", c.Command.HelpName, what)
	case 1:
		return c.Args().First(), nil
	default:
		return "", exitUsage("%s: one %s expected, got %q", c.Command.HelpName, what, c.Args().Slice())
	}
}
