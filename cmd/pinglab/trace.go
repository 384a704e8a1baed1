package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/icmpping"
)

func init() { register(traceCommand) }

func traceCommand() *cli.Command {
	return &cli.Command{
		Name:      "trace",
		Usage:     "traceroute with UDP or ICMP probes, without root (exercise 7)",
		UsageText: "pinglab trace [flags] HOST",
		Description: `Sends probes with TTL 1, 2, 3 ... and prints each hop as traceroute does: the router that
answered "Time to live exceeded" and the round-trip time of each probe, "*" where none came
back, and !H !N !P !X for unreachables. It stops at the destination (an echo reply, or port
unreachable for UDP probes sent to ports from 33434 up) or at the first unreachable. UDP
probes and unprivileged ICMP sockets read the errors from the socket's error queue: no root.

Examples:
   pinglab trace -n 10.0.0.2                    # UDP probes, addresses only
   pinglab trace --proto icmp 10.0.0.2          # echo requests, hop names looked up
   pinglab trace -6 -n -q 1 -w 2 fd00::2        # one probe per hop, 2 s wait
   pinglab trace -n -f 3 -m 10 -p 40000 host    # hops 3 to 10, ports from 40000`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "max-hops", Aliases: []string{"m"}, Value: icmpping.DefaultMaxTTL, Usage: "go up to `MAX` hops"},
			&cli.IntFlag{Name: "queries", Aliases: []string{"q"}, Value: icmpping.DefaultQueries, Usage: "send `N` probes per hop (as traceroute; ping's -q is quiet)"},
			durationFlag("wait", "w", icmpping.DefaultWait, "wait up to `WAIT` for a hop's answers (as traceroute; ping's -w is the run's deadline)"),
			&cli.IntFlag{Name: "first", Aliases: []string{"f"}, Value: 1, Usage: "start at hop `FIRST` (as traceroute; ping's -f is flood)"},
			&cli.BoolFlag{Name: "numeric", Aliases: []string{"n"}, Usage: "print addresses only, look no names up"},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: icmpping.DefaultPort, Usage: "send UDP probes to ports from `PORT` up"},
			&cli.StringFlag{Name: "proto", Value: "udp", Usage: "probe with `PROTO`: udp or icmp"},
			&cli.BoolFlag{Name: "icmp", Aliases: []string{"I"}, Usage: "same as --proto icmp (traceroute's -I)"},
			&cli.BoolFlag{Name: "ipv4", Aliases: []string{"4"}, Usage: "use IPv4 only"},
			&cli.BoolFlag{Name: "ipv6", Aliases: []string{"6"}, Usage: "use IPv6 only"},
		},
		Action: traceAction,
	}
}

func traceAction(c *cli.Context) error {
	name := c.Command.HelpName
	target, err := oneArg(c, "HOST")
	if err != nil {
		return err
	}
	family, err := ipFamily(c)
	if err != nil {
		return err
	}
	wait, err := flagDuration(c, "wait")
	if err != nil {
		return err
	}
	proto := c.String("proto")
	if c.Bool("icmp") {
		proto = "icmp"
	}
	cfg := icmpping.TraceConfig{
		Proto:    proto,
		FirstTTL: c.Int("first"),
		MaxTTL:   c.Int("max-hops"),
		Queries:  c.Int("queries"),
		Wait:     wait,
		Port:     c.Int("port"),
		Lookup:   !c.Bool("numeric"),
	}
	if cfg.Wait == 0 {
		return exitUsage("%s: -w: the wait must be above 0", name)
	}
	for _, f := range []string{"first", "max-hops", "queries", "port"} {
		if c.IsSet(f) && c.Int(f) <= 0 {
			return exitUsage("%s: --%s: %d must be above 0", name, f, c.Int(f))
		}
	}
	// Every option is checked before the name is looked up and the header printed.
	if err := cfg.CheckOptions(); err != nil {
		return failure(c, err)
	}
	addr, err := icmpping.Resolve(c.Context, "ip"+family, target)
	if err != nil {
		return failure(c, err)
	}
	cfg.Target = addr
	w := c.App.Writer
	fmt.Fprintf(w, "traceroute to %s (%s), %d hops max, %d byte packets\n", target, addr, max(cfg.MaxTTL, 1), cfg.PacketLen())
	err = icmpping.Trace(c.Context, cfg, func(h icmpping.Hop) { writeHop(w, h, cfg.Lookup) })
	switch {
	case c.Context.Err() != nil:
		return cli.Exit("", 1)
	case err != nil:
		return failure(c, err)
	}
	return nil
}

// writeHop prints a hop as traceroute does:
//
//	1  10.0.0.1  0.123 ms  0.101 ms  0.099 ms
//	2  * * *
//	3  10.0.2.2  0.301 ms !H  *  10.0.2.2  0.290 ms !H
//
// An address is printed before the first time that follows it, and again where it changes.
func writeHop(w io.Writer, h icmpping.Hop, names bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%2d ", h.TTL)
	var last netip.Addr
	for _, p := range h.Probes {
		if !p.From.IsValid() {
			if p.Err != nil {
				// The probe could not be sent: traceroute shows the mark alone.
				b.WriteString(" *")
				if a := p.Annotation(); a != "" {
					b.WriteString(" " + a)
				}
				continue
			}
			b.WriteString(" *")
			continue
		}
		if p.From != last {
			if names {
				n := p.Name
				if n == "" {
					n = p.From.String()
				}
				fmt.Fprintf(&b, " %s (%s)", n, p.From)
			} else {
				fmt.Fprintf(&b, " %s", p.From)
			}
			last = p.From
		}
		fmt.Fprintf(&b, "  %.3f ms", float64(p.RTT.Nanoseconds())/1e6)
		if a := p.Annotation(); a != "" {
			b.WriteString(" " + a)
		}
	}
	fmt.Fprintln(w, b.String())
}
