package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pinglab/pinglab/udpping"
)

// TestLoadModes runs the clients' load modes against a UDP server on loopback:
// --window keeps N in flight without -i, --flood prints ping -f's dots, each answered one
// erased, so that with no loss none stays.
func TestLoadModes(t *testing.T) {
	s := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"})
	target := hostPort("127.0.0.1", s.Addr().Port())
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"window", []string{"--window", "8", "-c", "500", "-q"}},
		{"flood", []string{"--flood", "-c", "300"}},
		{"flood-window", []string{"-f", "--window", "4", "-c", "300", "-q"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"udp", "ping", target}, tt.args...)
			out, errOut, code := runCmd(t, context.Background(), args...)
			if code != 0 {
				t.Fatalf("exit %d, want 0; stderr: %s\n%s", code, errOut, out)
			}
			want := 500
			if tt.name != "window" {
				want = 300
			}
			if tx, rx, _, _ := summary(t, out); tx != want || rx != want {
				t.Errorf("%d transmitted, %d received; want %d of %d:\n%s", tx, rx, want, want, out)
			}
			if strings.Contains(out, "udp_seq=") {
				t.Errorf("a load mode printed per-probe lines:\n%s", out)
			}
			if tt.name == "flood" {
				marks, _, _ := strings.Cut(out[strings.Index(out, "\n")+1:], "\n")
				if strings.Count(marks, ".") != 300 || strings.Count(marks, "\b \b") != 300 {
					t.Errorf("flood marks %q: want 300 dots, each erased", marks)
				}
			}
		})
	}
	// A negative window is a usage error naming the flag.
	_, errOut, code := runCmd(t, context.Background(), "udp", "ping", target, "--window", "-1")
	if code != 2 || !strings.Contains(errOut, "--window") {
		t.Errorf("--window -1: exit %d, stderr %q; want 2 and a message naming --window", code, errOut)
	}
}
