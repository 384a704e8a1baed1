package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
)

// RTTBuckets are the classic buckets of the RTT histogram, in seconds: 30 buckets growing by
// about 1.57 from 20 µs (a loopback ping) to 10 s (far past any timeout), so that a quantile
// read from them is within about a quarter of the true one.
var RTTBuckets = prometheus.ExponentialBucketsRange(20e-6, 10, 30)

// probeLabels are the labels of every probe series: what was probed, and how.
var probeLabels = []string{"target", "protocol"}

// Probes are the probe engine's counters and RTT histogram, per target and protocol, for a
// client's run or an exporter's targets. They count events as internal/stats does, so that
// their values are the summary's: sent is "transmitted", received is "received", and so on.
type Probes struct {
	sent, received, timeouts, lost, late, dups *prometheus.CounterVec
	errors                                     *prometheus.CounterVec
	rtt                                        *prometheus.HistogramVec
}

// NewProbes returns empty probe metrics; register them with a registry.
func NewProbes() *Probes {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "probe", Name: name, Help: help,
		}, append(probeLabels[:len(probeLabels):len(probeLabels)], labels...))
	}
	return &Probes{
		sent:     counter("sent_total", "Probes sent."),
		received: counter("received_total", "Probes answered within their timeout (first replies only)."),
		timeouts: counter("timeouts_total", "Probes that got nothing within their timeout."),
		lost:     counter("lost_total", "Probes the transport reported lost, such as the TCP server's LOST answer."),
		late:     counter("late_replies_total", "Replies that came after their probe's timeout; their probe is not received."),
		dups:     counter("duplicate_replies_total", "Further replies to probes that already had one."),
		errors: counter("errors_total", "Probes answered with an ICMP error (or a socket error standing for one), by ICMP type and code; \"none\" when no ICMP message was involved.",
			"icmp_type", "icmp_code"),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "probe", Name: "rtt_seconds",
			Help:                            "Round-trip time of the probes received within their timeout.",
			Buckets:                         RTTBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, probeLabels),
	}
}

func (p *Probes) all() []prometheus.Collector {
	return []prometheus.Collector{p.sent, p.received, p.timeouts, p.lost, p.late, p.dups, p.errors, p.rtt}
}

// Describe implements prometheus.Collector.
func (p *Probes) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range p.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (p *Probes) Collect(ch chan<- prometheus.Metric) {
	for _, c := range p.all() {
		c.Collect(ch)
	}
}

// A Target is the series of one target and protocol. Its Event counts the engine's events.
type Target struct {
	sent, received, timeouts, lost, late, dups prometheus.Counter
	errors                                     *prometheus.CounterVec
	rtt                                        prometheus.Observer
}

// Target returns the series of target probed over protocol ("icmp", "udp", "tcp"), created
// with zero values so that a target that never answered still shows its sent probes.
func (p *Probes) Target(target, protocol string) *Target {
	l := prometheus.Labels{"target": target, "protocol": protocol}
	return &Target{
		sent:     p.sent.With(l),
		received: p.received.With(l),
		timeouts: p.timeouts.With(l),
		lost:     p.lost.With(l),
		late:     p.late.With(l),
		dups:     p.dups.With(l),
		errors:   p.errors.MustCurryWith(l),
		rtt:      p.rtt.With(l),
	}
}

// Delete removes the series of target and protocol, as an exporter does for a target that a
// new configuration no longer has.
func (p *Probes) Delete(target, protocol string) {
	l := prometheus.Labels{"target": target, "protocol": protocol}
	for _, v := range []*prometheus.CounterVec{p.sent, p.received, p.timeouts, p.lost, p.late, p.dups} {
		v.Delete(l)
	}
	p.errors.DeletePartialMatch(l)
	p.rtt.Delete(l)
}

// Event counts one event of the probe engine.
func (t *Target) Event(ev probe.Event) {
	switch ev.Type {
	case probe.EventSent:
		t.sent.Inc()
	case probe.EventReply:
		t.received.Inc()
		t.rtt.Observe(ev.RTT.Seconds())
	case probe.EventDuplicate:
		t.dups.Inc()
	case probe.EventLate:
		t.late.Inc()
	case probe.EventTimeout:
		t.timeouts.Inc()
	case probe.EventLost:
		t.lost.Inc()
	case probe.EventError:
		typ, code := "none", "none"
		if ev.Err != nil && ev.Err.Type != icmperr.NoICMP {
			typ, code = strconv.Itoa(ev.Err.Type), strconv.Itoa(ev.Err.Code)
		}
		t.errors.WithLabelValues(typ, code).Inc()
	}
}

// SentCounter and the like return a series' counters, for tests that read them.
func (t *Target) SentCounter() prometheus.Counter { return t.sent }

// TimeoutCounter returns the series' counter of timeouts.
func (t *Target) TimeoutCounter() prometheus.Counter { return t.timeouts }
