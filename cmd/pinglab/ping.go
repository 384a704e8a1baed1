package main

import (
	"os"
	"runtime"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/icmpping"
	"github.com/pinglab/pinglab/internal/report"
)

func init() { register(pingCommand) }

// minUserInterval is iputils' floor for users other than root.
const minUserInterval = 2 * time.Millisecond

func pingCommand() *cli.Command {
	flags := append(clientFlags(icmpping.DefaultSize),
		&cli.IntFlag{Name: "ttl", Aliases: []string{"t"}, Usage: "send with time to live (IPv6: hop limit) `TTL`, 1..255"},
		&cli.BoolFlag{Name: "privileged", Usage: "use a raw socket (root or CAP_NET_RAW) instead of trying an unprivileged datagram socket first"},
	)
	return &cli.Command{
		Name:      "ping",
		Usage:     "ICMP / ICMPv6 echo, as iputils ping (exercise 1)",
		UsageText: "pinglab ping [flags] HOST",
		Description: `Sends echo requests carrying the send time and a per-run cookie, and prints the replies,
the ICMP errors that come back ("From 10.0.0.1 icmp_seq=3 Destination Host Unreachable") and
the summary as iputils ping does, with the same exit codes. No root needed where the system
allows unprivileged ICMP (net.ipv4.ping_group_range); otherwise a raw socket is used, and when
neither can be opened pinglab says what to do.

Examples:
   pinglab ping 127.0.0.1 -c 3                  # three pings, one a second
   pinglab ping ::1 -c 10 -i 0.2 -s 1000         # IPv6, 200 ms apart, 1000-byte payload
   pinglab ping 10.0.0.2 -t 1 -c 1              # "Time to live exceeded" from the first router
   pinglab ping localhost -c 100 -i 10ms -q --format json
   sudo pinglab ping -f -c 1000 127.0.0.1        # flood: as fast as replies come back`,
		Flags:  flags,
		Action: icmpPing,
	}
}

func icmpPing(c *cli.Context) error {
	name := c.Command.HelpName
	target, err := oneArg(c, "HOST")
	if err != nil {
		return err
	}
	family, err := ipFamily(c)
	if err != nil {
		return err
	}
	cr, err := newClientRun(c)
	if err != nil {
		return err
	}
	// iputils: -f without -i sends as fast as the replies come back, which only root may.
	if !intervalAllowed(os.Getuid(), cr.opts.Interval) {
		return exitUsage("%s: cannot flood, minimal interval for user must be >= 2 ms, use -i 0.002 (or higher)", name)
	}
	if cr.opts.Flood && cr.opts.Interval == 0 {
		// A flood is one goroutine sending and reading (probe.DeadlineReceiver). A second P
		// only adds a thread parked in epoll that every send and every reply wakes, for
		// nothing (perf: a quarter of the time went to those wake-ups): issue 8.
		runtime.GOMAXPROCS(1)
	}
	ttl := c.Int("ttl")
	if c.IsSet("ttl") && (ttl < 1 || ttl > 255) {
		return exitUsage("%s: -t: %d is out of range 1..255", name, ttl)
	}
	size := c.Int("size")
	addr, err := icmpping.Resolve(c.Context, "ip"+family, target)
	if err != nil {
		return failure(c, err)
	}
	conn, err := icmpping.Dial(c.Context, icmpping.Config{Target: addr, Size: size, TTL: ttl, Privileged: c.Bool("privileged")})
	if err != nil {
		return failure(c, err)
	}
	defer conn.Close()
	h := report.Header{Proto: "icmp", Target: target, Addr: addr.String(), Size: size,
		Line: icmpping.HeaderLine(target, addr, size)}
	return cr.run(c.Context, h, conn)
}

// intervalAllowed applies iputils' rule: only root may send faster than every 2 ms (-f, -i 0).
func intervalAllowed(uid int, d time.Duration) bool { return uid == 0 || d >= minUserInterval }
