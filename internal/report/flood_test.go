package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

func TestFloodDots(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		// Probe 2 is lost and probe 3 errs: one dot and one E stay, as iputils ping -f leaves them.
		{"flood", Options{Flood: true}, "PING x (127.0.0.1) 56 bytes of data over UDP.\n.\b \b..\bE.\b \b"},
		{"quiet", Options{Flood: true, Quiet: true}, "PING x (127.0.0.1) 56 bytes of data over UDP.\n"},
		// Without -f, a line per probe as ever.
		{"lines", Options{}, "PING x (127.0.0.1) 56 bytes of data over UDP.\n64 bytes from 127.0.0.1: udp_seq=1 time=0.000 ms\n" +
			"From 127.0.0.1 udp_seq=3 Local error\nRequest timeout for udp_seq=2\n64 bytes from 127.0.0.1: udp_seq=4 time=0.000 ms\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			r, err := New("text", &out, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r.Start(Header{Proto: "udp", Target: "x", Addr: "127.0.0.1", Size: 56})
			for _, ev := range []probe.Event{
				{Type: probe.EventSent, Seq: 1},
				{Type: probe.EventReply, Seq: 1, Bytes: 64},
				{Type: probe.EventSent, Seq: 2},
				{Type: probe.EventSent, Seq: 3},
				{Type: probe.EventError, Seq: 3, Err: &icmperr.Error{Type: icmperr.NoICMP, Reason: "Local error"}},
				{Type: probe.EventTimeout, Seq: 2},
				{Type: probe.EventSent, Seq: 4},
				{Type: probe.EventReply, Seq: 4, Bytes: 64},
			} {
				r.Event(ev)
			}
			// The marks may wait (a write per batch): Finish writes what waits first.
			r.Finish(stats.Summary{}, probe.Result{})
			got, _, _ := strings.Cut(out.String(), "\n---")
			if got != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
		})
	}
}
