package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
)

// TestLossyForCountdown runs "lossy drop --for 2500ms" in a namespace of its own with stderr
// standing for a terminal: the countdown line counts down and is erased at the end.
func TestLossyForCountdown(t *testing.T) {
	testutil.RequireRoot(t)
	ns := fmt.Sprintf("plcd%d", os.Getpid())
	testutil.NewNetns(t, ns)
	old := onTerminal
	onTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { onTerminal = old })
	start := time.Now()
	stdout, stderr, code := runCmd(t, t.Context(), "lossy", "drop", "--netns", ns, "--prob", "20%", "--for", "2500ms")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	if d := time.Since(start); d < 2500*time.Millisecond {
		t.Errorf("held for %v, want 2.5s", d)
	}
	for _, want := range []string{"3s left before it is removed", "2s left", "1s left"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	if !strings.HasSuffix(stderr, "\r\x1b[K") {
		t.Errorf("stderr %q does not end by erasing the countdown", stderr)
	}
	if !strings.Contains(stdout, "removed.") {
		t.Errorf("stdout %q does not say the scenario was removed", stdout)
	}
}

// TestCountdownNotOnTerminal: on a pipe or a file the countdown writes nothing.
func TestCountdownNotOnTerminal(t *testing.T) {
	var b strings.Builder
	stop := countdown(&b, time.Now().Add(time.Second), 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	stop()
	if b.Len() != 0 {
		t.Errorf("countdown wrote %q to a non-terminal", b.String())
	}
}
