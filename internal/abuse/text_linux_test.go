package abuse

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pinglab/pinglab/internal/testutil"
)

// hostile is what a hostile TCP server answers a ping with: a title change (OSC), a carriage
// return over the line, a screen clear, invalid UTF-8.
const hostile = "ERROR \x1b]0;PWNED\x07\r\x1b[2J\xff\xfe owned\n"

// TestTCPServerTextEscaped pings a hostile server and checks that neither the terminal nor the
// CSV gets a control character or invalid UTF-8 from it, and that its words show escaped.
func TestTCPServerTextEscaped(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					_, _ = c.Write([]byte(hostile))
				}
			}()
		}
	}()
	csvPath := filepath.Join(t.TempDir(), "run.csv")
	for _, format := range []string{"text", "assignment", "json"} {
		cmd := exec.Command(pinglab, "tcp", "ping", "-c", "2", "-i", "0.2", "--format", format, "--csv", csvPath, ln.Addr().String())
		out, _ := cmd.CombinedOutput()
		csv, err := os.ReadFile(csvPath)
		if err != nil {
			t.Fatal(err)
		}
		for what, b := range map[string][]byte{format + " output": out, "CSV": csv} {
			if bad := rawBytes(b); bad != "" {
				t.Errorf("%s has %s from the server:\n%q", what, bad, b)
			}
		}
		want := `\x1b]0;PWNED\a`
		if format == "json" {
			want = `\\x1b]0;PWNED\\a` // and JSON escapes the escape's backslash
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%s output does not show the server's words escaped:\n%q", format, out)
		}
	}
}

// rawBytes names the first control character (other than newline and tab) or invalid UTF-8
// in b, or returns "".
func rawBytes(b []byte) string {
	if !utf8.Valid(b) {
		return "invalid UTF-8"
	}
	for _, r := range string(b) {
		if (r < ' ' && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "control character " + strconv.QuoteRune(r)
		}
	}
	return ""
}

// TestAmbiguousAddress checks that "::1:5000" (port 5000 of ::1, or the address ::1:5000 off
// the machine?) is not sent anywhere: one line with the hint, exit 2.
func TestAmbiguousAddress(t *testing.T) {
	// In a namespace of its own with nothing but loopback: a pinglab that did send would find
	// no route off the machine.
	ns := fmt.Sprintf("pinglab-abuse-%d", os.Getpid())
	testutil.NewNetns(t, ns)
	for _, proto := range []string{"udp", "tcp"} {
		cmd := exec.Command("ip", "netns", "exec", ns, pinglab, proto, "ping", "-c", "1", "::1:5000")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Errorf("%s ping ::1:5000: exit %d, want 2", proto, code)
		}
		if e := stderr.String(); strings.Count(e, "\n") != 1 || !strings.Contains(e, "did you mean [::1]:5000?") {
			t.Errorf("%s ping ::1:5000: stderr %q, want one line with the hint", proto, e)
		}
		if stdout.Len() != 0 {
			t.Errorf("%s ping ::1:5000 printed %q: nothing may be printed or sent", proto, stdout.String())
		}
	}
}
