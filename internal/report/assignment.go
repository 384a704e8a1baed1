package report

import (
	"bytes"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// assignment prints the handout client's lines. Its RTTs are the measured ones to the
// nanosecond (the handout prints Python floats), and its maximum, minimum and average are the
// Summary's figures over the same values (ReplyMax, ReplyMin, ReplyAvg), so that they agree
// with the lines above them.
type assignment struct {
	out
	h Header
}

func (a *assignment) Start(h Header) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.h = h // the handout's client prints no header
}

func (a *assignment) Event(ev probe.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq := strconv.Itoa(ev.Seq)
	switch ev.Type {
	case probe.EventReply:
		a.printf("Response received is: %s\n", a.replyText(ev))
		a.printf("RTT (in milliseconds) of packet %s is %s\n", seq, msec6(ev.RTT))
	case probe.EventDuplicate:
		a.printf("Duplicate response received for packet %s, RTT (in milliseconds) is %s\n", seq, msec6(ev.RTT))
	case probe.EventLate:
		a.printf("Late response received for packet %s, RTT (in milliseconds) is %s; it was already lost\n",
			seq, msec6(ev.RTT))
	case probe.EventTimeout, probe.EventLost:
		a.printf("Packet %s is lost\n", seq)
	case probe.EventError:
		if ev.Err != nil && ev.Err.Type != icmperr.NoICMP {
			a.printf("ICMP %s error received for packet %s\n", errWords(ev), seq)
		} else {
			a.printf("Error received for packet %s: %s\n", seq, errWords(ev))
		}
	}
}

// replyText is the reply as the handout prints it, its trailing newline trimmed; a reply that
// is not printable text (an ICMP payload) is described instead.
func (a *assignment) replyText(ev probe.Event) string {
	data := bytes.TrimRight(ev.Data, "\r\n")
	if len(data) > 0 && printable(data) {
		return string(data)
	}
	from := ev.From
	if from == "" {
		from = a.h.Addr
	}
	return strconv.Itoa(replyBytes(ev)) + " bytes from " + from
}

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\t' {
			return false
		}
	}
	return true
}

func (a *assignment) Status(s stats.Summary) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fprintf(a.status, "%s\n", statusLine(s))
}

func (a *assignment) Finish(s stats.Summary, _ probe.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.Received > 0 {
		a.printf("Maximum RTT (in milliseconds) is %s\n", msec6(s.ReplyMax))
		a.printf("Minimum RTT (in milliseconds) is %s\n", msec6(s.ReplyMin))
		a.printf("Average RTT (in milliseconds) is %s\n", msec6(s.ReplyAvg))
	} else {
		a.printf("No response received: no RTT to report\n")
	}
	a.printf("Packet loss rate: %.3f%%\n", s.Loss)
	for _, l := range oneWayLines(a.h, s) {
		a.printf("%s\n", l)
	}
}
