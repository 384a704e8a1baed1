package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/metrics"
)

// metricsFlag is --metrics on every client and server.
func metricsFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on `ADDR`/metrics (host:port, \":9200\"; port 0 picks one)"}
}

// clientMetricsFlags are the metrics flags of the clients.
func clientMetricsFlags() []cli.Flag {
	return []cli.Flag{
		metricsFlag(),
		durationFlag("metrics-linger", "", 0, "with --metrics, keep serving the final counts for `DURATION` after the run (Ctrl-C ends it), so that a scrape sees them"),
	}
}

// serverMetricsFlags are the metrics flags of the servers.
func serverMetricsFlags() []cli.Flag {
	return []cli.Flag{
		metricsFlag(),
		&cli.IntFlag{Name: "metrics-clients", Value: metrics.DefaultClients, Usage: "with --metrics, name at most `N` client addresses; the others are summed as client=\"other\""},
	}
}

// checkMetricsAddr checks --metrics before anything is opened or sent.
func checkMetricsAddr(c *cli.Context) error {
	addr := c.String("metrics")
	if addr == "" {
		if c.IsSet("metrics") {
			return exitUsage("%s: --metrics: empty address (want host:port, such as :9200)", c.Command.HelpName)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n uint64
		if n, err = strconv.ParseUint(port, 10, 16); err == nil && n == 0 && port != "0" {
			err = fmt.Errorf("bad port")
		}
	}
	if err != nil {
		return exitUsage("%s: --metrics: %q is not host:port (such as :9200 or 127.0.0.1:9200)", c.Command.HelpName, addr)
	}
	return nil
}

// startMetrics serves cs (with the process and Go collectors) on --metrics, or returns nil
// when the flag is not given, and says where on w.
func startMetrics(ctx context.Context, c *cli.Context, cs ...prometheus.Collector) (*metrics.Server, error) {
	if err := checkMetricsAddr(c); err != nil || c.String("metrics") == "" {
		return nil, err
	}
	reg, err := metrics.NewRegistry(cs...)
	if err != nil {
		return nil, failure(c, err)
	}
	srv, err := metrics.Listen(ctx, c.String("metrics"), reg, nil)
	if err != nil {
		return nil, flagFailure(c, "--metrics", err)
	}
	return srv, nil
}

// metricsClients reads --metrics-clients.
func metricsClients(c *cli.Context) (int, error) {
	n := c.Int("metrics-clients")
	if n < 1 {
		return 0, exitUsage("%s: --metrics-clients: %d is below 1", c.Command.HelpName, n)
	}
	return n, nil
}

// linger keeps a client's metrics served for --metrics-linger after its run, unless the run
// was interrupted (ctx is done), which ends it at once as Ctrl-C ends everything else.
func linger(ctx context.Context, d time.Duration) {
	if d <= 0 || ctx.Err() != nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
