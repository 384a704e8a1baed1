package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pinglab/pinglab/udpping"
)

func TestExporterBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("targets:\n  - target: 127.0.0.1:12000\n    protocol: udp\n    count: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"exporter"}, "pinglab exporter: --config FILE is required"},
		{[]string{"exporter", "--config", filepath.Join(dir, "none.yml")}, "no such file"},
		{[]string{"exporter", "--config", bad}, "pinglab exporter: " + bad + `:4: count: "lots" is not a whole number`},
		{[]string{"exporter", "--config", bad, "extra"}, "unexpected argument"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, context.Background(), tt.args...)
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, one line with %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

// TestExporterCommand runs the exporter against a UDP echo server, has promtool check its
// /metrics and /probe, and reloads it with SIGHUP: a new configuration replaces the targets, a
// broken one is rejected and the exporter goes on.
func TestExporterCommand(t *testing.T) {
	a := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"}).Addr().String()
	b := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"}).Addr().String()
	path := filepath.Join(t.TempDir(), "pinglab.yml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("defaults:\n  interval: 200ms\n  count: 2\n  spacing: 10ms\n  timeout: 100ms\ntargets:\n  - target: " + a +
		"\n    protocol: udp\n  - target: 127.0.0.1\n    protocol: icmp\nmodules:\n  udp3:\n    protocol: udp\n    count: 3\n")
	ex := startChild(t, "", "exporter", "--config", path, "--listen", "127.0.0.1:0")
	out := ex.waitFor(t, "probing 2 targets", 30*time.Second)
	m := metricsURL.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no metrics address in %q", out)
	}
	url := m[1]
	time.Sleep(time.Second)
	body := promtoolCheck(t, url)
	for _, want := range []string{`pinglab_probe_received_total{protocol="udp",target="` + a + `"}`, `pinglab_probe_received_total{protocol="icmp",target="127.0.0.1"}`, "pinglab_exporter_targets 2"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	probe := promtoolCheck(t, strings.TrimSuffix(url, "/metrics")+"/probe?module=udp3&target="+b)
	if !strings.Contains(probe, `pinglab_probe_received_total{protocol="udp",target="`+b+`"} 3`) || !strings.Contains(probe, "pinglab_probe_success 1") {
		t.Errorf("/probe of %s with udp3:\n%s", b, probe)
	}

	write("defaults:\n  interval: 200ms\ntargets:\n  - target: " + b + "\n    protocol: udp\n")
	_ = ex.cmd.Process.Signal(syscall.SIGHUP)
	ex.waitFor(t, "probing 1 targets", 10*time.Second)
	body = scrape(t, url)
	if strings.Contains(body, `target="`+a+`"`) || strings.Contains(body, `target="127.0.0.1"`) || !strings.Contains(body, `target="`+b+`"`) {
		t.Errorf("after the reload, /metrics should have %s only:\n%s", b, body)
	}

	write("targets:\n  - target: " + a + "\n    protocol: udp\n    interval: never\n")
	_ = ex.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(ex.err.String(), "reload rejected") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if want := path + `:4: interval: "never" is not a duration`; !strings.Contains(ex.err.String(), want) {
		t.Errorf("stderr after a broken reload: %q, want %q", ex.err.String(), want)
	}
	body = scrape(t, url)
	if !strings.Contains(body, "pinglab_exporter_config_last_reload_successful 0") || !strings.Contains(body, `target="`+b+`"`) {
		t.Errorf("after a rejected reload the exporter should go on with %s and say the reload failed:\n%s", b, body)
	}
	if code := ex.interrupt(t); code != 0 {
		t.Errorf("exit %d after SIGINT", code)
	}
}
