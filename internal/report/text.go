package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// text prints what iputils ping prints, line for line, with pinglab's additions marked in the
// README: "Request timeout" and "Request lost" lines for UDP and TCP, " (LATE!)" on a reply that
// came after its probe's timeout (it is not counted as received), "+L late" in the summary, and,
// with Options.Percentiles, a last line with percentiles and jitter.
type text struct {
	out
	opts Options
	h    Header
	// A flood's marks wait in dots until floodFlush passed since the last write, so that a
	// flood of 100k probes a second costs a write per batch, not two per probe; what stays on
	// the terminal is the same.
	dots      []byte
	lastFlush time.Time
	// lastSent and answered are -O's: the latest probe sent and whether anything came back
	// for it.
	lastSent int
	answered bool
}

// floodFlush is how long a flood's marks may wait before they are written: less than a
// terminal's frame, and ping -f's 10 ms between probes when none is answered.
const floodFlush = 10 * time.Millisecond

func (t *text) Start(h Header) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.h = h
	if h.Line != "" {
		t.printf("%s\n", h.Line)
		return
	}
	t.printf("PING %s (%s) %d bytes of data over %s.\n", h.Target, h.Addr, h.Size, strings.ToUpper(h.Proto))
}

func (t *text) Event(ev probe.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.opts.Quiet {
		return
	}
	if t.opts.Flood {
		t.flood(ev)
		return
	}
	seq := seqField(t.h.Proto) + strconv.Itoa(ev.Seq)
	switch ev.Type {
	case probe.EventSent:
		// iputils -O: said when the next probe leaves, of the one before it.
		if t.opts.Outstanding && t.h.Proto == "icmp" && t.lastSent > 0 && !t.answered {
			t.line(ev, "no answer yet for "+seqField(t.h.Proto)+strconv.Itoa(t.lastSent))
		}
		t.lastSent, t.answered = ev.Seq, false
	case probe.EventReply, probe.EventDuplicate, probe.EventLate:
		if ev.Seq == t.lastSent {
			t.answered = true
		}
		from := ev.From
		if from == "" {
			from = t.h.Addr
		}
		line := strconv.Itoa(replyBytes(ev)) + " bytes from " + from + ": " + seq
		if ev.TTL > 0 {
			line += " ttl=" + strconv.Itoa(ev.TTL)
		}
		if !t.h.Untimed {
			if t.opts.Unrounded {
				line += " time=" + msec(ev.RTT) + " ms"
			} else {
				line += " time=" + pingTime(ev.RTT) + " ms"
			}
		}
		if ev.Connect > 0 {
			line += " connect=" + pingTime(ev.Connect) + " ms"
		}
		switch ev.Type {
		case probe.EventDuplicate:
			line += " (DUP!)"
		case probe.EventLate:
			line += " (LATE!)"
		}
		if t.opts.Audible {
			t.printf("\a")
		}
		t.line(ev, line)
	case probe.EventTimeout:
		if t.h.Proto != "icmp" {
			t.line(ev, "Request timeout for "+seq)
		}
	case probe.EventLost:
		line := "Request lost for " + seq
		if ev.Reason != "" {
			line += ": " + ev.Reason
		}
		t.line(ev, line)
	case probe.EventError:
		if ev.Seq == t.lastSent {
			t.answered = true
		}
		t.line(ev, "From "+errFrom(ev, t.h)+" "+seq+" "+errWords(ev))
	}
}

// flood prints ping -f's marks as iputils does: "." when a probe leaves, "\b \b" (erasing it)
// when its reply comes, "\bE" when an error does.
func (t *text) flood(ev probe.Event) {
	switch ev.Type {
	case probe.EventSent:
		t.dots = append(t.dots, '.')
	case probe.EventReply:
		t.dots = append(t.dots, '\b', ' ', '\b') // as iputils: the dot is erased, not just backed over
	case probe.EventError:
		t.dots = append(t.dots, '\b', 'E')
	default:
		return
	}
	if now := time.Now(); now.Sub(t.lastFlush) >= floodFlush || len(t.dots) >= 4096 {
		t.lastFlush = now
		t.flushDots()
	}
}

// flushDots writes the flood's marks that wait.
func (t *text) flushDots() {
	if len(t.dots) > 0 && t.err == nil && t.w != nil {
		if _, err := t.w.Write(t.dots); err != nil {
			t.err = fmt.Errorf("report: write: %w", err)
		}
		t.dots = t.dots[:0]
	}
}

// line prints one per-probe line, after -D's timestamp of the moment it happened.
func (t *text) line(ev probe.Event, s string) {
	if t.opts.Timestamps {
		at := ev.At
		if at.IsZero() {
			at = ev.Sent
		}
		t.printf("[%s] ", unixMicros(at))
	}
	t.printf("%s\n", s)
}

// seqField is "udp_seq=", "icmp_seq=" ...
func seqField(proto string) string {
	if proto == "" {
		return "seq="
	}
	return strings.ToLower(proto) + "_seq="
}

func (t *text) Status(s stats.Summary) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flushDots()
	t.fprintf(t.status, "%s\n", statusLine(s))
}

// statusLine is iputils' SIGQUIT line: "2/3 packets, 33% loss, min/avg/ewma/max = ... ms",
// its loss an integer percentage, truncated.
func statusLine(s stats.Summary) string {
	loss := 0
	if s.Transmitted > 0 {
		loss = (s.Transmitted - s.Received) * 100 / s.Transmitted
	}
	line := strconv.Itoa(s.Received) + "/" + strconv.Itoa(s.Transmitted) + " packets, " +
		strconv.Itoa(loss) + "% loss"
	if s.Received > 0 {
		line += ", min/avg/ewma/max = " + msec(s.Min) + "/" + msec(s.Avg) + "/" + msec(s.EWMA) + "/" +
			msec(s.Max) + " ms"
	}
	return line
}

func (t *text) Finish(s stats.Summary, r probe.Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flushDots()
	name := "ping statistics"
	if t.h.Proto != "icmp" && t.h.Proto != "" {
		name = strings.ToLower(t.h.Proto) + " " + name
	}
	t.printf("\n--- %s %s ---\n", t.h.Target, name)
	t.printf("%d packets transmitted, %d received", s.Transmitted, s.Received)
	if s.Duplicates > 0 {
		t.printf(", +%d duplicates", s.Duplicates)
	}
	if s.Errors > 0 {
		t.printf(", +%d errors", s.Errors)
	}
	if s.Late > 0 {
		t.printf(", +%d late", s.Late)
	}
	if s.Transmitted > 0 {
		t.printf(", %s%% packet loss, time %dms", lossG(s.Loss), runTime(r))
	}
	t.printf("\n")
	if s.Received == 0 || t.h.Untimed {
		t.oneWay(s)
		// iputils ends its summary with this newline whether or not an rtt line came before it.
		t.printf("\n")
		return
	}
	t.printf("rtt min/avg/max/mdev = %s/%s/%s/%s ms\n", msec(s.Min), msec(s.Avg), msec(s.Max), msec(s.Mdev))
	if t.opts.Percentiles {
		t.printf("rtt p50/p90/p99 = %s/%s/%s ms, jitter = %s ms\n", msec(s.P50), msec(s.P90), msec(s.P99), msec(s.Jitter))
	}
	t.oneWay(s)
}

// oneWay prints the lines of pinglab's one-way extension, after iputils' own.
func (t *text) oneWay(s stats.Summary) {
	for _, l := range oneWayLines(t.h, s) {
		t.printf("%s\n", l)
	}
}

// lossG prints the loss as iputils does, C's "%g" of a float: six significant digits, trailing
// zeros dropped (33.3333, 20, 0.5).
func lossG(loss float64) string {
	return strconv.FormatFloat(float64(float32(loss)), 'g', 6, 64)
}
