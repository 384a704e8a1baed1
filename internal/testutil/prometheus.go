package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Prometheus is a real Prometheus server (Debian's prometheus package) a test started.
type Prometheus struct {
	// URL is the server's base address, "http://127.0.0.1:PORT".
	URL string
	// Client is what the queries go through.
	Client *http.Client
	cmd    *exec.Cmd
	log    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartPrometheus starts a Prometheus server listening on listen (a loopback host:port) that
// scrapes each job's targets (host:port of a /metrics; "host:port/path?query" for another
// path) every interval, with its storage in a temporary folder, and stops it when the test
// ends. start starts the command (cmd.Start, or a start inside a namespace); nil is cmd.Start.
// client reaches the server (one that dials inside that namespace); nil is http.DefaultClient.
// flags go to prometheus as they are ("--enable-feature=native-histograms"). Without the
// prometheus binary it skips, or fails under RequireRootEnv.
func StartPrometheus(t testing.TB, start func(*exec.Cmd) error, client *http.Client, listen string, jobs map[string][]string, interval time.Duration, flags ...string) *Prometheus {
	t.Helper()
	HostOnly(t, "the VM carries no Prometheus server (50 MB); what it scrapes does not depend on the kernel")
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		SkipOrFail(t, "prometheus not installed (Debian's prometheus package): %v", err)
	}
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\nscrape_configs:\n", interval, interval)
	for job, targets := range jobs {
		byPath := map[string][]string{}
		for _, tg := range targets {
			hostport, path, _ := strings.Cut(tg, "/")
			byPath["/"+path] = append(byPath["/"+path], hostport)
		}
		i := 0
		for path, hosts := range byPath {
			p, q, _ := strings.Cut(path, "?")
			if p == "/" {
				p = "/metrics"
			}
			fmt.Fprintf(&cfg, "  - job_name: %q\n    metrics_path: %q\n", fmt.Sprintf("%s-%d", job, i), p)
			if q != "" {
				vals, err := url.ParseQuery(q)
				if err != nil {
					t.Fatal(err)
				}
				cfg.WriteString("    params:\n")
				for k, v := range vals {
					fmt.Fprintf(&cfg, "      %s: [%q]\n", k, v[0])
				}
			}
			cfg.WriteString("    static_configs:\n      - targets: [")
			for j, h := range hosts {
				if j > 0 {
					cfg.WriteString(", ")
				}
				fmt.Fprintf(&cfg, "%q", h)
			}
			fmt.Fprintf(&cfg, "]\n        labels: {job: %q}\n", job)
			i++
		}
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if client == nil {
		client = http.DefaultClient
	}
	p := &Prometheus{URL: "http://" + listen, Client: client, log: &syncBuffer{}}
	p.cmd = exec.Command(bin, append([]string{"--config.file=" + path, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + listen, "--log.level=warn"}, flags...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(p.cmd); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := p.Client.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 60s: %v\n%s\nconfig:\n%s", err, p.log.String(), cfg.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A Sample is one series of a query's answer.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query through the HTTP API and returns its vector.
func (p *Prometheus) Query(t testing.TB, expr string) []Sample {
	t.Helper()
	resp, err := p.Client.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	if body.Status != "success" {
		t.Fatalf("query %s: %s", expr, body.Error)
	}
	var out []Sample
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("query %s: value %v", expr, r.Value)
		}
		out = append(out, Sample{r.Metric, v})
	}
	return out
}

// Scalar runs expr, which must answer one series, and returns its value; ok is false when it
// answers none.
func (p *Prometheus) Scalar(t testing.TB, expr string) (v float64, ok bool) {
	t.Helper()
	s := p.Query(t, expr)
	switch len(s) {
	case 0:
		return 0, false
	case 1:
		return s[0].Value, true
	}
	t.Fatalf("query %s: %d series, want 1: %v", expr, len(s), s)
	return 0, false
}

// WaitScalar polls expr until it answers want or timeout passes, and returns what it answered
// last: a counter that is final reaches Prometheus at the next scrape.
func (p *Prometheus) WaitScalar(t testing.TB, expr string, want float64, timeout time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, ok := p.Scalar(t, expr)
		if ok && v == want {
			return v
		}
		if time.Now().After(deadline) {
			if !ok {
				t.Errorf("query %s: no series after %v (prometheus log:\n%s)", expr, timeout, p.log.String())
			}
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
}
