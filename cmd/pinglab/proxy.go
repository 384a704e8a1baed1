package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/metrics"
	"github.com/pinglab/pinglab/lossy"
	"github.com/pinglab/pinglab/lossy/proxy"
)

func init() { register(proxyCommand) }

// proxyImpairments are the impairment flags; each comes as --NAME (both directions),
// --up-NAME (client to server) and --down-NAME (server to client).
var proxyImpairments = []struct {
	name, usage string
	kind        byte // s: share, d: duration, r: rate, i: integer, g: gemodel, t: distribution
}{
	{"loss", "lose this share of datagrams", 's'},
	{"loss-corr", "correlate each loss draw with the last by this share", 's'},
	{"loss-burst", "Gilbert-Elliott loss as netem's gemodel: `P[,R[,1-H[,1-K]]]`", 'g'},
	{"delay", "hold every packet back `D`", 'd'},
	{"jitter", "vary the delay by `J` (uniform: ± J)", 'd'},
	{"distribution", "the jitter's `DIST`: uniform, normal, pareto or paretonormal", 't'},
	{"delay-corr", "correlate each delay draw with the last by this share", 's'},
	{"duplicate", "send this share twice", 's'},
	{"reorder", "send this share at once, ahead of delayed packets (needs --delay)", 's'},
	{"reorder-gap", "delay `N`-1 packets after each reordered one (netem's gap)", 'i'},
	{"corrupt", "flip one bit in this share", 's'},
	{"rate", "limit to `RATE` in tc's units: 1mbit, 100kbit, 500kbps", 'r'},
	{"rate-burst", "let `BYTES` go at once after a pause (0: none, as netem)", 'i'},
	{"overhead", "count `BYTES` more per datagram against the rate (28: IPv4 and UDP headers)", 'i'},
	{"reset", "TCP: reset the connection (RST) after a random prefix of this share of chunks", 's'},
	{"stall", "TCP: stop forwarding for --stall-for before this share of chunks", 's'},
	{"stall-for", "how long a stall lasts `D`", 'd'},
}

func proxyCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Usage: "listen on `ADDR` (host:port; \":12001\" is every address)"},
		&cli.StringFlag{Name: "to", Usage: "relay to the server at `HOST:PORT`"},
		&cli.StringFlag{Name: "proto", Value: "udp", Usage: "`PROTO`: udp or tcp"},
		&cli.Uint64Flag{Name: "seed", Usage: "seed every random choice with `N` for a reproducible run (0: a random seed, printed)"},
		&cli.IntFlag{Name: "limit", Value: proxy.DefaultLimit, Usage: "per direction, hold at most `BYTES` in delay and rate queues (UDP drops past it, TCP waits)"},
		&cli.IntFlag{Name: "max-flows", Value: proxy.DefaultMaxFlows, Usage: "relay at most `N` UDP clients or TCP connections at once"},
		durationFlag("idle", "", proxy.DefaultIdle, "end a UDP flow after `D` without traffic"),
		&cli.IntFlag{Name: "max-size", Value: proxy.DefaultMaxSize, Usage: "drop datagrams larger than `BYTES` (each UDP flow holds a buffer this size)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the table at the end"},
	}
	flags = append(flags, serverMetricsFlags()...)
	for _, pre := range []string{"", "up-", "down-"} {
		for _, im := range proxyImpairments {
			usage := im.usage
			switch pre {
			case "up-":
				usage = "client to server only: " + usage
			case "down-":
				usage = "server to client only: " + usage
			default:
				usage += ", each way"
			}
			if im.kind == 's' {
				usage += " (`SHARE`: \"20%\" or 0.2)"
			}
			flags = append(flags, &cli.StringFlag{Name: pre + im.name, Usage: usage, Hidden: pre != ""})
		}
	}
	return &cli.Command{
		Name:      "proxy",
		Usage:     "a network in the middle: relay UDP or TCP to a server with netem's loss, delay, duplicates, reordering and rate (exercise 4 on any system, no privileges)",
		UsageText: "pinglab proxy --listen ADDR --to HOST:PORT [--proto udp|tcp] [impairments] [--seed N]",
		Description: `Listens on ADDR and relays every client to HOST:PORT, doing to the traffic what
"tc qdisc add dev IF root netem ..." does, in user space: on Linux, macOS and Windows, with
no privileges. Point the clients at the proxy instead of the server.

Every impairment applies to each direction on its own, as if a netem sat on each side of
the link: --loss 20% loses 20% of requests and 20% of replies, 36% of round trips. Give
--up-NAME for client-to-server only, --down-NAME for server-to-client only (--up-loss 20%:
20% of round trips); they override --NAME for their direction. Every impairment flag has
both forms: --up-delay, --down-rate, ...

UDP: each client address gets its own socket to the server, so that clients stay apart and
replies go back to the right one; a flow ends after --idle without traffic. The impairments
are netem's, with its semantics: loss with correlation or the Gilbert-Elliott model
(--loss-burst "5%,30%": p, r, 1-h, 1-k), delay and jitter in netem's distributions,
duplicates (the copy meets loss and delay on its own), reordering (a share sent at once,
ahead of the delayed ones: needs --delay), corruption (one bit of the payload), and a rate
with a queue of --limit bytes (a datagram that does not fit is dropped). Rate comes before
delay, as a link of that bandwidth with that much propagation delay.

TCP: the stream gets delay, jitter (order kept), rate, --stall (a share of chunks before
which forwarding stops for --stall-for; the sender waits) and --reset (a share of chunks
after a random prefix of which both sides get an RST). A chunk is one read from the
sending side: for a pinger, one ping or one reply.

Ctrl-C prints a table per client of what was received, forwarded, lost, dropped at the
queue, duplicated, corrupted, reordered and delayed, each way; --metrics ADDR serves the
same counters live to Prometheus (pinglab_proxy_*{client, dir}).

Examples:
   pinglab udp server --listen 127.0.0.1:12000 &
   pinglab proxy --listen 127.0.0.1:12001 --to 127.0.0.1:12000 --loss 20%
   pinglab udp ping 127.0.0.1:12001 -c 100         # ~36% of round trips lost

   pinglab proxy -l :12001 --to 127.0.0.1:12000 --up-loss 20%          # 20% of requests
   pinglab proxy -l :12001 --to 127.0.0.1:12000 --delay 50ms --jitter 10ms --distribution normal
   pinglab proxy -l :12001 --to 127.0.0.1:12000 --loss-burst 2%,25% --duplicate 1% --seed 7
   pinglab proxy -l :12001 --to 127.0.0.1:12000 --delay 20ms --reorder 25%
   pinglab proxy --proto tcp -l :12001 --to 127.0.0.1:12000 --rate 1mbit --delay 30ms
   pinglab proxy --proto tcp -l :12001 --to 127.0.0.1:12000 --up-reset 20%  # 20% of pings reset`,
		Flags:  flags,
		Action: proxyRun,
	}
}

func proxyRun(c *cli.Context) error {
	cfg, err := proxyConfig(c)
	if err != nil {
		return err
	}
	maxClients, err := metricsClients(c)
	if err != nil {
		return err
	}
	p, err := proxy.Listen(c.Context, cfg)
	if err != nil {
		return failure(c, err)
	}
	msrv, err := startMetrics(c.Context, c, metrics.NewProxy(p.Clients, p.Open, p.Refused, maxClients))
	if err != nil {
		return err
	}
	w := c.App.Writer
	cfg = p.Config()
	if !c.Bool("quiet") {
		fmt.Fprintf(w, "PROXY %s %s -> %s, seed %d\n", cfg.Proto, p.Addr(), p.To(), p.Seed())
		fmt.Fprintf(w, "  up   (client -> server): %s\n", orNothing(cfg.Up.Words()))
		fmt.Fprintf(w, "  down (server -> client): %s\n", orNothing(cfg.Down.Words()))
	}
	if msrv != nil {
		defer msrv.Close()
		fmt.Fprintf(w, "metrics on %s\n", msrv.URL())
	}
	err = p.Serve(c.Context)
	writeProxyTable(w, cfg.Proto, p.Flows(), p.Refused())
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}

func orNothing(s string) string {
	if s == "" {
		return "nothing (passes unchanged)"
	}
	return s
}

// proxyConfig reads the flags; every mistake is a usage error, found before anything opens.
func proxyConfig(c *cli.Context) (proxy.Config, error) {
	name := c.Command.HelpName
	if c.Args().Len() > 0 {
		return proxy.Config{}, exitUsage("%s: unexpected argument %q (addresses go in --listen and --to)", name, c.Args().First())
	}
	cfg := proxy.Config{
		Proto: c.String("proto"), Listen: c.String("listen"), To: c.String("to"), Seed: c.Uint64("seed"),
		Limit: c.Int("limit"), MaxFlows: c.Int("max-flows"), MaxSize: c.Int("max-size"),
	}
	if cfg.Listen == "" || cfg.To == "" {
		return cfg, exitUsage("%s: --listen ADDR and --to HOST:PORT are both needed (see --help)", name)
	}
	for _, a := range []struct{ flag, v string }{{"listen", cfg.Listen}, {"to", cfg.To}} {
		if _, _, err := splitHostPort(a.v); err != nil {
			return cfg, exitUsage("%s: --%s %q: %v", name, a.flag, a.v, err)
		}
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"limit", cfg.Limit}, {"max-flows", cfg.MaxFlows}, {"max-size", cfg.MaxSize}} {
		if n.v <= 0 || (n.flag == "max-size" && n.v > 65535) {
			return cfg, exitUsage("%s: --%s %d: want a positive number%s", name, n.flag, n.v, map[bool]string{true: " up to 65535"}[n.flag == "max-size"])
		}
	}
	var err error
	if cfg.Idle, err = flagDuration(c, "idle"); err != nil {
		return cfg, err
	}
	if cfg.Idle == 0 {
		return cfg, exitUsage("%s: --idle: want a duration above 0", name)
	}
	if cfg.Proto != "udp" && cfg.Proto != "tcp" {
		return cfg, exitUsage("%s: --proto %q: want udp or tcp", name, cfg.Proto)
	}
	if err := checkMetricsAddr(c); err != nil {
		return cfg, err
	}
	for _, dir := range []struct {
		pre string
		to  *proxy.Impairment
	}{{"up-", &cfg.Up}, {"down-", &cfg.Down}} {
		if err := proxyImpairment(c, dir.pre, dir.to); err != nil {
			return cfg, err
		}
		if err := dir.to.Validate(cfg.Proto); err != nil {
			return cfg, exitUsage("%s: %s: %v", name, strings.TrimSuffix(dir.pre, "-"), err)
		}
	}
	return cfg, nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return host, n, nil
}

// proxyImpairment reads one direction's impairment: --up-NAME (or --down-NAME) where given,
// else --NAME.
func proxyImpairment(c *cli.Context, pre string, im *proxy.Impairment) error {
	name := c.Command.HelpName
	for _, f := range proxyImpairments {
		flag := pre + f.name
		if !c.IsSet(flag) {
			flag = f.name
			if !c.IsSet(flag) {
				continue
			}
		}
		v := c.String(flag)
		bad := func(err error) error { return exitUsage("%s: --%s: %v", name, flag, err) }
		switch f.kind {
		case 's':
			share, err := parseShare(v)
			if err != nil {
				return bad(err)
			}
			*shareField(im, f.name) = share
		case 'd':
			d, err := parseDuration(v)
			if err != nil {
				return bad(err)
			}
			switch f.name {
			case "delay":
				im.Delay = d
			case "jitter":
				im.Jitter = d
			case "stall-for":
				im.StallFor = d
			}
		case 'r':
			r, err := lossy.ParseRate(v)
			if err != nil {
				return bad(err)
			}
			im.Rate = r
		case 'i':
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > 1<<30 {
				return bad(fmt.Errorf("%q is not a whole number from 0 up", v))
			}
			switch f.name {
			case "reorder-gap":
				im.ReorderGap = n
			case "rate-burst":
				im.RateBurst = n
			case "overhead":
				im.Overhead = n
			}
		case 'g':
			var shares []float64
			for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
				share, err := parseShare(s)
				if err != nil {
					return bad(err)
				}
				shares = append(shares, share)
			}
			g, err := proxy.Gemodel(shares...)
			if err != nil {
				return bad(err)
			}
			im.LossBurst = &g
		case 't':
			im.Distribution = proxy.Distribution(strings.ToLower(strings.TrimSpace(v)))
		}
	}
	return nil
}

func shareField(im *proxy.Impairment, name string) *float64 {
	switch name {
	case "loss":
		return &im.Loss
	case "loss-corr":
		return &im.LossCorr
	case "delay-corr":
		return &im.DelayCorr
	case "duplicate":
		return &im.Duplicate
	case "reorder":
		return &im.Reorder
	case "corrupt":
		return &im.Corrupt
	case "reset":
		return &im.Reset
	}
	return &im.Stall
}

// maxProxyRows bounds the table on a terminal; the total counts every flow.
const maxProxyRows = 50

// writeProxyTable prints what became of each flow's packets, each way, then the total.
func writeProxyTable(w io.Writer, proto string, flows []proxy.FlowStats, refused uint64) {
	unit := "datagrams"
	if proto == "tcp" {
		unit = "chunks"
	}
	cols := []string{"dir", "received", "forwarded", "bytes", "lost", "queue-drop", "oversize", "dup", "corrupt", "reorder", "delayed"}
	if proto == "tcp" {
		cols = []string{"dir", "received", "forwarded", "bytes", "delayed", "stalled", "resets", "errors"}
	}
	cells := func(c proxy.Counts) []uint64 {
		if proto == "tcp" {
			return []uint64{c.Packets, c.Forwarded, c.Bytes, c.Delayed, c.Stalled, c.Resets, c.Errors}
		}
		return []uint64{c.Packets, c.Forwarded, c.Bytes, c.Lost, c.QueueDrops, c.Oversize, c.Duplicated, c.Corrupted, c.Reordered, c.Delayed}
	}
	width := len("client")
	names := make([]string, len(flows))
	for i, f := range flows {
		// A dual-stack listener (":12001") sees IPv4 clients as ::ffff:a.b.c.d.
		names[i] = clientName(netip.AddrPortFrom(f.Client.Addr().Unmap(), f.Client.Port()))
		if f.Flows > 1 {
			names[i] = fmt.Sprintf("(%d earlier flows)", f.Flows)
		}
		width = max(width, len(names[i]))
	}
	line := func(name string, vals []string) {
		var b strings.Builder
		fmt.Fprintf(&b, "%-*s", width, name)
		for i, v := range vals {
			fmt.Fprintf(&b, "  %*s", max(len(cols[i]), 5), v)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	row := func(name, dir string, c proxy.Counts) {
		vals := []string{dir}
		for _, n := range cells(c) {
			vals = append(vals, strconv.FormatUint(n, 10))
		}
		line(name, vals)
	}
	fmt.Fprintf(w, "\n--- %s proxy statistics (%s) ---\n", proto, unit)
	line("client", cols)
	var up, down proxy.Counts
	n := 0
	for i, f := range flows {
		up.Add(f.Up)
		down.Add(f.Down)
		if i < maxProxyRows {
			row(names[i], "up", f.Up)
			row("", "down", f.Down)
		}
		n += f.Flows
	}
	if len(flows) > maxProxyRows {
		fmt.Fprintf(w, "... %d more flows in the total\n", len(flows)-maxProxyRows)
	}
	row("total", "up", up)
	row("", "down", down)
	fmt.Fprintf(w, "%d flows", n)
	if refused > 0 {
		fmt.Fprintf(w, ", %d refused (the flow table was full)", refused)
	}
	fmt.Fprintln(w)
}
