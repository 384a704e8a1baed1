package exporter

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pinglab/pinglab/udpping"
)

func startUDPServer(t *testing.T) string {
	t.Helper()
	s, err := udpping.Listen(context.Background(), udpping.ServerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s.Addr().String()
}

// TestExporterRoundsAndReload probes a UDP echo server in rounds, then reloads: a target that
// is gone loses its series, one that stays keeps its counts.
func TestExporterRoundsAndReload(t *testing.T) {
	a, b := startUDPServer(t), startUDPServer(t)
	s := Settings{Protocol: UDP, Interval: 200 * time.Millisecond, Count: 3, Spacing: 20 * time.Millisecond, Timeout: 100 * time.Millisecond}
	e := New()
	defer e.Close()
	e.Apply(&Config{Targets: []Target{{Addr: a, Settings: s}, {Addr: b, Settings: s}}})
	time.Sleep(time.Second + 50*time.Millisecond)
	sent := testutil.ToFloat64(e.probes.Target(a, UDP).SentCounter())
	rounds := testutil.ToFloat64(e.rounds.WithLabelValues(a, UDP))
	if rounds < 5 || rounds > 6 {
		t.Errorf("%g rounds in 1.05s at 200ms, want 5 or 6", rounds)
	}
	if sent < 3*(rounds-1) || sent > 3*rounds {
		t.Errorf("%g probes sent in %g rounds of 3", sent, rounds)
	}
	e.Apply(&Config{Targets: []Target{{Addr: a, Settings: s}}})
	if n := testutil.CollectAndCount(e.probes, "pinglab_probe_sent_total"); n != 1 {
		t.Errorf("%d sent series after the reload, want 1 (the target that stayed)", n)
	}
	if got := testutil.ToFloat64(e.probes.Target(a, UDP).SentCounter()); got < sent {
		t.Errorf("the target that stayed went from %g probes sent to %g", sent, got)
	}
	if got := testutil.ToFloat64(e.probes.Target(a, UDP).TimeoutCounter()); got != 0 {
		t.Errorf("%g timeouts on loopback", got)
	}
}

func TestProbeHandler(t *testing.T) {
	a := startUDPServer(t)
	e := New()
	defer e.Close()
	e.Apply(&Config{Modules: map[string]Settings{"udp4": {Protocol: UDP, Interval: time.Second, Count: 4, Spacing: 10 * time.Millisecond, Timeout: 200 * time.Millisecond}}})
	srv := httptest.NewServer(e.ProbeHandler())
	defer srv.Close()
	get := func(q string) (int, string) {
		resp, err := http.Get(srv.URL + "/probe?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("target=" + a + "&module=udp4")
	for _, want := range []string{
		`pinglab_probe_sent_total{protocol="udp",target="` + a + `"} 4`,
		`pinglab_probe_received_total{protocol="udp",target="` + a + `"} 4`,
		"pinglab_probe_success 1",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/probe: %d, lacks %s:\n%s", code, want, body)
		}
	}
	if code, body := get("target=127.0.0.1:1&module=udp"); code != 200 || !strings.Contains(body, "pinglab_probe_success 0") {
		t.Errorf("/probe of a closed port with the udp module: %d\n%s", code, body)
	}
	for _, q := range []string{"target=" + a, "module=udp", "target=" + a + "&module=nonesuch", "target=127.0.0.1&module=udp"} {
		if code, _ := get(q); code != http.StatusBadRequest {
			t.Errorf("/probe?%s: %d, want 400", q, code)
		}
	}
}

// TestExporterSocketSettings probes with every socket setting a target may have, over each
// protocol: the probes go out (the kernel took the settings) and come back.
func TestExporterSocketSettings(t *testing.T) {
	a := startUDPServer(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	s := Settings{Interval: 300 * time.Millisecond, Count: 2, Spacing: 10 * time.Millisecond, Timeout: 200 * time.Millisecond,
		TTL: 5, TOS: 0x10, Source: netip.MustParseAddr("127.0.0.1")}
	if os.Geteuid() == 0 {
		s.Interface = "lo"
	}
	with := func(p string) Settings { c := s; c.Protocol = p; return c }
	targets := []Target{
		{Addr: a, Settings: with(UDP)},
		{Addr: l.Addr().String(), Settings: with(TCPConnect)},
		{Addr: "127.0.0.1", Settings: with(ICMP)},
	}
	e := New()
	defer e.Close()
	e.Apply(&Config{Targets: targets})
	time.Sleep(time.Second)
	for _, tg := range targets {
		if f := testutil.ToFloat64(e.failed.WithLabelValues(tg.Addr, tg.Protocol)); f != 0 {
			t.Errorf("%s %s: %g rounds failed", tg.Protocol, tg.Addr, f)
		}
		sent := testutil.ToFloat64(e.probes.Target(tg.Addr, tg.Protocol).SentCounter())
		if sent < 4 || testutil.ToFloat64(e.probes.Target(tg.Addr, tg.Protocol).TimeoutCounter()) != 0 {
			t.Errorf("%s %s: %g sent, some timed out", tg.Protocol, tg.Addr, sent)
		}
	}
}
