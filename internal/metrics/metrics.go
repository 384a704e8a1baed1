// Package metrics exports what pinglab's clients, servers and exporter know as Prometheus
// metrics, through client_golang. It keeps no statistics of its own: the probe collectors are
// one more consumer of the probe engine's events, and the server collectors read the servers'
// own per-client counters when Prometheus scrapes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every pinglab metric.
const namespace = "pinglab"

// NewRegistry returns a registry with the process and Go runtime collectors every pinglab
// /metrics carries, and cs.
func NewRegistry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	all := append([]prometheus.Collector{
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	}, cs...)
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return reg, nil
}

// Handler serves g's metrics in the format the scraper asks for: text, OpenMetrics, or the
// protobuf format that carries native histograms.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		// A scrape that fails half-way (a collector's error) still serves what it has.
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// A Server serves /metrics (and whatever else its mux holds) over HTTP.
type Server struct {
	l    net.Listener
	srv  *http.Server
	done chan struct{}
}

// Listen opens addr ("127.0.0.1:9200", ":9200"; port 0 picks one) and serves g's metrics on
// /metrics, and the extra handlers of mux when it is not nil. The server runs until Close.
func Listen(ctx context.Context, addr string, g prometheus.Gatherer, mux *http.ServeMux) (*Server, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	if mux == nil {
		mux = http.NewServeMux()
	}
	mux.Handle("/metrics", Handler(g))
	s := &Server{
		l: l,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			// A scrape is one small request: nothing a client sends needs more.
			MaxHeaderBytes: 64 << 10,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(l)
	}()
	return s, nil
}

// Addr returns the address the server listens on, with the port the system picked for port 0.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// URL returns the address of the server's /metrics.
func (s *Server) URL() string { return "http://" + s.l.Addr().String() + "/metrics" }

// Close stops the server, letting a scrape under way finish for up to a second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
