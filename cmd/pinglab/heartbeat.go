package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/heartbeat"
	"github.com/pinglab/pinglab/udpping"
)

func udpHeartbeatCommand() *cli.Command {
	return &cli.Command{
		Name:      "heartbeat",
		Usage:     "send UDP heartbeats to a server that follows them (the handout's optional exercise)",
		UsageText: "pinglab udp heartbeat [-i INTERVAL] [-c N] [-4|-6] HOST[:PORT]",
		Description: `Sends "heartbeat <seq> <YYYY-MM-DD HH:MM:SS.ffffff>" every -i (one second unless given)
and waits for nothing. "pinglab udp server" recognises heartbeats among the pings: it prints
the ones that went missing by number, those that came out of order or twice, the one-way delay
the timestamps give and its variation, and "client X stopped (no heartbeat for 3 s)" after
its --heartbeat-timeout of silence; when the client sends again it says it came back.

Examples:
   pinglab udp heartbeat 127.0.0.1                # one a second until Ctrl-C
   pinglab udp heartbeat 10.0.0.2:12000 -i 100ms -c 50`,
		Flags: []cli.Flag{
			durationFlag("interval", "i", time.Second, "send a heartbeat every `INTERVAL`"),
			&cli.IntFlag{Name: "count", Aliases: []string{"c"}, Usage: "stop after `N` heartbeats (0: until interrupted)"},
			&cli.BoolFlag{Name: "ipv4", Aliases: []string{"4"}, Usage: "use IPv4 only"},
			&cli.BoolFlag{Name: "ipv6", Aliases: []string{"6"}, Usage: "use IPv6 only"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the summary"},
		},
		Action: udpHeartbeat,
	}
}

func udpHeartbeat(c *cli.Context) error {
	target, err := oneArg(c, "HOST[:PORT]")
	if err != nil {
		return err
	}
	family, err := ipFamily(c)
	if err != nil {
		return err
	}
	interval, err := flagDuration(c, "interval")
	if err != nil {
		return err
	}
	if interval <= 0 {
		return exitUsage("%s: -i: the interval must be above 0", c.Command.HelpName)
	}
	count := c.Int("count")
	if count < 0 {
		return exitUsage("%s: -c: %d is negative (0 means until interrupted)", c.Command.HelpName, count)
	}
	w := c.App.Writer
	quiet := c.Bool("quiet")
	failed := 0
	cfg := udpping.HeartbeatConfig{Addr: target, Network: "udp" + family, Interval: interval, Count: count,
		Sent: func(seq int, at time.Time, err error) {
			if err != nil {
				failed++
				fmt.Fprintf(w, "heartbeat %d not sent: %v\n", seq, err)
				return
			}
			if !quiet {
				fmt.Fprintf(w, "heartbeat %d sent at %s\n", seq, at.Format("2006-01-02 15:04:05.000000"))
			}
		}}
	hc, err := udpping.DialHeartbeat(c.Context, cfg)
	if err != nil {
		return exitUsage("%s: %s", c.Command.HelpName, strings.TrimPrefix(err.Error(), "udpping: "))
	}
	defer hc.Close()
	fmt.Fprintf(w, "HEARTBEAT %s (%s) from %s every %s.\n", target, hc.RemoteAddr(), hc.LocalAddr(), formatDuration(interval))
	start := time.Now()
	sent, err := hc.Run(c.Context)
	fmt.Fprintf(w, "\n--- %s heartbeat ---\n%d heartbeats sent", target, sent)
	if failed > 0 {
		fmt.Fprintf(w, ", %d could not be sent", failed)
	}
	fmt.Fprintf(w, ", time %dms\n", time.Since(start).Milliseconds())
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", c.Command.HelpName, err), 2)
	}
	return nil
}

// heartbeatLine prints what the server noticed of a heartbeat client; a heartbeat in order only
// when the server logs every datagram.
func heartbeatLine(w io.Writer, quiet bool) func(heartbeat.Event) {
	return func(e heartbeat.Event) {
		if quiet && (e.Kind == heartbeat.Beat || e.Kind == heartbeat.Started) {
			return
		}
		fmt.Fprintf(w, "%s %s\n", e.At.Format("15:04:05.000000"), e)
	}
}

// writeHeartbeatTable prints the server's heartbeat clients on Ctrl-C, when it had any.
func writeHeartbeatTable(w io.Writer, clients []heartbeat.ClientStats) {
	if len(clients) == 0 {
		return
	}
	// The delay holds the offset between the two clocks; its variation does not.
	cols := []string{"received", "lost", "reordered", "duplicates", "last", "state", "delay", "variation"}
	rows := make([][]string, len(clients))
	width := len("client")
	for i, c := range clients {
		state := "alive"
		if c.Stopped {
			state = "stopped"
		}
		rows[i] = []string{c.Addr.String(), strconv.Itoa(c.Received), strconv.Itoa(c.Lost), strconv.Itoa(c.Reordered),
			strconv.Itoa(c.Duplicates), strconv.Itoa(c.Last), state, msDecimals(c.AvgDelay) + " ms", msDecimals(c.Variation) + " ms"}
		width = max(width, len(rows[i][0]))
	}
	fmt.Fprintf(w, "\n--- udp heartbeat clients ---\n")
	line := func(cells []string) {
		var b strings.Builder
		fmt.Fprintf(&b, "%-*s", width, cells[0])
		for i, c := range cells[1:] {
			fmt.Fprintf(&b, "  %*s", max(len(cols[i]), 8), c)
		}
		fmt.Fprintln(w, b.String())
	}
	line(append([]string{"client"}, cols...))
	for _, r := range rows {
		line(r)
	}
}

// msDecimals prints a duration that may be negative in milliseconds with three decimals.
func msDecimals(d time.Duration) string {
	us := d.Microseconds()
	sign := ""
	if us < 0 {
		sign, us = "-", -us
	}
	return fmt.Sprintf("%s%d.%03d", sign, us/1000, us%1000)
}
