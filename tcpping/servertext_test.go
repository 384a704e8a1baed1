package tcpping

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/probe"
)

func TestServerText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"server busy (2 connections)", "server busy (2 connections)"},
		{"\r\x1b]0;PWNED\x07", `"\r\x1b]0;PWNED\a"`},
		{"caf\xc3\xa9", `"café"`},
		{"bad \xff utf-8", `"bad \xff utf-8"`},
		{"tab\there", `"tab\there"`},
		{strings.Repeat("a", 300), strings.Repeat("a", maxServerText) + " ..."},
	} {
		if diff := cmp.Diff(tt.want, serverText([]byte(tt.in))); diff != "" {
			t.Errorf("serverText(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestServerErrorEscaped checks that an ERROR line with a terminal's escape sequences reaches
// the probe's Reason escaped.
func TestServerErrorEscaped(t *testing.T) {
	c := &Client{rx: make(chan probe.Packet, 1), from: "127.0.0.1:12000", life: context.Background()}
	c.line(&stream{outstanding: []int{1}}, []byte("ERROR \x1b]0;PWNED\x07\xff"), time.Now())
	p := <-c.rx
	if want := `Server: "\x1b]0;PWNED\a\xff"`; p.Err == nil || p.Err.Reason != want {
		t.Fatalf("Err = %v, want Reason %s", p.Err, want)
	}
}
