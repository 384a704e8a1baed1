package abuse

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of TestReportDevZero.
const (
	devZeroTime  = 2 * time.Second
	devZeroRSSMB = 64
)

// TestReportDevZero reads /dev/zero (an endless line) with report and plot: each must fail
// within devZeroTime, under devZeroRSSMB, with one line naming the file and the line.
func TestReportDevZero(t *testing.T) {
	for _, args := range [][]string{
		{"report", "/dev/zero"},
		{"plot", "-o", t.TempDir() + "/z.svg", "/dev/zero"},
	} {
		t.Run(args[0], func(t *testing.T) {
			cmd := exec.Command(pinglab, args...)
			var out, errOut strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errOut
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
			err := cmd.Wait()
			timer.Stop()
			took := time.Since(start)
			rss := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
			t.Logf("pinglab %s: %v, peak RSS %.1f MB, exit %v, stderr %q", strings.Join(args, " "), took.Round(time.Millisecond), rss, err, errOut.String())
			if took > devZeroTime {
				t.Errorf("took %v, want under %v", took, devZeroTime)
			}
			if rss > devZeroRSSMB {
				t.Errorf("peak RSS %.1f MB, want under %d MB", rss, devZeroRSSMB)
			}
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if e := errOut.String(); strings.Count(e, "\n") != 1 || !strings.Contains(e, "/dev/zero:1: line too long") {
				t.Errorf("stderr %q, want one line naming /dev/zero:1 and the long line", e)
			}
		})
	}
}
