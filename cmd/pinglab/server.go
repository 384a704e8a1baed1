package main

import (
	"strconv"
	"time"

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
