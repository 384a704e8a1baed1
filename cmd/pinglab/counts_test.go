package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestQuietServerCounts runs both servers with --quiet and --counts-every 100ms, pings each,
// and reads the counts lines they print while they run (and none while nothing changes).
func TestQuietServerCounts(t *testing.T) {
	for _, tt := range []struct {
		proto, want string
	}{
		{"udp", `(?m)^\d\d:\d\d:\d\d\.\d{6} 3 received, 3 echoed, 0 dropped, 0 errors from 1 client$`},
		{"tcp", `(?m)^\d\d:\d\d:\d\d\.\d{6} 1 connections, 0 refused, 3 received, 3 echoed, 0 dropped from 1 client host$`},
	} {
		t.Run(tt.proto, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			var out lockedBuffer
			var wg sync.WaitGroup
			wg.Go(func() {
				run(ctx, []string{"pinglab", tt.proto, "server", "--listen", "127.0.0.1:0", "-q", "--counts-every", "100ms"}, &out, &out)
			})
			defer wg.Wait()
			defer cancel()
			addr := ""
			for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if m := regexp.MustCompile(` on (\S+): `).FindStringSubmatch(out.String()); m != nil {
					addr = m[1]
				}
			}
			if addr == "" {
				t.Fatalf("server did not start: %q", out.String())
			}
			if _, stderr, code := runCmd(t, t.Context(), tt.proto, "ping", addr, "-c", "3", "-i", "0.05", "-q"); code != 0 {
				t.Fatalf("ping: exit %d: %s", code, stderr)
			}
			re := regexp.MustCompile(tt.want)
			for deadline := time.Now().Add(10 * time.Second); !re.MatchString(out.String()) && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond) // three more ticks with nothing new
			got := out.String()
			if n := len(re.FindAllString(got, -1)); n != 1 {
				t.Errorf("%d lines matching %s, want 1 (printed only when the counts change):\n%s", n, tt.want, got)
			}
			if strings.Contains(got, "received 40 bytes") {
				t.Errorf("a quiet server logged a message:\n%s", got)
			}
		})
	}
}
