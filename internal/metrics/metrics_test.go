package metrics

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
	"github.com/pinglab/pinglab/tcpping"
	"github.com/pinglab/pinglab/udpping"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestFold(t *testing.T) {
	type out struct {
		Names []string
		Sums  [][]float64
	}
	tests := []struct {
		name string
		max  int
		rows []row
		want out
	}{
		{"empty", 2, nil, out{}},
		{"ports of one host add up", 2, []row{
			{addr("10.0.0.1"), []int{1, 2}},
			{addr("10.0.0.2"), []int{5, 5}},
			{addr("10.0.0.1"), []int{3, 4}},
		}, out{[]string{"10.0.0.1", "10.0.0.2"}, [][]float64{{4, 6}, {5, 5}}}},
		{"past the bound into other, last", 1, []row{
			{addr("10.0.0.1"), []int{1}},
			{addr("10.0.0.2"), []int{2}},
			{addr("10.0.0.3"), []int{3}},
			{addr("10.0.0.1"), []int{10}},
		}, out{[]string{"10.0.0.1", "other"}, [][]float64{{11}, {5}}}},
		{"the server's overflow row is other", 5, []row{
			{netip.Addr{}, []int{7}},
			{addr("::1"), []int{1}},
		}, out{[]string{"::1", "other"}, [][]float64{{1}, {7}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, sums := fold(tt.max, tt.rows)
			if diff := cmp.Diff(tt.want, out{names, sums}); diff != "" {
				t.Errorf("fold (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProbesMatchStats feeds the same events to the metrics and to internal/stats: every
// counter must be the summary's.
func TestProbesMatchStats(t *testing.T) {
	p := NewProbes()
	tg := p.Target("127.0.0.1", "udp")
	st := stats.New()
	now := time.Now()
	unreach := &icmperr.Error{Type: icmperr.TypeDestUnreach, Code: icmperr.CodePortUnreach}
	refused := &icmperr.Error{Type: icmperr.NoICMP, Reason: "Connection refused"}
	events := []probe.Event{
		{Type: probe.EventSent, Seq: 1}, {Type: probe.EventReply, Seq: 1, RTT: 100 * time.Microsecond},
		{Type: probe.EventSent, Seq: 2}, {Type: probe.EventTimeout, Seq: 2},
		{Type: probe.EventLate, Seq: 2, RTT: 2 * time.Second},
		{Type: probe.EventSent, Seq: 3}, {Type: probe.EventError, Seq: 3, Err: unreach},
		{Type: probe.EventSent, Seq: 4}, {Type: probe.EventLost, Seq: 4, Reason: "server answered LOST"},
		{Type: probe.EventSent, Seq: 5}, {Type: probe.EventReply, Seq: 5, RTT: 3 * time.Millisecond},
		{Type: probe.EventDuplicate, Seq: 5, RTT: 4 * time.Millisecond},
		{Type: probe.EventSent, Seq: 6}, {Type: probe.EventError, Seq: 6, Err: refused},
	}
	for _, ev := range events {
		ev.At = now
		tg.Event(ev)
		st.Add(ev)
	}
	sum := st.Summary()
	l := []string{"127.0.0.1", "udp"}
	got := map[string]float64{
		"sent":        testutil.ToFloat64(p.sent.WithLabelValues(l...)),
		"received":    testutil.ToFloat64(p.received.WithLabelValues(l...)),
		"timeouts":    testutil.ToFloat64(p.timeouts.WithLabelValues(l...)),
		"lost":        testutil.ToFloat64(p.lost.WithLabelValues(l...)),
		"late":        testutil.ToFloat64(p.late.WithLabelValues(l...)),
		"duplicates":  testutil.ToFloat64(p.dups.WithLabelValues(l...)),
		"errors 3/3":  testutil.ToFloat64(p.errors.WithLabelValues(append(l, "3", "3")...)),
		"errors none": testutil.ToFloat64(p.errors.WithLabelValues(append(l, "none", "none")...)),
	}
	want := map[string]float64{
		"sent": float64(sum.Transmitted), "received": float64(sum.Received),
		"timeouts": float64(sum.Timeouts), "lost": float64(sum.Lost), "late": float64(sum.Late),
		"duplicates": float64(sum.Duplicates), "errors 3/3": 1, "errors none": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics against the summary (-want +got):\n%s", diff)
	}
	if sum.Errors != 2 {
		t.Errorf("summary errors = %d, want 2", sum.Errors)
	}
	// The histogram holds the replies only, as the summary's percentiles do.
	if n := testutil.CollectAndCount(p.rtt); n != 1 {
		t.Errorf("rtt series = %d, want 1", n)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "pinglab_probe_rtt_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != uint64(sum.Samples) {
				t.Errorf("rtt count = %d, want %d (replies)", h.GetSampleCount(), sum.Samples)
			}
			if got, want := h.GetSampleSum(), 0.0031; got < want-1e-9 || got > want+1e-9 {
				t.Errorf("rtt sum = %g, want %g", got, want)
			}
			if h.GetSchema() == 0 && len(h.GetPositiveSpan()) == 0 {
				t.Errorf("no native histogram in %v", h)
			}
		}
	}
	lint(t, p)

	p.Delete("127.0.0.1", "udp")
	if n := testutil.CollectAndCount(p); n != 0 {
		t.Errorf("after Delete: %d series, want 0", n)
	}
}

// lint fails the test for what promtool check metrics would report on c's metrics.
func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestServerCollectors(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	udp := NewUDPServer(func() []udpping.ClientStats {
		return []udpping.ClientStats{
			{Addr: ap("127.0.0.1:1000"), Received: 10, Echoed: 8, Dropped: 2},
			{Addr: ap("127.0.0.2:1000"), Received: 5, Echoed: 4, Errors: 1},
			{Addr: ap("127.0.0.1:1001"), Received: 1, Echoed: 1},
			{Received: 100, Dropped: 100},
		}
	}, "port-unreachable", 1)
	want := `
# HELP pinglab_udp_server_datagrams_received_total Datagrams received, by client address.
# TYPE pinglab_udp_server_datagrams_received_total counter
pinglab_udp_server_datagrams_received_total{client="127.0.0.1"} 11
pinglab_udp_server_datagrams_received_total{client="other"} 105
# HELP pinglab_udp_server_icmp_errors_sent_total Datagrams answered with an ICMP error instead of an echo, by client address and error type.
# TYPE pinglab_udp_server_icmp_errors_sent_total counter
pinglab_udp_server_icmp_errors_sent_total{client="127.0.0.1",type="port-unreachable"} 0
pinglab_udp_server_icmp_errors_sent_total{client="other",type="port-unreachable"} 1
`
	if err := testutil.CollectAndCompare(udp, strings.NewReader(want),
		"pinglab_udp_server_datagrams_received_total", "pinglab_udp_server_icmp_errors_sent_total"); err != nil {
		t.Error(err)
	}
	lint(t, udp)

	tcp := NewTCPServer(func() []tcpping.ClientStats {
		return []tcpping.ClientStats{{Addr: addr("::1"), Conns: 3, Closed: 2, Refused: 1, Received: 7, Echoed: 6, Dropped: 1}}
	}, func() int { return 1 }, 0)
	want = `
# HELP pinglab_tcp_server_connections_closed_total Served connections that ended, by client address.
# TYPE pinglab_tcp_server_connections_closed_total counter
pinglab_tcp_server_connections_closed_total{client="::1"} 2
# HELP pinglab_tcp_server_connections_open Connections being served.
# TYPE pinglab_tcp_server_connections_open gauge
pinglab_tcp_server_connections_open 1
`
	if err := testutil.CollectAndCompare(tcp, strings.NewReader(want),
		"pinglab_tcp_server_connections_closed_total", "pinglab_tcp_server_connections_open"); err != nil {
		t.Error(err)
	}
	lint(t, tcp)
}

func TestListen(t *testing.T) {
	p := NewProbes()
	p.Target("::1", "icmp").Event(probe.Event{Type: probe.EventSent})
	reg, err := NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(context.Background(), "127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`pinglab_probe_sent_total{protocol="icmp",target="::1"} 1`, "process_resident_memory_bytes", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if _, err := Listen(context.Background(), srv.Addr().String(), reg, nil); err == nil {
		t.Error("a second Listen on the same address succeeded")
	}
}
