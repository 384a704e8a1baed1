package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/testutil"
	"github.com/pinglab/pinglab/lossy"
	"github.com/pinglab/pinglab/udpping"
)

// TestWroteFiles checks that every file written on request is announced, on stderr, once:
// --csv and --plot after a run, plot -o after a figure.
func TestWroteFiles(t *testing.T) {
	dir := t.TempDir()
	csv, png, cmp2 := filepath.Join(dir, "run.csv"), filepath.Join(dir, "run.png"), filepath.Join(dir, "cmp.svg")
	// Port 9 on loopback: no server, so the run is quick and has errors, not replies.
	_, stderr, _ := runCmd(t, t.Context(), "udp", "ping", "127.0.0.1:9", "-c", "2", "-i", "0.05", "-W", "0.2", "--csv", csv, "--plot", png)
	if diff := cmp.Diff("wrote "+csv+"\nwrote "+png+"\n", stderr); diff != "" {
		t.Errorf("udp ping --csv --plot: stderr (-want +got):\n%s", diff)
	}
	// A run with replies, for plot -o.
	srv := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"})
	runCmd(t, t.Context(), "udp", "ping", srv.Addr().String(), "-c", "3", "-i", "0.05", "--csv", csv)
	stdout, stderr, code := runCmd(t, t.Context(), "plot", csv, "-o", cmp2)
	if code != 0 || stdout != "" || stderr != "wrote "+cmp2+"\n" {
		t.Errorf("plot -o: exit %d, stdout %q, stderr %q; want exit 0 and only %q", code, stdout, stderr, "wrote "+cmp2)
	}
	for _, f := range []string{csv, png, cmp2} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestLabExecRunsItself runs "pinglab lab exec client -- pinglab --version" with no pinglab on
// the PATH: lab exec must run its own binary for "pinglab".
func TestLabExecRunsItself(t *testing.T) {
	testutil.RequireRoot(t)
	prefix := fmt.Sprintf("plx%d-", os.Getpid())
	if _, err := lossy.LabUp(t.Context(), 2, lossy.WithPrefix(prefix)); err != nil {
		testutil.SkipOrFail(t, "lab up: %v", err)
	}
	t.Cleanup(func() { _ = lossy.LabDown(t.Context(), lossy.WithPrefix(prefix)) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := "/usr/sbin:/usr/bin:/sbin:/bin"
	cmd := exec.CommandContext(t.Context(), self, "lab", "exec", "client", "--", "pinglab", "--version")
	cmd.Env = []string{"PATH=" + path, asPinglabEnv + "=1", labPrefixEnv + "=" + prefix}
	for _, d := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(d, "pinglab")); err == nil {
			t.Skipf("%s/pinglab exists: the test needs a PATH without pinglab", d)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !strings.HasPrefix(stdout.String(), "pinglab version ") {
		t.Errorf("lab exec client -- pinglab --version: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}
