package abuse

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
)

// lossyCmd runs pinglab lossy with args to the end.
func lossyCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(pinglab, append([]string{"lossy"}, args...)...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// startHolder starts pinglab lossy with args (a --for scenario) and waits for its "Holding" line.
func startHolder(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(pinglab, append([]string{"lossy"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("holder ended before holding: %v", err)
		}
		if strings.HasPrefix(line, "Holding it for") {
			return cmd, r
		}
	}
}

// TestLossySequences runs the sequences that lost a scenario: a netem apply that fails after
// a drop, a --for holder whose scenario a newer one replaced, a holder SIGKILLed.
func TestLossySequences(t *testing.T) {
	ns := fmt.Sprintf("pinglab-abuse-lossy-%d", os.Getpid())
	testutil.NewNetns(t, ns)
	show := func() string {
		out, code := lossyCmd(t, "show", "--netns", ns)
		if code != 0 {
			t.Fatalf("lossy show: exit %d: %s", code, out)
		}
		return out
	}

	if out, code := lossyCmd(t, "drop", "--prob", "7%", "--netns", ns); code != 0 {
		t.Fatalf("lossy drop: exit %d: %s", code, out)
	}
	if out, code := lossyCmd(t, "netem", "--loss", "20%", "--dev", "nonexistent", "--netns", ns); code != 2 {
		t.Errorf("lossy netem on a missing interface: exit %d, want 2: %s", code, out)
	}
	if got := show(); !strings.HasPrefix(got, "drops 7% of packets coming in") {
		t.Errorf("after a failed netem, show says:\n%s\nwant the 7%% drop", got)
	}

	holder, out := startHolder(t, "drop", "--prob", "5%", "--for", "2s", "--netns", ns)
	if got := show(); !strings.Contains(got, "drops 5% of packets") || !strings.Contains(got, "held by pid ") {
		t.Errorf("while held, show says:\n%s\nwant the 5%% drop and its holder", got)
	}
	if o, code := lossyCmd(t, "reject", "--with", "host-unreachable", "--netns", ns); code != 0 {
		t.Fatalf("lossy reject: exit %d: %s", code, o)
	}
	rest, _ := out.ReadString(0)
	if err := holder.Wait(); err != nil {
		t.Errorf("holder: %v", err)
	}
	if !strings.Contains(rest, "a newer scenario replaced it; left in place.") || strings.Contains(rest, "removed") {
		t.Errorf("holder at its end said %q, want that it left the newer scenario", rest)
	}
	if got := show(); !strings.HasPrefix(got, "answers packets coming in with ICMP Destination Host Unreachable") {
		t.Errorf("after the first holder's end, show says:\n%s\nwant the reject", got)
	}

	killed, _ := startHolder(t, "drop", "--prob", "9%", "--for", "60s", "--netns", ns)
	_ = killed.Process.Kill()
	_ = killed.Wait()
	time.Sleep(50 * time.Millisecond)
	if got := show(); !strings.Contains(got, "drops 9% of packets") || !strings.Contains(got, "is gone: it stays until pinglab lossy clear") {
		t.Errorf("after its holder was SIGKILLed, show says:\n%s\nwant the 9%% drop and that its holder is gone", got)
	}
	if out, code := lossyCmd(t, "clear", "--netns", ns); code != 0 {
		t.Errorf("lossy clear: exit %d: %s", code, out)
	}
}
