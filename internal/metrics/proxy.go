package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pinglab/pinglab/lossy/proxy"
)

// proxyCounters are the per-client, per-direction counters of pinglab proxy, with what each
// reads from proxy.Counts.
var proxyCounters = []struct {
	name, help string
	get        func(proxy.Counts) uint64
}{
	{"packets_received_total", "Datagrams (TCP: chunks) received from the sending side, by client address and direction.", func(c proxy.Counts) uint64 { return c.Packets }},
	{"packets_forwarded_total", "Datagrams (TCP: chunks) sent on, duplicates included, by client address and direction.", func(c proxy.Counts) uint64 { return c.Forwarded }},
	{"bytes_forwarded_total", "Bytes sent on, by client address and direction.", func(c proxy.Counts) uint64 { return c.Bytes }},
	{"packets_lost_total", "Datagrams dropped by the loss model, by client address and direction.", func(c proxy.Counts) uint64 { return c.Lost }},
	{"packets_queue_dropped_total", "Datagrams dropped for a full queue, by client address and direction.", func(c proxy.Counts) uint64 { return c.QueueDrops }},
	{"packets_oversize_total", "Datagrams dropped for being larger than --max-size, by client address and direction.", func(c proxy.Counts) uint64 { return c.Oversize }},
	{"packets_duplicated_total", "Datagrams sent twice, by client address and direction.", func(c proxy.Counts) uint64 { return c.Duplicated }},
	{"packets_corrupted_total", "Datagrams with a bit flipped, by client address and direction.", func(c proxy.Counts) uint64 { return c.Corrupted }},
	{"packets_reordered_total", "Datagrams sent ahead of the delayed ones, by client address and direction.", func(c proxy.Counts) uint64 { return c.Reordered }},
	{"packets_delayed_total", "Datagrams (TCP: chunks) held back by delay, rate or stall, by client address and direction.", func(c proxy.Counts) uint64 { return c.Delayed }},
	{"stalls_total", "TCP stalls, by client address and direction.", func(c proxy.Counts) uint64 { return c.Stalled }},
	{"resets_total", "TCP connections reset, by client address and direction.", func(c proxy.Counts) uint64 { return c.Resets }},
	{"send_errors_total", "Sends that failed (the server's port closed, say), by client address and direction.", func(c proxy.Counts) uint64 { return c.Errors }},
}

// A proxyCollector exports pinglab proxy's counters, read from its per-client totals at each
// scrape.
type proxyCollector struct {
	max             int
	clients         func() []proxy.FlowStats
	open, refused   func() float64
	descs           []*prometheus.Desc
	openD, refusedD *prometheus.Desc
}

// NewProxy returns the collector of a proxy's counters: clients is its Clients, open its Open
// and refused its Refused. max bounds the client addresses named one by one (0:
// DefaultClients); the others are summed under client="other".
func NewProxy(clients func() []proxy.FlowStats, open func() int, refused func() uint64, max int) prometheus.Collector {
	if max <= 0 {
		max = DefaultClients
	}
	const sub = "proxy"
	c := &proxyCollector{
		max:      max,
		clients:  clients,
		open:     func() float64 { return float64(open()) },
		refused:  func() float64 { return float64(refused()) },
		openD:    newDesc(sub, "flows_open", "UDP flows and TCP connections being relayed."),
		refusedD: newDesc(sub, "flows_refused_total", "New flows refused because --max-flows were open."),
	}
	for _, pc := range proxyCounters {
		c.descs = append(c.descs, newDesc(sub, pc.name, pc.help, "client", "dir"))
	}
	return c
}

func (c *proxyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.openD
	ch <- c.refusedD
}

func (c *proxyCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.clients()
	rows := make([]row, len(st))
	n := len(proxyCounters)
	for i, s := range st {
		counts := make([]int, 2*n)
		for j, pc := range proxyCounters {
			counts[j], counts[n+j] = int(pc.get(s.Up)), int(pc.get(s.Down))
		}
		rows[i] = row{s.Client.Addr(), counts}
	}
	names, sums := fold(c.max, rows)
	for i, name := range names {
		for j, d := range c.descs {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, sums[i][j], name, "up")
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, sums[i][n+j], name, "down")
		}
	}
	ch <- prometheus.MustNewConstMetric(c.openD, prometheus.GaugeValue, c.open())
	ch <- prometheus.MustNewConstMetric(c.refusedD, prometheus.CounterValue, c.refused())
}
