package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/metrics"
	"github.com/pinglab/pinglab/internal/report"
	"github.com/pinglab/pinglab/udpping"
)

func init() { register(udpCommand) }

func udpCommand() *cli.Command {
	return &cli.Command{
		Name:  "udp",
		Usage: "UDP echo server and pinger (exercise 2)",
		Description: `The assignment's UDP pinger: a server that echoes each datagram in upper case and
drops a share of them, and a client that sends "ping <seq> <time>" and measures.

Examples:
   pinglab udp server --drop 20%
   pinglab udp ping 127.0.0.1 -c 10`,
		Subcommands: []*cli.Command{udpServerCommand(), udpPingCommand(), udpHeartbeatCommand()},
	}
}

func udpServerCommand() *cli.Command {
	return &cli.Command{
		Name:      "server",
		Usage:     "echo UDP datagrams back in upper case, dropping and delaying some",
		UsageText: "pinglab udp server [--listen ADDR] [--drop SHARE] [--icmp-error SHARE [--icmp-error-type TYPE]] [--delay DELAY] [--jitter JITTER] [--seed N] [--quiet]",
		Description: `Echoes every datagram back to its sender with the ASCII letters upper-cased, as the
assignment's server does, and emulates a network on the way: --drop drops a random share,
--delay and --jitter hold replies back (without holding up other clients), --seed makes the
random choices reproducible. Each datagram is logged (who sent it, echoed or dropped) unless
--quiet; Ctrl-C prints a table of what each client sent and what became of it.

--icmp-error answers a random share of the datagrams with an ICMP error instead of an echo
(exercise 6), as a router or firewall would: Destination Unreachable (IPv4 type 3, IPv6 type 1)
with the code of --icmp-error-type, quoting the client's datagram so that the client's system
hands it to the client ("Destination Host Unreachable"). For proto-unreachable over IPv6, which
has no such code, it sends a Parameter Problem "unrecognized next header" (type 4 code 1).
Sending them needs a raw socket: root, or CAP_NET_RAW (sudo setcap cap_net_raw+ep pinglab).
With --drop, a datagram is first dropped or not; the error share is drawn among the rest.

Examples:
   pinglab udp server                              # port 12000, IPv4 and IPv6, no loss
   pinglab udp server --drop 20%                   # the handout's server
   pinglab udp server --drop 0.1 --delay 50ms --jitter 10ms --seed 1
   sudo pinglab udp server --icmp-error 30%       # 30% answered "Destination Host Unreachable"
   sudo pinglab udp server --icmp-error 100% --icmp-error-type port-unreachable
   pinglab udp server --listen 127.0.0.1:5000 --quiet`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Value: udpping.DefaultListen, Usage: "listen on `ADDR` (host:port; \":12000\" is every address, IPv4 and IPv6)"},
			shareFlag("drop", "drop this share of datagrams at random"),
			shareFlag("icmp-error", "answer this share of datagrams (of those not dropped) with an ICMP error instead of an echo; needs CAP_NET_RAW"),
			&cli.StringFlag{Name: "icmp-error-type", Value: udpping.HostUnreachable.String(), Usage: "the ICMP error to send: `TYPE` is " + strings.Join(udpping.ICMPErrorTypes(), ", ")},
			durationFlag("delay", "", 0, "hold each reply back `DELAY`"),
			durationFlag("jitter", "", 0, "vary the delay at random by up to ± `JITTER`"),
			&cli.Uint64Flag{Name: "seed", Usage: "seed the random drops, errors and jitter with `N` for a reproducible run (0: a random seed, printed)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "log nothing per datagram"},
			countsFlag(),
			durationFlag("heartbeat-timeout", "", 3*time.Second, "report a heartbeat client stopped after `SILENCE` without a heartbeat"),
		}, serverMetricsFlags()...),
		Action: udpServer,
	}
}

func udpServer(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return exitUsage("%s: unexpected argument %q (the address goes in --listen)", c.Command.HelpName, c.Args().First())
	}
	cfg := udpping.ServerConfig{Addr: c.String("listen"), Seed: c.Uint64("seed")}
	var err error
	if cfg.Drop, err = flagShare(c, "drop"); err != nil {
		return err
	}
	if cfg.ICMPError, err = flagShare(c, "icmp-error"); err != nil {
		return err
	}
	if cfg.ICMPErrorType, err = udpping.ParseICMPErrorType(c.String("icmp-error-type")); err != nil {
		return flagFailure(c, "--icmp-error-type", err)
	}
	if cfg.Delay, err = flagDuration(c, "delay"); err != nil {
		return err
	}
	if cfg.Jitter, err = flagDuration(c, "jitter"); err != nil {
		return err
	}
	if cfg.HeartbeatTimeout, err = flagDuration(c, "heartbeat-timeout"); err != nil {
		return err
	}
	if cfg.HeartbeatTimeout <= 0 {
		return exitUsage("%s: --heartbeat-timeout: the timeout must be above 0", c.Command.HelpName)
	}
	if err := checkMetricsAddr(c); err != nil {
		return err
	}
	maxClients, err := metricsClients(c)
	if err != nil {
		return err
	}
	every, err := flagDuration(c, "counts-every")
	if err != nil {
		return err
	}
	w := c.App.Writer
	if !c.Bool("quiet") {
		every = 0 // every datagram has its line
		cfg.Log = func(m udpping.Message) {
			if m.Action != udpping.Heartbeat { // heartbeatLine tells of those
				fmt.Fprintln(w, logLine(m))
			}
		}
	}
	cfg.Heartbeat = heartbeatLine(w, c.Bool("quiet"))
	srv, err := udpping.Listen(c.Context, cfg)
	if err != nil {
		return failure(c, err)
	}
	msrv, err := startMetrics(c.Context, c, metrics.NewUDPServer(srv.Stats, cfg.ICMPErrorType.String(), maxClients))
	if err != nil {
		srv.Close()
		return err
	}
	fmt.Fprintf(w, "UDP echo server on %s: %s; Ctrl-C stops it\n", srv.Addr(), impairments(cfg, srv.Seed()))
	if msrv != nil {
		defer msrv.Close()
		fmt.Fprintf(w, "metrics on %s\n", msrv.URL())
	}
	stopCounts := quietCounts(c.Context, every, func(l string) { fmt.Fprintln(w, l) }, func() string { return udpCounts(srv.Stats()) })
	err = srv.Serve(c.Context)
	stopCounts()
	writeServerTable(w, srv.Stats())
	writeHeartbeatTable(w, srv.Heartbeats())
	if err != nil {
		return failure(c, err)
	}
	return nil
}

// impairments says what the server does to the traffic, and the seed that reproduces it.
func impairments(cfg udpping.ServerConfig, seed uint64) string {
	var parts []string
	if cfg.Drop > 0 {
		parts = append(parts, "drop "+percentWords(cfg.Drop))
	}
	if cfg.ICMPError > 0 {
		parts = append(parts, "ICMP "+cfg.ICMPErrorType.String()+" "+percentWords(cfg.ICMPError))
	}
	if d := delayWords(cfg.Delay, cfg.Jitter); d != "" {
		parts = append(parts, d)
	}
	if len(parts) == 0 {
		return "echoing everything"
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (seed %d)", seed)
}

// logLine is the server's line for one datagram, as the handout's server prints it: when, from
// whom, what, and whether it was echoed, dropped or answered with an ICMP error (in the
// handout's words for that).
//
//	16:02:43.123456 received 33 bytes from 127.0.0.1:53211: ping 1 2026-11-22 16:02:43.123456 -> echoed
//	16:02:44.123456 received 33 bytes from 127.0.0.1:53211: ping 2 2026-11-22 16:02:44.123456 -> Sending ICMP 'Host Unreachable' to 127.0.0.1:53211
func logLine(m udpping.Message) string {
	var b strings.Builder
	b.WriteString(m.Time.Format("15:04:05.000000"))
	fmt.Fprintf(&b, " received %d bytes from %s: %s -> ", len(m.Data), m.From, preview(m.Data))
	if m.Action == udpping.ICMPError {
		fmt.Fprintf(&b, "Sending ICMP '%s' to %s", m.ICMPType.Name(m.From.Addr().Is6()), m.From)
	} else {
		b.WriteString(m.Action.String())
	}
	if m.Delay > 0 && m.Action == udpping.Echoed {
		b.WriteString(" after " + m.Delay.Round(time.Microsecond).String())
	}
	if m.Reason != "" {
		b.WriteString(" (" + m.Reason + ")")
	}
	return b.String()
}

// writeServerTable prints what each client sent and what became of it. "shed" counts the
// replies the delay queue had no room for, which dropped counts too.
func writeServerTable(w io.Writer, clients []udpping.ClientStats) {
	// The heartbeats column only when heartbeats came, the shed column only when the delay
	// queue shed: the table of a plain ping server stays the assignment's.
	beats := slices.ContainsFunc(clients, func(st udpping.ClientStats) bool { return st.Heartbeats > 0 })
	shed := slices.ContainsFunc(clients, func(st udpping.ClientStats) bool { return st.Shed > 0 })
	cols := []string{"received", "echoed", "dropped", "errors"}
	if beats {
		cols = append(cols, "heartbeats")
	}
	if shed {
		cols = append(cols, "shed")
	}
	rows := make([]clientRow, len(clients))
	for i, st := range clients {
		counts := []int{st.Received, st.Echoed, st.Dropped, st.Errors}
		if beats {
			counts = append(counts, st.Heartbeats)
		}
		if shed {
			counts = append(counts, st.Shed)
		}
		rows[i] = clientRow{clientName(st.Addr), counts}
	}
	writeClientTable(w, "udp", cols, rows)
}

func udpPingCommand() *cli.Command {
	return &cli.Command{
		Name:      "ping",
		Usage:     "ping a UDP echo server",
		UsageText: "pinglab udp ping [flags] HOST[:PORT]",
		Description: `Sends the assignment's pings, "ping <seq> <YYYY-MM-DD HH:MM:SS.ffffff>" padded to -s bytes, to
a UDP echo server (port 12000 unless given), matches each echo by its sequence number, upper-
or lower-case, and times it with the kernel's receive time. Works against "pinglab udp server",
the handout's server, or any echo server (socat). ICMP errors for the pings are reported as
errors ("Destination Port Unreachable" when no server listens), not as timeouts.

Examples:
   pinglab udp ping 127.0.0.1                     # until Ctrl-C, one ping a second
   pinglab udp ping 127.0.0.1 -c 10 -i 0.2        # 10 pings, 200 ms apart
   pinglab udp ping localhost:5000 -c 5 -s 1000 --format assignment
   pinglab udp ping -6 ::1 -c 100 -i 10ms -q --csv rtt.csv
   pinglab udp ping [::1]:12000 -c 20 --format json
   pinglab udp ping 10.0.0.2 -c 2000 -i 10ms -q --one-way   # which way were they lost?

--one-way asks pinglab's server for a receipt in each echo (written over the padding, so -s is
at least 127 then, and 127 by default): when it read the ping and which of the run's pings it
has had. Each lost ping is then counted lost outbound (the server never had it) or inbound
(its echo was lost on the way back), and each direction's delay and its variation are shown.
Other servers echo the pings as ever and the run reports round-trip loss only.`,
		Flags:  append(append(clientFlags(udpping.DefaultSize), oneWayFlag()), socketFlags()...),
		Action: udpPing,
	}
}

func udpPing(c *cli.Context) error {
	target, err := oneArg(c, "HOST[:PORT]")
	if err != nil {
		return err
	}
	family, err := ipFamily(c)
	if err != nil {
		return err
	}
	size, err := textSize(c)
	if err != nil {
		return err
	}
	cr, err := newClientRun(c)
	if err != nil {
		return err
	}
	h, conn, err := dialUDP(c, target, family, size)
	if err != nil {
		return err
	}
	defer conn.Close()
	return cr.run(c.Context, h, conn)
}

// dialUDP opens the UDP pinger's socket to target, as udp ping and watch's udp: targets do.
func dialUDP(c *cli.Context, target, family string, size int) (report.Header, *udpping.Conn, error) {
	so, src, err := socketOptions(c)
	if err != nil {
		return report.Header{}, nil, err
	}
	cfg := udpping.Config{Addr: target, Network: "udp" + family, Size: size, OneWay: c.Bool("one-way"), Socket: so, LocalAddr: src}
	if cfg.OneWay && !c.IsSet("size") {
		cfg.Size = 0 // the one-way default
	}
	conn, err := udpping.Dial(c.Context, cfg)
	if err != nil {
		return report.Header{}, nil, failure(c, err)
	}
	h := report.Header{Proto: "udp", Target: target, Addr: conn.RemoteAddr().String(), Size: conn.Size(), OneWay: cfg.OneWay}
	return h, conn, nil
}

// udpCounts is a quiet server's line of totals: "12 received, 10 echoed, 2 dropped, 0 errors
// from 1 client".
func udpCounts(clients []udpping.ClientStats) string {
	var t udpping.ClientStats
	for _, st := range clients {
		t.Received += st.Received
		t.Echoed += st.Echoed
		t.Dropped += st.Dropped
		t.Errors += st.Errors
	}
	return fmt.Sprintf("%d received, %d echoed, %d dropped, %d errors from %s", t.Received, t.Echoed, t.Dropped, t.Errors, plural(len(clients), "client"))
}
