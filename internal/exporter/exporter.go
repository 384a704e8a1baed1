package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pinglab/pinglab/icmpping"
	"github.com/pinglab/pinglab/internal/metrics"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/tcpping"
	"github.com/pinglab/pinglab/udpping"
)

// An Exporter probes the targets of its configuration, each on its own schedule, and holds
// their series. Apply a Config to start; apply another to reload.
type Exporter struct {
	probes                                 *metrics.Probes
	rounds, late, skipped, failed, reloads *prometheus.CounterVec
	targets, reloadOK                      prometheus.Gauge

	mu   sync.Mutex
	cfg  *Config
	jobs map[string]*job
}

// New returns an exporter with no targets.
func New() *Exporter {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pinglab", Subsystem: "exporter", Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "pinglab", Subsystem: "exporter", Name: name, Help: help})
	}
	return &Exporter{
		probes:   metrics.NewProbes(),
		rounds:   counter("rounds_total", "Rounds of probes started, by target.", "target", "protocol"),
		late:     counter("rounds_late_total", "Rounds that started later than a tenth of their interval (at most 100ms) after their time.", "target", "protocol"),
		skipped:  counter("rounds_skipped_total", "Rounds not started because the one before them was still running at their time.", "target", "protocol"),
		failed:   counter("round_failures_total", "Rounds that could not probe: the target did not resolve, or its socket could not be opened or failed.", "target", "protocol"),
		reloads:  counter("config_reloads_total", "Configurations applied (at start and on SIGHUP), by result.", "result"),
		targets:  gauge("targets", "Targets being probed."),
		reloadOK: gauge("config_last_reload_successful", "Whether the last configuration read was applied (1) or rejected (0)."),
		jobs:     map[string]*job{},
	}
}

// Collectors returns the exporter's collectors, to register with a registry.
func (e *Exporter) Collectors() []prometheus.Collector {
	return []prometheus.Collector{e.probes, e.rounds, e.late, e.skipped, e.failed, e.reloads, e.targets, e.reloadOK}
}

// Rejected counts a configuration that failed its checks; the exporter goes on with the one
// it has.
func (e *Exporter) Rejected() {
	e.reloads.WithLabelValues("failure").Inc()
	e.reloadOK.Set(0)
}

// Apply makes cfg the exporter's configuration: targets it no longer has stop and lose their
// series, new ones start, and ones whose settings changed start again. The rest go on
// undisturbed, schedule and counters alike.
func (e *Exporter) Apply(cfg *Config) {
	e.mu.Lock()
	defer e.mu.Unlock()
	want := map[string]Target{}
	for _, t := range cfg.Targets {
		want[t.Key()] = t
	}
	var stopped []*job
	for key, j := range e.jobs {
		if t, ok := want[key]; !ok || !sameSettings(t, j.t) {
			j.stop()
			stopped = append(stopped, j)
			delete(e.jobs, key)
		}
	}
	for _, j := range stopped {
		<-j.done
		if _, kept := want[j.t.Key()]; !kept {
			e.deleteSeries(j.t)
		}
	}
	// New targets start spread over their interval, so that hundreds of them do not all send
	// at the same instant.
	n, now := 0, time.Now()
	for i, t := range cfg.Targets {
		if _, ok := e.jobs[t.Key()]; ok {
			continue
		}
		offset := time.Duration(int64(t.Interval) * int64(i) / int64(len(cfg.Targets)))
		e.jobs[t.Key()] = e.start(t, now.Add(offset))
		n++
	}
	e.cfg = cfg
	e.targets.Set(float64(len(e.jobs)))
	e.reloads.WithLabelValues("success").Inc()
	e.reloadOK.Set(1)
}

func sameSettings(a, b Target) bool { return a.Addr == b.Addr && a.Settings == b.Settings }

func (e *Exporter) deleteSeries(t Target) {
	e.probes.Delete(t.Addr, t.Protocol)
	l := []string{t.Addr, t.Protocol}
	for _, v := range []*prometheus.CounterVec{e.rounds, e.late, e.skipped, e.failed} {
		v.DeleteLabelValues(l...)
	}
}

// Close stops every target and waits for them.
func (e *Exporter) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, j := range e.jobs {
		j.stop()
		<-j.done
		delete(e.jobs, key)
	}
	e.targets.Set(0)
}

// A job probes one target round after round.
type job struct {
	t                             Target
	series                        *metrics.Target
	rounds, late, skipped, failed prometheus.Counter
	cancel                        context.CancelFunc
	done                          chan struct{}
}

func (j *job) stop() { j.cancel() }

func (e *Exporter) start(t Target, first time.Time) *job {
	ctx, cancel := context.WithCancel(context.Background())
	l := []string{t.Addr, t.Protocol}
	j := &job{
		t:       t,
		series:  e.probes.Target(t.Addr, t.Protocol),
		rounds:  e.rounds.WithLabelValues(l...),
		late:    e.late.WithLabelValues(l...),
		skipped: e.skipped.WithLabelValues(l...),
		failed:  e.failed.WithLabelValues(l...),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go j.run(ctx, first)
	return j
}

// lateBound is how late a round may start and still be on time.
func lateBound(interval time.Duration) time.Duration { return min(interval/10, 100*time.Millisecond) }

// run sends a round at first, first+Interval, first+2×Interval ...: a fixed schedule, so that a
// round that takes long does not shift the ones after it. A round whose time came while the
// one before still ran is skipped and counted.
func (j *job) run(ctx context.Context, first time.Time) {
	defer close(j.done)
	var tr *roundTransport
	defer func() {
		if tr != nil {
			tr.close()
		}
	}()
	timer := time.NewTimer(time.Until(first))
	defer timer.Stop()
	for k := int64(0); ; k++ {
		due := first.Add(time.Duration(k) * j.t.Interval)
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		j.rounds.Inc()
		if time.Since(due) > lateBound(j.t.Interval) {
			j.late.Inc()
		}
		if tr == nil {
			var err error
			if tr, err = dial(ctx, j.t); err != nil {
				j.failed.Inc()
			}
		}
		if tr != nil {
			if err := tr.round(ctx, j.t.Settings, j.series.Event); err != nil && ctx.Err() == nil {
				// A transport that failed is opened again for the next round.
				j.failed.Inc()
				tr.close()
				tr = nil
			}
		}
		if ctx.Err() != nil {
			return
		}
		// Skip the rounds whose time passed while this one ran.
		for now := time.Now(); !first.Add(time.Duration(k+1) * j.t.Interval).After(now); k++ {
			j.skipped.Inc()
		}
	}
}

// A roundTransport is one target's transport across rounds. The engine numbers each round's
// probes from 1, while the transport sees one rising sequence, so that a reply that comes
// after its round ended can never pass for a probe of the next one.
type roundTransport struct {
	t     probe.Transport
	c     io.Closer
	base  int // the transport's seq of this round's probe 0
	count int // this round's probes
}

// Send implements probe.Transport.
func (r *roundTransport) Send(ctx context.Context, seq int) (time.Time, error) {
	return r.t.Send(ctx, r.base+seq)
}

// Receive implements probe.Transport: what comes back for an earlier round is passed over.
func (r *roundTransport) Receive(ctx context.Context) (probe.Packet, error) {
	for {
		p, err := r.t.Receive(ctx)
		if err != nil {
			return p, err
		}
		if s := p.Seq - r.base; s >= 1 && s <= r.count {
			p.Seq = s
			return p, nil
		}
	}
}

func (r *roundTransport) close() { _ = r.c.Close() }

// round runs one round of s's probes through the engine, emitting its events. The engine's
// reader is done when Run returns, so base may move on for the next round.
func (r *roundTransport) round(ctx context.Context, s Settings, emit func(probe.Event)) error {
	r.count = s.Count
	_, err := probe.Run(ctx, r, probe.Options{Count: s.Count, Interval: s.Spacing, Timeout: s.Timeout}, emit)
	r.base += s.Count
	return err
}

var errSource = errors.New("source: not an address of the target's family")

// dial opens the transport of t.
func dial(ctx context.Context, t Target) (*roundTransport, error) {
	var (
		tr  probe.Transport
		c   io.Closer
		err error
	)
	switch t.Protocol {
	case ICMP:
		var conn *icmpping.Conn
		conn, err = dialICMP(ctx, t)
		tr, c = conn, conn
	case UDP:
		var conn *udpping.Conn
		conn, err = udpping.Dial(ctx, udpping.Config{Addr: t.Addr, Size: t.Size, Socket: t.socket(), LocalAddr: t.Source})
		tr, c = conn, conn
	case TCP, TCPConnect:
		cfg := tcpping.Config{Addr: t.Addr, Size: t.Size, Timeout: t.Timeout, LocalAddr: t.Source, Socket: t.socket()}
		if t.Connect == "per-ping" {
			cfg.Connect = tcpping.ConnectPerPing
		}
		if t.Protocol == TCP {
			var cl *tcpping.Client
			cl, err = tcpping.Dial(ctx, cfg)
			tr, c = cl, cl
		} else {
			var k *tcpping.Connector
			k, err = tcpping.DialConnect(ctx, cfg)
			tr, c = k, k
		}
	default:
		err = fmt.Errorf("exporter: unknown protocol %q", t.Protocol)
	}
	if err != nil {
		return nil, err
	}
	return &roundTransport{t: tr, c: c}, nil
}

func dialICMP(ctx context.Context, t Target) (*icmpping.Conn, error) {
	network := "ip"
	if t.Source.IsValid() {
		network = "ip4"
		if t.Source.Is6() && !t.Source.Is4In6() {
			network = "ip6"
		}
	}
	addr, err := icmpping.Resolve(ctx, network, t.Addr)
	if err != nil {
		return nil, err
	}
	if t.Source.IsValid() && t.Source.Unmap().Is4() != addr.Unmap().Is4() {
		return nil, fmt.Errorf("exporter: %w", errSource)
	}
	return icmpping.Dial(ctx, icmpping.Config{Target: addr, Size: t.Size, TTL: t.TTL, Socket: t.socket(), Source: t.Source})
}

// ProbeHandler serves /probe?target=ADDR&module=NAME: one round of the module's probes to
// ADDR, with the same series as the exporter's targets (counting that round alone) and
// pinglab_probe_success, as blackbox_exporter's /probe does. A module is one of the
// configuration's, or a protocol's name (icmp, udp, tcp, tcp-connect) for its defaults.
func (e *Exporter) ProbeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		addr, module := q.Get("target"), q.Get("module")
		if addr == "" || module == "" {
			http.Error(w, "want /probe?target=ADDR&module=NAME", http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		var mods map[string]Settings
		if e.cfg != nil {
			mods = e.cfg.Modules
		}
		s, ok := mods[module]
		e.mu.Unlock()
		if !ok {
			s = Settings{Protocol: module}
			if err := checkSettings(&s); err != nil {
				http.Error(w, fmt.Sprintf("no module %q", module), http.StatusBadRequest)
				return
			}
		}
		t := Target{Addr: addr, Settings: s}
		if t.Protocol != ICMP && !hasPort(addr) {
			http.Error(w, fmt.Sprintf("target %s: %s needs host:port", addr, t.Protocol), http.StatusBadRequest)
			return
		}
		ctx := r.Context()
		// Prometheus says how long it waits; a round longer than that would be cut anyway.
		if v, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64); err == nil && v > 0 {
			if d := time.Duration(v * float64(time.Second)); t.RoundLength() > d {
				http.Error(w, fmt.Sprintf("a round of module %s takes %v, longer than the scrape timeout %v", module, t.RoundLength(), d), http.StatusBadRequest)
				return
			}
		}
		probes := metrics.NewProbes()
		series := probes.Target(addr, t.Protocol)
		success := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pinglab_probe_success", Help: "Whether the round got at least one reply (1) or none (0)."})
		took := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pinglab_probe_round_duration_seconds", Help: "How long the round took, from its first probe to its last resolved."})
		reg := prometheus.NewRegistry()
		reg.MustRegister(probes, success, took)
		start := time.Now()
		received := 0
		tr, err := dial(ctx, t)
		if err == nil {
			err = tr.round(ctx, t.Settings, func(ev probe.Event) {
				if ev.Type == probe.EventReply {
					received++
				}
				series.Event(ev)
			})
			tr.close()
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("probe %s over %s: %v", addr, t.Protocol, err), http.StatusInternalServerError)
			return
		}
		took.Set(time.Since(start).Seconds())
		if received > 0 {
			success.Set(1)
		}
		metrics.Handler(reg).ServeHTTP(w, r)
	})
}

// checkSettings fills in and checks settings that come with no line of a file.
func checkSettings(s *Settings) error {
	if !slices.Contains(protocols, s.Protocol) {
		return fmt.Errorf("no protocol %q", s.Protocol)
	}
	return check(nil, "module "+s.Protocol, s)
}
