package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// tableRun is a TableRun whose statistics come from the engine's events, as a run's do.
func tableRun(label, proto, target string, evs ...probe.Event) TableRun {
	st := stats.New()
	for _, ev := range evs {
		st.Add(ev)
	}
	return TableRun{Label: label, Proto: proto, Target: target, Summary: st.Summary()}
}

func TestTable(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	ev := func(typ probe.EventType, seq int, rtt time.Duration) probe.Event {
		sent := t0.Add(time.Duration(seq-1) * 200 * time.Millisecond)
		return probe.Event{Type: typ, Seq: seq, Sent: sent, At: sent.Add(rtt), RTT: rtt}
	}
	// Each kind of outcome; probe 7 was sent and had none when the run ended.
	var synthetic []probe.Event
	for seq := 1; seq <= 7; seq++ {
		synthetic = append(synthetic, ev(probe.EventSent, seq, 0))
	}
	synthetic = append(synthetic,
		ev(probe.EventReply, 1, 1200*time.Microsecond),
		ev(probe.EventReply, 2, 800*time.Microsecond),
		ev(probe.EventTimeout, 3, 0),
		ev(probe.EventDuplicate, 2, 900*time.Microsecond),
		ev(probe.EventError, 4, 0),
		ev(probe.EventLate, 3, 1500*time.Millisecond),
		ev(probe.EventReply, 5, 2*time.Millisecond),
		ev(probe.EventLost, 6, 0),
	)
	runs := []TableRun{
		tableRun("synthetic", "udp", "127.0.0.1:12000", synthetic...),
		tableRun("all lost", "tcp", "[::1]:12000", ev(probe.EventSent, 1, 0), ev(probe.EventTimeout, 1, 0)),
	}
	for _, format := range TableFormats {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteTable(&buf, format, runs); err != nil {
				t.Fatal(err)
			}
			golden(t, "table."+format, buf.Bytes())
		})
	}
	if err := WriteTable(&bytes.Buffer{}, "html", runs[:1]); err == nil || !strings.Contains(err.Error(), `"html"`) {
		t.Errorf("WriteTable html: %v, want an error naming it", err)
	}
}
