package report

import (
	"bytes"
	"testing"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
)

func TestFloodDots(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		// Probe 2 is lost and probe 3 errs: one dot and one E stay, as iputils ping -f leaves them.
		{"flood", Options{Flood: true}, "PING x (127.0.0.1) 56 bytes of data over UDP.\n.\b..\bE.\b"},
		{"quiet", Options{Flood: true, Quiet: true}, "PING x (127.0.0.1) 56 bytes of data over UDP.\n"},
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
				{Type: probe.EventReply, Seq: 1},
				{Type: probe.EventSent, Seq: 2},
				{Type: probe.EventSent, Seq: 3},
				{Type: probe.EventError, Seq: 3, Err: &icmperr.Error{Type: icmperr.NoICMP, Reason: "Local error"}},
				{Type: probe.EventTimeout, Seq: 2},
				{Type: probe.EventSent, Seq: 4},
				{Type: probe.EventReply, Seq: 4},
			} {
				r.Event(ev)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
		})
	}
}
