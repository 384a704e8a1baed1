package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// heartbeatChildEnv makes the test binary run "pinglab" with the |-separated arguments it holds:
// a heartbeat client in a process of its own, which the test can SIGKILL.
const heartbeatChildEnv = "PINGLAB_TEST_HEARTBEAT_CHILD"

func TestHeartbeatChild(t *testing.T) {
	args := os.Getenv(heartbeatChildEnv)
	if args == "" {
		return
	}
	os.Exit(run(context.Background(), append([]string{"pinglab"}, strings.Split(args, "|")...), os.Stdout, os.Stderr))
}

// waitFor waits until out matches re, and returns the match.
func waitFor(t *testing.T, out *lockedBuffer, re *regexp.Regexp, within time.Duration) []string {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
	}
	t.Fatalf("no %q within %v in:\n%s", re, within, out.String())
	return nil
}

// TestHeartbeatKilledClient runs "pinglab udp server", a heartbeat client in a process of its
// own, kills that client with SIGKILL (it cannot say goodbye), and checks that the server says
// it stopped after the timeout, then that it came back when a new client starts on that host.
func TestHeartbeatKilledClient(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"pinglab", "udp", "server", "--listen", addr, "--heartbeat-timeout", "1s"}, &out, &errOut)
	}()
	waitFor(t, &out, regexp.MustCompile(`UDP echo server on `), 10*time.Second)

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHeartbeatChild$")
		cmd.Env = append(os.Environ(), heartbeatChildEnv+"=udp|heartbeat|"+addr+"|-i|50ms")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	m := waitFor(t, &out, regexp.MustCompile(`heartbeat 5 from (127\.0\.0\.1:\d+): one-way delay -?\d+\.\d{3} ms`), 20*time.Second)
	client := m[1]
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = first.Wait()
	stopped := regexp.MustCompile(`client ` + regexp.QuoteMeta(client) + ` stopped \(no heartbeat for (1(\.\d)?) s; last was heartbeat (\d+)\)`)
	m = waitFor(t, &out, stopped, 10*time.Second)
	if since := time.Since(killed); since < 900*time.Millisecond {
		t.Errorf("reported stopped %v after the kill, before the 1 s timeout", since)
	}
	last := m[3]

	second := start()
	defer func() { _ = second.Process.Kill(); _ = second.Wait() }()
	back := regexp.MustCompile(`client ` + regexp.QuoteMeta(client) + ` came back after \d+(\.\d)? s as (127\.0\.0\.1:\d+) \(heartbeat 1; it had stopped after heartbeat ` + last + `\)`)
	m = waitFor(t, &out, back, 20*time.Second)
	newClient := m[2]
	waitFor(t, &out, regexp.MustCompile(`heartbeat 3 from `+regexp.QuoteMeta(newClient)), 20*time.Second)

	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("server exited %d: %s", code, errOut.String())
	}
	table := out.String()
	for _, want := range []string{
		"--- udp heartbeat clients ---",
		"client           received      lost  reordered  duplicates      last     state     delay  variation",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("server output lacks %q:\n%s", want, table)
		}
	}
	row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(client) + ` +\d+ +0 +0 +0 +` + last + ` +stopped +`)
	if !row.MatchString(table) {
		t.Errorf("table has no stopped row for %s ending at heartbeat %s:\n%s", client, last, table)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(newClient) + ` +\d+ +0 +0 +0 +\d+ +alive +`).MatchString(table) {
		t.Errorf("table has no alive row for %s:\n%s", newClient, table)
	}
}

func TestHeartbeatUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"udp", "heartbeat"}, "missing HOST[:PORT]"},
		{[]string{"udp", "heartbeat", "-i", "0", "127.0.0.1"}, "-i: the interval must be above 0"},
		{[]string{"udp", "heartbeat", "-c", "-1", "127.0.0.1"}, "-c: -1 is negative"},
		{[]string{"udp", "server", "--heartbeat-timeout", "0"}, "--heartbeat-timeout: the timeout must be above 0"},
		{[]string{"udp", "ping", "--one-way", "-s", "100", "127.0.0.1"}, "one-way receipts need a size of at least 127 bytes, not 100"},
	} {
		stdout, stderr, code := runCmd(t, context.Background(), tt.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, nothing printed, one line with %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}
