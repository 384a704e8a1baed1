package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

// What the UDP and TCP servers share in what they print.

// preview shows a datagram or a TCP message on one line of a server's log: a ping's message
// without its padding, printable text as it is, anything else quoted, long ones cut, so that a
// client sending binary or megabytes cannot garble the log.
func preview(data []byte) string {
	const maxShown = 60
	shown := data
	if _, ok := pingmsg.ParseSeq(data); ok && len(data) > pingmsg.MinSize {
		// The message is "ping <seq> <date> <time>"; what follows is padding.
		if i := nthSpace(data, 4); i > 0 {
			shown = data[:i]
		}
	}
	cut := len(shown) > maxShown
	if cut {
		shown = shown[:maxShown]
	}
	s := string(shown)
	for _, ch := range shown {
		if ch < ' ' || ch > '~' {
			s = strconv.Quote(s)
			break
		}
	}
	if len(data) == 0 {
		s = `""`
	}
	if cut || len(shown) < len(data) {
		s += " ..."
	}
	return s
}

func nthSpace(b []byte, n int) int {
	for i, ch := range b {
		if ch == ' ' {
			if n--; n == 0 {
				return i
			}
		}
	}
	return -1
}

// percentWords prints a share as the servers' banners do: "20%".
func percentWords(share float64) string {
	return strconv.FormatFloat(100*share, 'g', 4, 64) + "%"
}

// delayWords says how replies are held back ("delay 50ms ± 10ms"), or "" when they are not.
func delayWords(delay, jitter time.Duration) string {
	if delay <= 0 && jitter <= 0 {
		return ""
	}
	d := "delay " + delay.String()
	if jitter > 0 {
		d += " ± " + jitter.String()
	}
	return d
}

// A clientRow is one client's line of a server's table: its name and its counts.
type clientRow struct {
	name   string
	counts []int
}

// clientName names a client in a server's table; the zero address stands for the clients that
// came after the table was full.
func clientName[A interface {
	IsValid() bool
	String() string
}](a A) string {
	if !a.IsValid() {
		return "(other clients)"
	}
	return a.String()
}

// writeClientTable prints a server's table on Ctrl-C: a row per client, then the total, each
// column as wide as its heading (at least 8).
func writeClientTable(w io.Writer, proto string, cols []string, rows []clientRow) {
	width := len("total")
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	line := func(name string, cells []string) {
		var b strings.Builder
		fmt.Fprintf(&b, "%-*s", width, name)
		for i, c := range cells {
			fmt.Fprintf(&b, "  %*s", max(len(cols[i]), 8), c)
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintf(w, "\n--- %s server statistics ---\n", proto)
	line("client", cols)
	total := make([]int, len(cols))
	for _, r := range rows {
		cells := make([]string, len(r.counts))
		for i, n := range r.counts {
			cells[i] = strconv.Itoa(n)
			total[i] += n
		}
		line(r.name, cells)
	}
	cells := make([]string, len(total))
	for i, n := range total {
		cells[i] = strconv.Itoa(n)
	}
	line("total", cells)
}

// countsFlag is the servers' --counts-every: how often a quiet server says how it goes.
func countsFlag() cli.Flag {
	return durationFlag("counts-every", "", 10*time.Second, "with --quiet, print the counts so far every `DURATION` when they changed (0: never)")
}

// quietCounts prints, every d until stop is called, the line counts gives when it differs from
// the last one printed: with --quiet a server would otherwise say nothing until Ctrl-C. Each
// line starts with the time, as the per-message log's do.
func quietCounts(ctx context.Context, d time.Duration, print func(string), counts func() string) (stop func()) {
	if d <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		last := counts()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if l := counts(); l != last {
					print(now.Format("15:04:05.000000") + " " + l)
					last = l
				}
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// plural is "1 client", "2 clients".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
