package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
	"github.com/pinglab/pinglab/tcpping"
	"github.com/pinglab/pinglab/udpping"
)

// tmuxTerm is a tmux server of the test's own (its socket named with the pid) holding one
// session: the real terminal pinglab watch runs in.
type tmuxTerm struct {
	t      *testing.T
	socket string
}

func (m *tmuxTerm) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", m.socket}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (m *tmuxTerm) screen() string { return m.run("capture-pane", "-p", "-t", "watch") }

// waitFor captures the screen until ok holds of it, or fails after a generous time (the
// machine is shared).
func (m *tmuxTerm) waitFor(what string, ok func(string) bool) string {
	m.t.Helper()
	var s string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if s = m.screen(); ok(s) {
			return s
		}
	}
	m.t.Fatalf("the screen never showed %s:\n%s", what, s)
	return ""
}

// row finds a target's row of the table: its figures from sent to jitter.
func row(screen, label string) []string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, label+" ") {
			f := strings.Fields(strings.TrimPrefix(l, label))
			if len(f) > 0 && f[0] == "(done)" {
				f = f[1:]
			}
			return f
		}
	}
	return nil
}

// TestWatchInTmux drives pinglab watch in a real terminal against a UDP server dropping 30%, a
// TCP server and ICMP to 127.0.0.1: the table's figures against each run's own final summary,
// the keys, a resize and the summaries printed after q.
func TestWatchInTmux(t *testing.T) {
	testutil.RequireRoot(t) // ICMP to 127.0.0.1 whatever ping_group_range says
	if _, err := exec.LookPath("tmux"); err != nil {
		testutil.SkipOrFail(t, "needs tmux: %v", err)
	}
	udp := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0", Drop: 0.3, Seed: 7})
	tcp := startTCPServer(t, tcpping.ServerConfig{Addr: "127.0.0.1:0"})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("pinglab-watch-%d", os.Getpid())}
	t.Cleanup(func() { exec.Command("tmux", "-L", m.socket, "kill-server").Run() })
	udpT, tcpT, icmpT := "udp:"+udp.Addr().String(), "tcp:"+tcp.Addr().String(), "icmp:127.0.0.1"
	cmd := fmt.Sprintf("env %s=1 TERM=xterm-256color %s watch -c 40 -i 0.05 -W 0.5 --csv %s/run.csv %s %s 127.0.0.1; echo EXIT=$?; sleep 600",
		asPinglabEnv, self, dir, udpT, tcpT)
	m.run("new-session", "-d", "-s", "watch", "-x", "100", "-y", "30", "bash", "-c", cmd)

	screen := m.waitFor("three finished runs", func(s string) bool { return strings.Count(s, "(done)") == 3 })
	rows := map[string][]string{}
	for _, l := range []string{udpT, tcpT, icmpT} {
		rows[l] = row(screen, l)
		// sent recv loss% err last min avg max p95 jitter
		if len(rows[l]) != 10 || rows[l][0] != "40" {
			t.Fatalf("%s: row %q, want 10 figures from 40 sent:\n%s", l, rows[l], screen)
		}
	}
	if rows[udpT][1] == "40" || rows[udpT][1] == "0" {
		t.Errorf("udp row %q: a server dropping 30%% should lose some and not all", rows[udpT])
	}
	if !strings.Contains(screen, "window 1m0s  linear RTT") || !strings.Contains(screen, "now") {
		t.Errorf("no title or time axis:\n%s", screen)
	}

	key := func(k string) { m.run("send-keys", "-t", "watch", k) }
	key("l")
	m.waitFor("the log axis", func(s string) bool { return strings.Contains(s, "log RTT") })
	key("l")
	m.waitFor("the linear axis again", func(s string) bool { return strings.Contains(s, "linear RTT") })
	key("+")
	m.waitFor("a 30s window", func(s string) bool { return strings.Contains(s, "window 30s") && strings.Contains(s, "-30s") })
	key("-")
	key("-")
	m.waitFor("a 2m window", func(s string) bool { return strings.Contains(s, "window 2m0s") })
	key("p")
	m.waitFor("PAUSED", func(s string) bool { return strings.Contains(s, "PAUSED") })
	key("p")
	m.waitFor("no PAUSED", func(s string) bool { return !strings.Contains(s, "PAUSED") })

	m.run("resize-window", "-t", "watch", "-x", "80", "-y", "24")
	small := m.waitFor("the view redrawn in 80x24", func(s string) bool {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return len(lines) <= 24 && strings.Contains(s, "target") && strings.Contains(s, "now") &&
			strings.Count(s, "(done)") == 0 && strings.Contains(s, "udp:127") && strings.Contains(s, "icmp:127")
	})
	for _, l := range strings.Split(small, "\n") {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("a line of %d columns in an 80-column terminal: %q", n, l)
		}
	}
	m.run("resize-window", "-t", "watch", "-x", "100", "-y", "30")
	m.waitFor("the view in 100x30 again", func(s string) bool { return strings.Count(s, "(done)") == 3 })

	key("r")
	reset := m.waitFor("the statistics reset", func(s string) bool {
		r := row(s, icmpT)
		return len(r) == 10 && r[0] == "0" && r[4] == "-"
	})
	if r := row(reset, udpT); len(r) != 10 || r[0] != "0" {
		t.Errorf("udp row after r: %q", r)
	}

	key("q")
	final := m.waitFor("the exit", func(s string) bool { return strings.Contains(s, "EXIT=") })
	if !strings.Contains(final, "EXIT=0") {
		t.Errorf("watch did not exit 0:\n%s", final)
	}
	// Each run's own summary, as ping prints it after Ctrl-C, against the table before r.
	for _, c := range []struct{ label, head string }{
		{udpT, "--- " + udp.Addr().String() + " udp ping statistics ---"},
		{tcpT, "--- " + tcp.Addr().String() + " tcp ping statistics ---"},
		{icmpT, "--- 127.0.0.1 ping statistics ---"},
	} {
		re := regexp.MustCompile(regexp.QuoteMeta(c.head) + `\n(\d+) packets transmitted, (\d+) received, ([\d.]+)% packet loss, time \d+ms\nrtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/[\d.]+ ms`)
		mm := re.FindStringSubmatch(final)
		if mm == nil {
			t.Errorf("no summary %q after q:\n%s", c.head, final)
			continue
		}
		r := rows[c.label]
		got := []string{mm[1], mm[2], mm[4], mm[5], mm[6]}
		want := []string{r[0], r[1], r[5], r[6], r[7]}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: summary sent/received/min/avg/max %q, the table showed %q", c.label, got, want)
		}
		var loss, tableLoss float64
		fmt.Sscan(mm[3], &loss)
		fmt.Sscan(r[2], &tableLoss)
		if d := loss - tableLoss; d > 0.05 || d < -0.05 {
			t.Errorf("%s: summary loss %s%%, the table %s%%", c.label, mm[3], r[2])
		}
	}
	for i := 1; i <= 3; i++ {
		b, err := os.ReadFile(fmt.Sprintf("%s/run-%d.csv", dir, i))
		if err != nil {
			t.Errorf("--csv: %v", err)
		} else if n := strings.Count(string(b), "\n"); n < 41 {
			t.Errorf("run-%d.csv has %d lines, want a header and 40 probes at least", i, n)
		}
	}
}
