package metrics

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pinglab/pinglab/tcpping"
	"github.com/pinglab/pinglab/udpping"
)

// DefaultClients is how many client addresses a server's metrics name one by one; the traffic
// of the others is summed under client="other". A class of thirty machines fits many times,
// and a scan from forged addresses adds one series, not thousands.
const DefaultClients = 100

// OtherClients is the client label of the addresses past the bound.
const OtherClients = "other"

// The server collectors read the servers' own per-client tables at each scrape, so that a
// server counts nothing twice and a scrape costs the serving path nothing. Clients are
// labelled by IP address, not by port: a client's every run comes from a new port, and a
// series per run would never end. A table's rows only ever grow and keep their order, so an
// address labelled once stays labelled and every series only ever rises, as a counter must.

// A row is one client's counts, in the order of its collector's descriptions.
type row struct {
	addr   netip.Addr // the zero Addr: the server's own "beyond its table" row
	counts []int
}

// fold sums rows per address, the first max addresses each under their own name, the others
// and the server's overflow row under OtherClients, which comes last when there is one.
func fold(max int, rows []row) (names []string, sums [][]float64) {
	index := make(map[netip.Addr]int)
	other := -1
	for _, r := range rows {
		i, ok := index[r.addr]
		if !ok {
			switch {
			case r.addr.IsValid() && len(index) < max:
				i = len(names)
				index[r.addr] = i
				names = append(names, r.addr.String())
				sums = append(sums, make([]float64, len(r.counts)))
			default:
				if other < 0 {
					other = len(names)
					names = append(names, OtherClients)
					sums = append(sums, make([]float64, len(r.counts)))
				}
				i = other
			}
		}
		for j, n := range r.counts {
			sums[i][j] += float64(n)
		}
	}
	if other >= 0 && other != len(names)-1 {
		// Keep "other" last so that the exposition reads in the order clients came.
		names = append(append(names[:other:other], names[other+1:]...), OtherClients)
		o := sums[other]
		sums = append(append(sums[:other:other], sums[other+1:]...), o)
	}
	return names, sums
}

// A clientCollector exports per-client counters from a server's table.
type clientCollector struct {
	max   int
	descs []*prometheus.Desc
	// consts are label values after client for each desc ("host-unreachable" for the type of
	// the UDP server's errors).
	consts [][]string
	rows   func() []row
	extra  func(ch chan<- prometheus.Metric)
	gauges []*prometheus.Desc
}

func (c *clientCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	for _, d := range c.gauges {
		ch <- d
	}
}

func (c *clientCollector) Collect(ch chan<- prometheus.Metric) {
	names, sums := fold(c.max, c.rows())
	for i, name := range names {
		for j, d := range c.descs {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, sums[i][j], append([]string{name}, c.consts[j]...)...)
		}
	}
	if c.extra != nil {
		c.extra(ch)
	}
}

func newDesc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
}

// NewUDPServer returns the collector of a UDP server's counters, read from stats (a
// udpping.Server's Stats) at each scrape. errorType names the ICMP error the server answers
// with (its ICMPErrorType); max bounds the clients named one by one (0: DefaultClients).
func NewUDPServer(stats func() []udpping.ClientStats, errorType string, max int) prometheus.Collector {
	if max <= 0 {
		max = DefaultClients
	}
	const sub = "udp_server"
	return &clientCollector{
		max: max,
		descs: []*prometheus.Desc{
			newDesc(sub, "datagrams_received_total", "Datagrams received, by client address.", "client"),
			newDesc(sub, "datagrams_echoed_total", "Datagrams echoed back, by client address.", "client"),
			newDesc(sub, "datagrams_dropped_total", "Datagrams dropped (at random, or for a full delay queue), by client address.", "client"),
			newDesc(sub, "icmp_errors_sent_total", "Datagrams answered with an ICMP error instead of an echo, by client address and error type.", "client", "type"),
		},
		consts: [][]string{nil, nil, nil, {errorType}},
		rows: func() []row {
			st := stats()
			rows := make([]row, len(st))
			for i, s := range st {
				rows[i] = row{s.Addr.Addr(), []int{s.Received, s.Echoed, s.Dropped, s.Errors}}
			}
			return rows
		},
	}
}

// NewTCPServer returns the collector of a TCP server's counters, read from stats (a
// tcpping.Server's Stats) at each scrape, and of its open connections, read from open (its
// Conns). max bounds the clients named one by one (0: DefaultClients).
func NewTCPServer(stats func() []tcpping.ClientStats, open func() int, max int) prometheus.Collector {
	if max <= 0 {
		max = DefaultClients
	}
	const sub = "tcp_server"
	openDesc := newDesc(sub, "connections_open", "Connections being served.")
	return &clientCollector{
		max: max,
		descs: []*prometheus.Desc{
			newDesc(sub, "connections_accepted_total", "Connections accepted and served, by client address.", "client"),
			newDesc(sub, "connections_refused_total", "Connections refused because the server was serving its maximum, by client address.", "client"),
			newDesc(sub, "connections_closed_total", "Served connections that ended, by client address.", "client"),
			newDesc(sub, "messages_received_total", "Messages (lines) received, by client address.", "client"),
			newDesc(sub, "messages_echoed_total", "Messages echoed back, by client address.", "client"),
			newDesc(sub, "messages_dropped_total", "Messages dropped, by client address.", "client"),
		},
		consts: make([][]string, 6),
		rows: func() []row {
			st := stats()
			rows := make([]row, len(st))
			for i, s := range st {
				rows[i] = row{s.Addr, []int{s.Conns, s.Refused, s.Closed, s.Received, s.Echoed, s.Dropped}}
			}
			return rows
		},
		gauges: []*prometheus.Desc{openDesc},
		extra: func(ch chan<- prometheus.Metric) {
			ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(open()))
		},
	}
}
