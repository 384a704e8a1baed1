package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
	"github.com/pinglab/pinglab/lossy"
)

// lossyChildEnv makes a re-run test binary run pinglab with these arguments (split on "|", with
// PINGLAB_LOSSY_TEST_PREFIX as the lab prefix) and exit with its code.
const (
	lossyChildEnv  = "PINGLAB_LOSSY_TEST_ARGS"
	lossyPrefixEnv = "PINGLAB_LOSSY_TEST_PREFIX"
)

// TestLossyChild is not a test: it is the re-run binary's entry (see lossyChildEnv).
func TestLossyChild(t *testing.T) {
	args := os.Getenv(lossyChildEnv)
	if args == "" {
		return
	}
	if p := os.Getenv(lossyPrefixEnv); p != "" {
		labPrefix = p
	}
	os.Exit(run(context.Background(), append([]string{"pinglab"}, strings.Split(args, "|")...), os.Stdout, os.Stderr))
}

func TestLossyUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"lossy", "drop"}, "--prob is required"},
		{[]string{"lossy", "drop", "--prob", "120%"}, "outside 0% to 100%"},
		{[]string{"lossy", "drop", "--prob", "20%", "--port", "70000"}, "not a port"},
		{[]string{"lossy", "drop", "--prob", "20%", "--from", "nowhere"}, "--from"},
		{[]string{"lossy", "drop", "--prob", "20%", "extra"}, "unexpected argument"},
		{[]string{"lossy", "reject"}, "with"},
		{[]string{"lossy", "netem", "--loss", "20%"}, "dev"},
		{[]string{"lossy", "netem", "--dev", "eth0", "--rate", "fast"}, "--rate"},
		{[]string{"lossy", "drop", "--prob", "20%", "--for", "soon"}, "--for"},
		{[]string{"lab", "up", "--hosts", "4"}, "want 2 or 3"},
		{[]string{"lab", "exec"}, "want a host and a command"},
		{[]string{"lab", "exec", "client"}, "want a host and a command"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := runCmd(t, t.Context(), tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, tt.want)
			}
		})
	}
}

// TestLossyRejectsBadValuesAsRoot checks errors the library finds (after the privilege check).
func TestLossyRejectsBadValuesAsRoot(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"lossy", "reject", "--with", "host-prohibited"}, "reject type must be"},
		{[]string{"lossy", "reject", "--with", "tcp-reset", "--proto", "udp"}, "tcp-reset rejects only tcp"},
		{[]string{"lossy", "drop", "--prob", "20%", "--proto", "sctp"}, "protocol must be"},
		{[]string{"lossy", "netem", "--dev", "eth0", "--reorder", "10%"}, "reorder needs a delay"},
		{[]string{"lossy", "show", "--netns", "pinglab-nosuch-ns"}, "does not exist"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := runCmd(t, t.Context(), tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, tt.want)
			}
		})
	}
}

// forNobody copies the test binary where uid 65534 may run it.
func forNobody(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "pinglab.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestLossyWithoutNetAdmin(t *testing.T) {
	testutil.RequireRoot(t)
	bin := forNobody(t)
	for _, args := range []string{"lossy|show", "lossy|drop|--prob|20%", "lossy|clear", "lab|up", "lab|status"} {
		cmd := exec.Command(bin, "-test.run=^TestLossyChild$")
		cmd.Env = []string{lossyChildEnv + "=" + args}
		asNobody(t, cmd)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		msg := strings.TrimSpace(stderr.String())
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.Contains(msg, "\n") || !strings.Contains(msg, "needs CAP_NET_ADMIN") {
			t.Errorf("%s as nobody: %v, stderr %q; want exit 2 and one line saying it needs CAP_NET_ADMIN", args, err, msg)
		}
	}
}

// testLabCmd runs "pinglab lab up" under a prefix of the test's own and "lab down" at the end.
func testLabCmd(t *testing.T, hosts int) string {
	t.Helper()
	testutil.RequireRoot(t)
	if runtime.GOOS != "linux" {
		testutil.SkipOrFail(t, "labs are Linux's")
	}
	old := labPrefix
	labPrefix = fmt.Sprintf("plc%d-", os.Getpid())
	prefix := labPrefix
	t.Cleanup(func() {
		_ = lossy.LabDown(context.Background(), lossy.WithPrefix(prefix))
		labPrefix = old
	})
	out, stderr, code := runCmd(t, t.Context(), "lab", "up", "--hosts", fmt.Sprint(hosts))
	if code != 0 || !strings.Contains(out, fmt.Sprintf("Lab up: %d hosts.", hosts)) || !strings.Contains(out, "Try next:") {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, stderr)
	}
	return prefix
}

func TestLabCommands(t *testing.T) {
	prefix := testLabCmd(t, 3)
	if _, stderr, code := runCmd(t, t.Context(), "lab", "up"); code != 2 || !strings.Contains(stderr, "lab already exists") {
		t.Errorf("second lab up: exit %d, %q", code, stderr)
	}
	out, stderr, code := runCmd(t, t.Context(), "lab", "exec", "client", "--", "cat", "/proc/sys/net/ipv4/ip_forward")
	if code != 0 || out != "0\n" {
		t.Errorf("lab exec client cat ip_forward: exit %d %q %q", code, out, stderr)
	}
	out, _, code = runCmd(t, t.Context(), "lab", "exec", "router", "--", "cat", "/proc/sys/net/ipv4/ip_forward")
	if code != 0 || out != "1\n" {
		t.Errorf("lab exec router cat ip_forward: exit %d %q", code, out)
	}
	if _, _, code = runCmd(t, t.Context(), "lab", "exec", "client", "--", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("lab exec client exit 3: exit %d", code)
	}
	if _, stderr, code = runCmd(t, t.Context(), "lossy", "drop", "--netns", prefix+"server", "--prob", "20%", "--proto", "udp", "--port", "12000"); code != 0 {
		t.Fatalf("lossy drop: exit %d %s", code, stderr)
	}
	out, _, code = runCmd(t, t.Context(), "lab", "status")
	for _, w := range []string{"router  (netns " + prefix + "router), forwarding IPv4 and IPv6", "10.77.2.2/24 fd00:77:2::2/64",
		"drops 20% of UDP packets coming in to port 12000", "numgen random mod 100 < 20"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("lab status: exit %d, lacks %q:\n%s", code, w, out)
		}
	}
	out, _, code = runCmd(t, t.Context(), "lossy", "show", "--netns", prefix+"server")
	if code != 0 || !strings.Contains(out, "The same by hand:") || !strings.Contains(out, "ip netns exec "+prefix+"server nft add rule inet pinglab input") {
		t.Errorf("lossy show: exit %d\n%s", code, out)
	}
	for i := 0; i < 2; i++ {
		if out, _, code = runCmd(t, t.Context(), "lossy", "clear", "--netns", prefix+"server"); code != 0 || !strings.Contains(out, "cleared") {
			t.Errorf("lossy clear #%d: exit %d %q", i+1, code, out)
		}
	}
	out, _, _ = runCmd(t, t.Context(), "lossy", "show", "--netns", prefix+"server")
	if out != "nothing: packets pass untouched\n" {
		t.Errorf("show after clear: %q", out)
	}
	_, stderr, code = runCmd(t, t.Context(), "lossy", "netem", "--netns", prefix+"server", "--dev", "eth0", "--loss", "20%")
	switch {
	case code == 0:
		t.Logf("this kernel has netem")
	case code != 2 || !strings.Contains(stderr, "netem is missing in this kernel") || !strings.Contains(stderr, "pinglab lossy drop"):
		t.Errorf("lossy netem: exit %d %q", code, stderr)
	}
	for i := 0; i < 2; i++ {
		if out, _, code = runCmd(t, t.Context(), "lab", "down"); code != 0 || out != "Lab down.\n" {
			t.Errorf("lab down #%d: exit %d %q", i+1, code, out)
		}
	}
	if _, stderr, code = runCmd(t, t.Context(), "lab", "status"); code != 2 || !strings.Contains(stderr, "no lab is up") {
		t.Errorf("lab status after down: exit %d %q", code, stderr)
	}
}

func TestLossyFor(t *testing.T) {
	prefix := testLabCmd(t, 2)
	ns := prefix + "server"
	out, stderr, code := runCmd(t, t.Context(), "lossy", "reject", "--netns", ns, "--with", "port-unreachable", "--for", "50ms")
	if code != 0 || !strings.Contains(out, "Holding it for 50ms") || !strings.HasSuffix(out, ns+": removed.\n") {
		t.Errorf("reject --for 50ms: exit %d\n%s%s", code, out, stderr)
	}
	if s, err := lossy.Show(t.Context(), lossy.Options{Netns: ns}); err != nil || !s.Empty() {
		t.Errorf("after --for: %+v %v, want nothing", s, err)
	}
}

// lossyOutput is a bytes.Buffer a child's output copier and the test may use at once.
type lossyOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lossyOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lossyOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLossySIGTERM runs pinglab lossy drop --for 1h in a child and stops it with SIGTERM: the
// scenario must be gone. A SIGKILLed one leaves its state, which the next apply replaces.
func TestLossySIGTERM(t *testing.T) {
	prefix := testLabCmd(t, 2)
	ns := prefix + "server"
	o := lossy.Options{Netns: ns}
	start := func(args string) (*exec.Cmd, *lossyOutput) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLossyChild$")
		cmd.Env = append(os.Environ(), lossyChildEnv+"="+args)
		out := &lossyOutput{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Bounded wait for the scenario to be in place: 500 polls of 10ms.
		for i := 0; i < 500; i++ {
			if s, err := lossy.Show(t.Context(), o); err == nil && s.Drop != nil && strings.Contains(out.String(), "Holding") {
				return cmd, out
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the child never applied its drop:\n%s", out.String())
		return nil, nil
	}
	args := "lossy|drop|--netns|" + ns + "|--prob|20%|--for|1h"
	cmd, out := start(args)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v\n%s", err, out)
	}
	if !strings.HasSuffix(out.String(), "removed.\n") {
		t.Errorf("after SIGTERM the child said:\n%s", out)
	}
	if s, err := lossy.Show(t.Context(), o); err != nil || !s.Empty() {
		t.Errorf("after SIGTERM: %+v %v, want nothing left", s, err)
	}

	cmd, _ = start(args)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if s, err := lossy.Show(t.Context(), o); err != nil || s.Drop == nil {
		t.Fatalf("after SIGKILL: %+v %v, want the drop left behind", s, err)
	}
	if _, stderr, code := runCmd(t, t.Context(), "lossy", "reject", "--netns", ns, "--with", "host-unreachable"); code != 0 {
		t.Fatalf("reject: %d %s", code, stderr)
	}
	if s, err := lossy.Show(t.Context(), o); err != nil || s.Drop != nil || s.Reject == nil {
		t.Errorf("the apply after a SIGKILL: %+v %v, want only the reject", s, err)
	}
}
