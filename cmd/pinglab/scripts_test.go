package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCompareScriptLeavesTreeAlone runs scripts/compare.sh as the README does (without the lab)
// from a folder of its own: it must write nothing there and say where its figure went.
func TestCompareScriptLeavesTreeAlone(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../../scripts/compare.sh")
	if err != nil {
		t.Fatal(err)
	}
	cwd := t.TempDir()
	tmp := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", script, "-c", "5", "-i", "0.01", "--no-lab")
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), asPinglabEnv+"=1", "PINGLAB="+self, "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("compare.sh: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(cwd); len(left) != 0 {
		t.Errorf("compare.sh left %d files in the folder it ran in: %v", len(left), left)
	}
	m := regexp.MustCompile(`(?m)^wrote (\S+/compare\.png),`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("compare.sh does not say where the figure went:\n%s", out)
	}
	if fi, err := os.Stat(string(m[1])); err != nil || fi.Size() == 0 || !strings.HasPrefix(string(m[1]), tmp) {
		t.Errorf("figure %s: %v; want a figure in a new temporary folder under %s", m[1], err, tmp)
	}
}

// TestLabWalkthroughNeedsRoot runs scripts/lab-walkthrough.sh without CAP_NET_ADMIN (as uid
// 65534 when the test is root): one line saying it needs root, exit 2, nothing else done.
func TestLabWalkthroughNeedsRoot(t *testing.T) {
	// A copy where uid 65534 may read it, wherever the checkout is.
	body, err := os.ReadFile("../../scripts/lab-walkthrough.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pinglab-walkthrough-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	script := filepath.Join(dir, "lab-walkthrough.sh")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, body, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "sh", script)
	cmd.Dir = "/" // somewhere uid 65534 may be
	if os.Geteuid() == 0 {
		asNobody(t, cmd)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 ||
		!strings.Contains(stderr.String(), "needs root (CAP_NET_ADMIN)") {
		t.Errorf("lab-walkthrough.sh without CAP_NET_ADMIN: %v, stdout %q, stderr %q; want exit 2 and one line saying it needs root",
			err, stdout.String(), stderr.String())
	}
}
