package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
)

// A cmdRun is pinglab running in the test's process, as a user would start it.
type cmdRun struct {
	out, err lockedBuffer
	cancel   context.CancelFunc
	done     chan int
	code     int
	ended    bool
}

// startCmd runs pinglab with args until stop (or the end of the test).
func startCmd(t *testing.T, args ...string) *cmdRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &cmdRun{cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- run(ctx, append([]string{"pinglab"}, args...), &r.out, &r.err) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels the run as Ctrl-C does and returns its exit code.
func (r *cmdRun) stop() int {
	r.cancel()
	return r.wait(time.Minute)
}

// wait waits up to d for the run to end by itself and returns its exit code, -1 if it did not.
func (r *cmdRun) wait(d time.Duration) int {
	if r.ended {
		return r.code
	}
	select {
	case r.code = <-r.done:
		r.ended = true
		return r.code
	case <-time.After(d):
		return -1
	}
}

var metricsURL = regexp.MustCompile(`metrics on (http://\S+/metrics)`)

// metricsURL waits for the run to say where it serves its metrics.
func (r *cmdRun) metricsURL(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range []string{r.out.String(), r.err.String()} {
			if m := metricsURL.FindStringSubmatch(s); m != nil {
				return m[1]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no metrics address in the output:\n%s\n%s", r.out.String(), r.err.String())
	return ""
}

// scrape returns what url serves, in the text format.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(body)
}

// promtoolCheck runs "promtool check metrics" (Prometheus' own linter) on what url serves.
func promtoolCheck(t *testing.T, url string) string {
	t.Helper()
	testutil.HostOnly(t, "the VM carries no promtool (48 MB); the metrics' text does not depend on the kernel")
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testutil.SkipOrFail(t, "promtool not installed (Debian's prometheus package): %v", err)
	}
	body := scrape(t, url)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() > 0 {
		t.Errorf("promtool check metrics on %s: %v\n%s", url, err, out.String())
	}
	return body
}

// TestMetricsPromtool runs every pinglab that serves /metrics and has promtool check each.
func TestMetricsPromtool(t *testing.T) {
	udpAddr := freeUDP(t)
	tcpAddr := freeTCP(t)
	udpSrv := startCmd(t, "udp", "server", "--listen", udpAddr, "--drop", "20%", "--seed", "3", "-q", "--metrics", "127.0.0.1:0")
	tcpSrv := startCmd(t, "tcp", "server", "--listen", tcpAddr, "--drop", "20%", "--seed", "3", "-q", "--metrics", "127.0.0.1:0")
	udpURL, tcpURL := udpSrv.metricsURL(t), tcpSrv.metricsURL(t)

	clients := []struct {
		name string
		args []string
		want []string
	}{
		{"udp ping", []string{"udp", "ping", udpAddr}, []string{`pinglab_probe_sent_total{protocol="udp",target="` + udpAddr + `"} 10`}},
		{"tcp ping", []string{"tcp", "ping", tcpAddr}, []string{`pinglab_probe_sent_total{protocol="tcp",target="` + tcpAddr + `"} 10`}},
		{"ping", []string{"ping", "127.0.0.1"}, []string{`pinglab_probe_sent_total{protocol="icmp",target="127.0.0.1"} 10`, `pinglab_probe_received_total{protocol="icmp",target="127.0.0.1"} 10`}},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			r := startCmd(t, append(c.args, "-c", "10", "-i", "0.01", "-q", "--metrics", "127.0.0.1:0", "--metrics-linger", "1m")...)
			url := r.metricsURL(t)
			// The run ends after its last timeout; the counts are final when the summary is out.
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(r.out.String(), "packets transmitted") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			body := promtoolCheck(t, url)
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s lacks %s:\n%s", url, w, body)
				}
			}
			if code := r.wait(0); code != -1 {
				t.Errorf("the client ended (exit %d) before --metrics-linger passed", code)
			}
			if code := r.stop(); code != 0 && code != 1 {
				t.Errorf("exit code %d after Ctrl-C in the linger\n%s", code, r.err.String())
			}
		})
	}
	for _, url := range []string{udpURL, tcpURL} {
		body := promtoolCheck(t, url)
		if !strings.Contains(body, `client="127.0.0.1"`) {
			t.Errorf("%s has no series of the client 127.0.0.1:\n%s", url, body)
		}
	}
}

func TestMetricsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"udp", "server", "--metrics", "nonsense"},
		{"tcp", "server", "--metrics", "127.0.0.1:99999"},
		{"udp", "server", "--metrics", ":9200", "--metrics-clients", "0"},
		{"udp", "ping", "127.0.0.1", "-c", "1", "--metrics", "x"},
		{"ping", "127.0.0.1", "-c", "1", "--metrics", ":1", "--metrics-linger", "-1s"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, context.Background(), args...)
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--metrics") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout and one line naming the flag", code, stdout, stderr)
			}
		})
	}
}

// freeUDP returns a loopback address whose UDP port was free a moment ago.
func freeUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// freeTCP returns a loopback address whose TCP port was free a moment ago.
func freeTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
