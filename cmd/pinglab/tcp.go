package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/metrics"
	"github.com/pinglab/pinglab/internal/report"
	"github.com/pinglab/pinglab/tcpping"
)

func init() { register(tcpCommand) }

func tcpCommand() *cli.Command {
	return &cli.Command{
		Name:  "tcp",
		Usage: "TCP echo server (a goroutine per connection) and TCP pinger (exercise 3)",
		Description: `The assignment's TCP pinger: a threaded server that echoes in upper case and answers a
dropped ping "LOST", and a client that keeps one connection (or opens one per ping).

Examples:
   pinglab tcp server --drop 20% --seed 1
   pinglab tcp ping 127.0.0.1 -c 10
   pinglab tcp ping [::1]:12000 -c 5 --connect per-ping`,
		Subcommands: []*cli.Command{
			tcpServerCommand(),
			tcpPingCommand(),
		},
	}
}

func tcpServerCommand() *cli.Command {
	return &cli.Command{
		Name:      "server",
		Usage:     "echo what clients send in upper case, a goroutine per connection, dropping and delaying on demand",
		UsageText: "pinglab tcp server [--listen ADDR] [--drop SHARE] [--drop-mode lost|silent|close] [--delay DELAY] [--jitter JITTER] [--seed N] [limits]",
		Description: `Serves the handout's client (one message per connection, no newline) and pinglab's
(newline-terminated pings over one connection) alike. A dropped message is answered "LOST"
and the connection closed, as the handout's server does (--drop-mode lost); --drop-mode
silent swallows it and keeps the connection, close closes without a word. Each message and
connection is logged unless --quiet; Ctrl-C prints a table per client host.

Examples:
   pinglab tcp server                                  # port 12000, IPv4 and IPv6
   pinglab tcp server --drop 20% --seed 1              # the handout's server: 20% answered LOST
   pinglab tcp server --drop 20% --drop-mode silent    # lose pings without closing connections
   pinglab tcp server --delay 50ms --jitter 10ms -q    # a slow network, no per-message log
   pinglab tcp server --listen 127.0.0.1:12001 --max-conns 100 --idle-timeout 10s`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Value: tcpping.DefaultListen, Usage: "listen on `ADDR` (host:port; \":12000\" is every address, IPv4 and IPv6)"},
			shareFlag("drop", "drop this share of messages at random"),
			&cli.StringFlag{Name: "drop-mode", Value: tcpping.DropLost.String(), Usage: "what a drop does, `MODE`: lost (answer LOST and close), silent (swallow, keep the connection) or close (close without a word)"},
			durationFlag("delay", "", 0, "hold each reply back by `DELAY`"),
			durationFlag("jitter", "", 0, "vary the delay uniformly by up to ± `JITTER`"),
			&cli.Uint64Flag{Name: "seed", Usage: "seed the drops and jitter with `N` for a reproducible run (0: random)"},
			&cli.IntFlag{Name: "max-conns", Value: tcpping.DefaultMaxConns, Usage: "serve at most `N` connections at once; more are told \"ERROR server busy\" and closed"},
			&cli.IntFlag{Name: "max-conns-per-host", Value: tcpping.DefaultMaxConnsPerHost, Usage: "serve at most `N` connections from one client address; more are told \"ERROR server busy\" and closed"},
			durationFlag("idle-timeout", "", tcpping.DefaultIdleTimeout, "close a connection that sends nothing for `IDLE` (0: never)"),
			durationFlag("message-timeout", "", tcpping.DefaultMessageTimeout, "close a connection whose line takes longer than `T` from its first byte to its newline (0: never)"),
			&cli.IntFlag{Name: "max-line", Value: tcpping.DefaultMaxLineLength, Usage: "close a connection that sends a message longer than `BYTES` without a newline"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not log connections and messages"},
			countsFlag(),
		}, serverMetricsFlags()...),
		Action: tcpServer,
	}
}

func tcpServer(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Args().Len() > 0 {
		return exitUsage("%s: unexpected argument %q (the address goes in --listen)", name, c.Args().First())
	}
	drop, err := flagShare(c, "drop")
	if err != nil {
		return err
	}
	mode, err := tcpping.ParseDropMode(c.String("drop-mode"))
	if err != nil {
		return exitUsage("%s: --drop-mode: %q is not lost, silent or close", name, c.String("drop-mode"))
	}
	delay, err := flagDuration(c, "delay")
	if err != nil {
		return err
	}
	jitter, err := flagDuration(c, "jitter")
	if err != nil {
		return err
	}
	idle, err := flagDuration(c, "idle-timeout")
	if err != nil {
		return err
	}
	if idle == 0 {
		idle = -1 // the package's "never"
	}
	maxConns := c.Int("max-conns")
	if maxConns < 1 {
		return exitUsage("%s: --max-conns: %d is below 1", name, maxConns)
	}
	perHost := c.Int("max-conns-per-host")
	if perHost < 1 {
		return exitUsage("%s: --max-conns-per-host: %d is below 1", name, perHost)
	}
	msgTimeout, err := flagDuration(c, "message-timeout")
	if err != nil {
		return err
	}
	if msgTimeout == 0 {
		msgTimeout = -1 // the package's "never"
	}
	maxLine := c.Int("max-line")
	if maxLine < 1 {
		return exitUsage("%s: --max-line: %d is below 1", name, maxLine)
	}
	if err := checkMetricsAddr(c); err != nil {
		return err
	}
	maxClients, err := metricsClients(c)
	if err != nil {
		return err
	}
	out := c.App.Writer
	var mu sync.Mutex // connections log from their own goroutines
	cfg := tcpping.ServerConfig{
		Addr:            c.String("listen"),
		Drop:            drop,
		DropMode:        mode,
		Delay:           delay,
		Jitter:          jitter,
		Seed:            c.Uint64("seed"),
		MaxConns:        maxConns,
		MaxConnsPerHost: perHost,
		IdleTimeout:     idle,
		MessageTimeout:  msgTimeout,
		MaxLineLength:   maxLine,
	}
	every, err := flagDuration(c, "counts-every")
	if err != nil {
		return err
	}
	if !c.Bool("quiet") {
		every = 0 // every message has its line
		cfg.Log = func(e tcpping.Event) {
			line := tcpEventLine(e)
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(out, line)
		}
	}
	srv, err := tcpping.Listen(c.Context, cfg)
	if err != nil {
		return failure(c, err)
	}
	msrv, err := startMetrics(c.Context, c, metrics.NewTCPServer(srv.Stats, srv.Conns, maxClients))
	if err != nil {
		srv.Close()
		return err
	}
	mu.Lock()
	if w := srv.Warning(); w != "" {
		fmt.Fprintf(c.App.ErrWriter, "%s: warning: %s\n", name, w)
	}
	cfg.MaxConns = srv.MaxConns()
	fmt.Fprintf(out, "TCP echo server on %s: %s; Ctrl-C stops it\n", srv.Addr(), tcpImpairments(cfg, srv.Seed()))
	if msrv != nil {
		defer msrv.Close()
		fmt.Fprintf(out, "metrics on %s\n", msrv.URL())
	}
	mu.Unlock()
	stopCounts := quietCounts(c.Context, every, func(l string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, l)
	}, func() string { return tcpCounts(srv.Stats()) })
	serveErr := srv.Serve(c.Context)
	stopCounts()
	mu.Lock()
	defer mu.Unlock()
	writeTCPTable(out, srv.Stats())
	if serveErr != nil {
		return failure(c, serveErr)
	}
	return nil
}

// tcpImpairments says what the server does to the traffic, the seed that reproduces it and
// its limits.
func tcpImpairments(cfg tcpping.ServerConfig, seed uint64) string {
	var parts []string
	if cfg.Drop > 0 {
		parts = append(parts, "drop "+strconv.FormatFloat(100*cfg.Drop, 'g', 4, 64)+"% ("+cfg.DropMode.String()+")")
	}
	if d := delayWords(cfg.Delay, cfg.Jitter); d != "" {
		parts = append(parts, d)
	}
	s := "echoing everything"
	if len(parts) > 0 {
		s = strings.Join(parts, ", ") + fmt.Sprintf(" (seed %d)", seed)
	}
	idle := "no idle timeout"
	if cfg.IdleTimeout > 0 {
		idle = "idle timeout " + cfg.IdleTimeout.String()
	}
	return fmt.Sprintf("%s; at most %d connections, %s, lines up to %d bytes", s, cfg.MaxConns, idle, cfg.MaxLineLength)
}

// tcpEventLine is the server's line for one event, in the handout server's words, after the
// time it happened:
//
//	16:02:43.123456 Connected to 127.0.0.1:53211
//	16:02:43.123501 received 33 bytes from 127.0.0.1:53211: ping 1 2026-11-22 16:02:43.123456 -> echoed
//	16:02:44.123501 received 33 bytes from 127.0.0.1:53211: ping 2 2026-11-22 16:02:44.123456 -> dropped (answered LOST)
//	16:02:44.123620 Connection with 127.0.0.1:53211 closed (answered LOST)
func tcpEventLine(e tcpping.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Format("15:04:05.000000") + " ")
	switch e.Type {
	case tcpping.Connected:
		b.WriteString("Connected to " + e.Client.String())
	case tcpping.Closed:
		b.WriteString("Connection with " + e.Client.String() + " closed")
		if e.Reason != "" {
			b.WriteString(" (" + e.Reason + ")")
		}
	case tcpping.Refused:
		b.WriteString("Refused " + e.Client.String() + ": " + e.Reason)
	case tcpping.Message:
		fmt.Fprintf(&b, "received %d bytes from %s: %s -> %s", len(e.Data), e.Client, preview(e.Data), e.Action)
		if e.Delay > 0 && e.Action == tcpping.Echoed {
			b.WriteString(" after " + e.Delay.Round(time.Microsecond).String())
		}
		if e.Reason != "" {
			b.WriteString(" (" + e.Reason + ")")
		}
	}
	return b.String()
}

// writeTCPTable prints, per client host, its connections and what became of its messages.
func writeTCPTable(w io.Writer, clients []tcpping.ClientStats) {
	rows := make([]clientRow, len(clients))
	for i, st := range clients {
		rows[i] = clientRow{clientName(st.Addr), []int{st.Conns, st.Refused, st.Received, st.Echoed, st.Dropped}}
	}
	writeClientTable(w, "tcp", []string{"connections", "refused", "received", "echoed", "dropped"}, rows)
}

func tcpPingCommand() *cli.Command {
	return &cli.Command{
		Name:      "ping",
		Usage:     "ping a TCP echo server with the handout's messages, over one connection or one per ping",
		UsageText: "pinglab tcp ping [options] HOST[:PORT]",
		Description: `Sends "ping <seq> <YYYY-MM-DD HH:MM:SS.ffffff>" newline-terminated, padded to -s bytes,
and prints each echo's round trip like iputils ping. A "LOST" answer is a lost probe, after
which the client connects again. --connect per-ping opens a connection for every ping, as
the handout's client does, and prints the connect time too. A refused, reset or unreachable
connection is reported as that probe's error. The port defaults to 12000.

Examples:
   pinglab tcp ping 127.0.0.1 -c 5                        # one kept connection
   pinglab tcp ping 127.0.0.1 -c 5 --connect per-ping     # a connection per ping, as the handout's client
   pinglab tcp ping [::1]:12000 -c 10 -i 0.2 -s 64        # IPv6, 5 pings a second, 64-byte messages
   pinglab tcp ping localhost -c 10 --format assignment   # the handout's output
   pinglab tcp ping 127.0.0.1 -c 100 -i 0 -q --csv rtt.csv
   pinglab tcp ping 10.0.0.2 -c 300 -i 10ms -q --one-way  # which way was the delay?

--one-way asks pinglab's server for a receipt in each echo, as "udp ping --one-way" does (-s
at least 127 then): TCP loses no ping on the way (it retransmits), so it shows which way the
delay and its variation were, and which way a ping that timed out was stuck.`,
		Flags: append(append(clientFlags(tcpping.DefaultSize),
			&cli.StringFlag{Name: "connect", Value: tcpping.ConnectKeep.String(), Usage: "`MODE`: keep (one connection, reconnecting after LOST) or per-ping (a new connection per ping)"},
			oneWayFlag(),
		), socketFlags()...),
		Action: tcpPing,
	}
}

func tcpPing(c *cli.Context) error {
	name := c.Command.HelpName
	host, err := oneArg(c, "HOST[:PORT]")
	if err != nil {
		return err
	}
	family, err := ipFamily(c)
	if err != nil {
		return err
	}
	mode, err := tcpping.ParseConnectMode(c.String("connect"))
	if err != nil {
		return exitUsage("%s: --connect: %q is not keep or per-ping", name, c.String("connect"))
	}
	size, err := textSize(c)
	if err != nil {
		return err
	}
	// Every flag is checked before Dial, which connects at once in keep mode.
	cr, err := newClientRun(c)
	if err != nil {
		return err
	}
	h, cl, err := dialTCP(c, host, family, size, mode, cr.opts.Timeout)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cr.run(c.Context, h, cl)
}

// dialTCP opens the TCP pinger's client to host, as tcp ping and watch's tcp: targets do.
func dialTCP(c *cli.Context, host, family string, size int, mode tcpping.ConnectMode, timeout time.Duration) (report.Header, *tcpping.Client, error) {
	if c.Bool("one-way") && !c.IsSet("size") {
		size = 0 // the one-way default
	}
	so, src, err := socketOptions(c)
	if err != nil {
		return report.Header{}, nil, err
	}
	cl, err := tcpping.Dial(c.Context, tcpping.Config{
		Socket:    so,
		LocalAddr: src,
		Addr:      host,
		Network:   "tcp" + family,
		Size:      size,
		Connect:   mode,
		Timeout:   timeout,
		OneWay:    c.Bool("one-way"),
	})
	if err != nil {
		return report.Header{}, nil, failure(c, err)
	}
	h := report.Header{Proto: "tcp", Target: host, Addr: cl.RemoteAddr().String(), Size: cl.Size(), OneWay: c.Bool("one-way")}
	return h, cl, nil
}

// tcpCounts is a quiet server's line of totals: "3 connections, 0 refused, 12 received, 10
// echoed, 2 dropped from 1 client host".
func tcpCounts(clients []tcpping.ClientStats) string {
	var t tcpping.ClientStats
	for _, st := range clients {
		t.Conns += st.Conns
		t.Refused += st.Refused
		t.Received += st.Received
		t.Echoed += st.Echoed
		t.Dropped += st.Dropped
	}
	return fmt.Sprintf("%d connections, %d refused, %d received, %d echoed, %d dropped from %s",
		t.Conns, t.Refused, t.Received, t.Echoed, t.Dropped, plural(len(clients), "client host"))
}
