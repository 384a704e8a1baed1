package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/pinglab/pinglab/lossy"
)

func init() { register(lossyCommand) }

func lossyCommand() *cli.Command {
	return &cli.Command{
		Name:  "lossy",
		Usage: "make loss and ICMP rejects below the programs: netem and nftables, through netlink (exercises 4 and 5; Linux, CAP_NET_ADMIN)",
		Description: `Every scenario lives in what pinglab owns: one nftables table "inet pinglab" and a netem
qdisc with handle 7067:. Each apply first clears what pinglab set before, so one scenario is
active per namespace. Without --for a scenario stays until "pinglab lossy clear"; with --for
it is removed after that long, or at Ctrl-C / SIGTERM. --netns puts it in a namespace, such
as a lab host (pinglab lab up).

Examples:
   sudo pinglab lossy drop --netns pinglab-server --prob 20% --proto udp --port 12000
   sudo pinglab lossy reject --netns pinglab-server --with host-unreachable --for 30s
   sudo pinglab lossy netem --netns pinglab-server --dev eth0 --loss 20%
   sudo pinglab lossy show --netns pinglab-server
   sudo pinglab lossy clear --netns pinglab-server`,
		Subcommands: []*cli.Command{
			lossyNetemCommand(),
			lossyDropCommand(),
			lossyRejectCommand(),
			lossyShowCommand(),
			lossyClearCommand(),
		},
	}
}

func netnsFlag() cli.Flag {
	return &cli.StringFlag{Name: "netns", Usage: "work in network namespace `NS` (a name under /run/netns, e.g. pinglab-server, or a path)"}
}

func forFlag() cli.Flag {
	return durationFlag("for", "", 0, "keep the scenario `DURATION`, then remove it (0: until pinglab lossy clear)")
}

func matchFlags(what string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "proto", Usage: "only `PROTO`: udp, tcp or icmp (ICMP and ICMPv6); default every packet"},
		&cli.UintFlag{Name: "port", Usage: "only this host's `PORT` (the server's port; with no --proto: udp and tcp)"},
		&cli.StringFlag{Name: "from", Usage: what + " only packets from `ADDR` (an address or prefix, IPv4 or IPv6)"},
	}
}

func lossyNetemCommand() *cli.Command {
	return &cli.Command{
		Name:      "netem",
		Usage:     "emulate a bad link with a netem root qdisc: loss, delay, jitter, duplicates, reordering, corruption, rate",
		UsageText: "pinglab lossy netem --dev IF [--netns NS] [--loss SHARE] [--loss-corr SHARE] [--delay DELAY] [--jitter JITTER] [--duplicate SHARE] [--reorder SHARE] [--corrupt SHARE] [--rate RATE] [--force] [--for DURATION]",
		Description: `What "tc qdisc add dev IF root netem loss 20%" does in the handout, through netlink. netem
acts on packets LEAVING the interface: on a server's interface it loses replies.
pinglab replaces only a root qdisc the kernel put there by itself (handle 0:) or its own;
anyone else's is named in the error and left alone unless --force. On a kernel without
netem (sch_netem not built) it says so: "pinglab lossy drop" gives loss there instead.

Examples:
   pinglab lossy netem --netns pinglab-server --dev eth0 --loss 20%
   pinglab lossy netem --dev eth0 --delay 100ms --jitter 10ms --loss 1% --for 60s
   pinglab lossy netem --dev eth0 --delay 50ms --reorder 25% --rate 1mbit`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dev", Usage: "the interface `IF` (ip link lists them; eth0 in a lab host)"},
			netnsFlag(),
			shareFlag("loss", "lose this share of packets"),
			shareFlag("loss-corr", "correlation of each loss with the last"),
			durationFlag("delay", "", 0, "delay every packet by `D`"),
			durationFlag("jitter", "", 0, "vary the delay by up to ± `J`"),
			shareFlag("duplicate", "duplicate this share"),
			shareFlag("reorder", "send this share at once, ahead of delayed packets (needs --delay)"),
			shareFlag("corrupt", "flip a bit in this share"),
			&cli.StringFlag{Name: "rate", Usage: "limit to `RATE` in tc's units: 1mbit, 100kbit, 500kbps"},
			&cli.BoolFlag{Name: "force", Usage: "replace a root qdisc that is someone else's"},
			forFlag(),
		},
		Action: lossyNetem,
	}
}

func lossyNetem(c *cli.Context) error {
	if c.String("dev") == "" {
		return exitUsage("%s: --dev IF is required (the interface: ip link lists them; eth0 in a lab host)", c.Command.HelpName)
	}
	n := lossy.Netem{Dev: c.String("dev"), Force: c.Bool("force")}
	var err error
	shares := []struct {
		name string
		to   *float64
	}{{"loss", &n.Loss}, {"loss-corr", &n.LossCorr}, {"duplicate", &n.Duplicate}, {"reorder", &n.Reorder}, {"corrupt", &n.Corrupt}}
	for _, s := range shares {
		if *s.to, err = flagShare(c, s.name); err != nil {
			return err
		}
	}
	if n.Delay, err = flagDuration(c, "delay"); err != nil {
		return err
	}
	if n.Jitter, err = flagDuration(c, "jitter"); err != nil {
		return err
	}
	if r := c.String("rate"); r != "" {
		if n.Rate, err = lossy.ParseRate(r); err != nil {
			return flagFailure(c, "--rate", err)
		}
	}
	return lossyApply(c, n.Validate, func(ctx context.Context, o lossy.Options) error { return lossy.ApplyNetem(ctx, o, n) },
		lossy.State{Netns: c.String("netns"), Netem: []lossy.Netem{n}})
}

func lossyDropCommand() *cli.Command {
	return &cli.Command{
		Name:      "drop",
		Usage:     "lose a random share of packets with an nftables rule (numgen random mod 100 < P drop)",
		UsageText: "pinglab lossy drop --prob SHARE [--proto udp|tcp|icmp] [--port PORT] [--from ADDR] [--dir in|out] [--netns NS] [--for DURATION]",
		Description: `Loss below the server, as exercise 4 asks, on any kernel: an nftables rule drops each
matching packet with probability P (whole percents, or hundredths: 12.5%). --dir in (the
default) drops packets arriving at this host, out those leaving it. IPv6 neighbour
discovery always passes, so loss never turns into "unreachable".

Examples:
   pinglab lossy drop --netns pinglab-server --prob 20%
   pinglab lossy drop --netns pinglab-server --prob 20% --proto udp --port 12000
   pinglab lossy drop --prob 0.5 --proto icmp --from 10.77.1.1 --for 30s
   pinglab lossy drop --prob 100% --proto tcp --port 12000 --dir out`,
		Flags: append([]cli.Flag{
			shareFlag("prob", "drop this share of matching packets"),
			&cli.StringFlag{Name: "dir", Value: "in", Usage: "`DIR`: in (arriving) or out (leaving)"},
			netnsFlag(),
			forFlag(),
		}, matchFlags("drop")...),
		Action: lossyDrop,
	}
}

func lossyDrop(c *cli.Context) error {
	p, err := flagShare(c, "prob")
	if err != nil {
		return err
	}
	if !c.IsSet("prob") {
		return exitUsage("%s: --prob is required (the share to drop, like 20%%)", c.Command.HelpName)
	}
	proto, port, from, err := matchArgs(c)
	if err != nil {
		return err
	}
	d := lossy.Drop{Prob: p, Proto: proto, Port: port, From: from, Dir: c.String("dir")}
	return lossyApply(c, d.Validate, func(ctx context.Context, o lossy.Options) error { return lossy.ApplyDrop(ctx, o, d) },
		lossy.State{Netns: c.String("netns"), Drop: &d, Table: true})
}

func lossyRejectCommand() *cli.Command {
	return &cli.Command{
		Name:      "reject",
		Usage:     "answer packets with an ICMP error or a TCP reset (iptables -j REJECT --reject-with ...)",
		UsageText: "pinglab lossy reject --with " + strings.Join(lossy.RejectTypes, "|") + " [--proto udp|tcp|icmp] [--port PORT] [--from ADDR] [--netns NS] [--for DURATION]",
		Description: `Exercise 5's firewall rule on the server, for IPv4 and IPv6: packets arriving are answered
with ICMP Destination Unreachable of the chosen code (ICMPv6's nearest code for IPv6;
proto-unreachable is IPv4's only), or a TCP reset. Clients then report
"Destination Host Unreachable" and the like instead of timing out.

Examples:
   pinglab lossy reject --netns pinglab-server --with host-unreachable
   pinglab lossy reject --netns pinglab-server --with port-unreachable --proto udp --port 12000
   pinglab lossy reject --netns pinglab-server --with tcp-reset --port 12000
   pinglab lossy reject --with admin-prohibited --from 10.77.1.1 --for 1m`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "with", Usage: "answer with `TYPE`: " + strings.Join(lossy.RejectTypes, ", ") + " (iptables' icmp-host-unreachable ... work too)"},
			netnsFlag(),
			forFlag(),
		}, matchFlags("reject")...),
		Action: lossyReject,
	}
}

func lossyReject(c *cli.Context) error {
	proto, port, from, err := matchArgs(c)
	if err != nil {
		return err
	}
	if c.String("with") == "" {
		return exitUsage("%s: --with TYPE is required (%s)", c.Command.HelpName, strings.Join(lossy.RejectTypes, ", "))
	}
	with, err := lossy.ParseRejectType(c.String("with"))
	if err != nil {
		return flagFailure(c, "--with", err)
	}
	r := lossy.Reject{With: with, Proto: proto, Port: port, From: from}
	return lossyApply(c, r.Validate, func(ctx context.Context, o lossy.Options) error { return lossy.ApplyReject(ctx, o, r) },
		lossy.State{Netns: c.String("netns"), Reject: &r, Table: true})
}

func matchArgs(c *cli.Context) (proto string, port uint16, from netip.Prefix, err error) {
	if c.Args().Len() > 0 {
		return "", 0, from, exitUsage("%s: unexpected argument %q (everything goes in flags)", c.Command.HelpName, c.Args().First())
	}
	if p := c.Uint("port"); p > 65535 {
		return "", 0, from, exitUsage("%s: --port: %d is not a port (1 to 65535)", c.Command.HelpName, p)
	}
	if s := c.String("from"); s != "" {
		if from, err = lossy.ParsePrefix(s); err != nil {
			return "", 0, from, flagFailure(c, "--from", err)
		}
	}
	return c.String("proto"), uint16(c.Uint("port")), from, nil
}

// lossyApply checks a scenario, applies it and says what it did; with --for it holds the
// scenario that long (or until Ctrl-C / SIGTERM cancel the context) and removes it. The
// scenario is checked before the privilege, so that bad input is named as such by anyone.
func lossyApply(c *cli.Context, check func() error, apply func(context.Context, lossy.Options) error, s lossy.State) error {
	hold, err := flagDuration(c, "for")
	if err != nil {
		return err
	}
	if err := check(); err != nil {
		return failure(c, err)
	}
	if err := setupCheck(c); err != nil {
		return err
	}
	o := lossy.Options{Netns: c.String("netns")}
	if hold > 0 {
		// The mark that lets this process remove its own scenario only, and lets
		// "lossy show" tell when this process is gone.
		o.Holder = lossy.NewHolder(hold)
	}
	if err := apply(c.Context, o); err != nil {
		return failure(c, err)
	}
	w := c.App.Writer
	for _, l := range s.Words() {
		fmt.Fprintf(w, "%s%s\n", where(o), l)
	}
	if hold == 0 {
		fmt.Fprintf(w, "It stays until: pinglab lossy clear%s\n", netnsArg(o))
		return nil
	}
	fmt.Fprintf(w, "Holding it for %s (Ctrl-C removes it sooner).\n", formatDuration(hold))
	stop := countdown(c.App.ErrWriter, time.Now().Add(hold), time.Second)
	err = lossy.Hold(c.Context, o, hold)
	stop()
	if errors.Is(err, lossy.ErrReplaced) {
		fmt.Fprintf(w, "%s%s.\n", where(o), lossy.ErrReplaced)
		return nil
	} else if err != nil {
		return failure(c, err)
	}
	fmt.Fprintf(w, "%sremoved.\n", where(o))
	return nil
}

func where(o lossy.Options) string {
	if o.Netns == "" {
		return ""
	}
	return o.Netns + ": "
}

func netnsArg(o lossy.Options) string {
	if o.Netns == "" {
		return ""
	}
	return " --netns " + o.Netns
}

// setupCheck turns a missing privilege (or a system without lossy) into one line and exit 2.
func setupCheck(c *cli.Context) error {
	if err := lossy.CheckNetAdmin(); err != nil {
		return failure(c, err)
	}
	return nil
}

func lossyShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "say what pinglab has set, in words and as the equivalent tc / nft commands",
		UsageText: "pinglab lossy show [--netns NS]",
		Description: `Examples:
   pinglab lossy show
   pinglab lossy show --netns pinglab-server`,
		Flags:  []cli.Flag{netnsFlag()},
		Action: lossyShow,
	}
}

func lossyShow(c *cli.Context) error {
	if err := setupCheck(c); err != nil {
		return err
	}
	s, err := lossy.Show(c.Context, lossy.Options{Netns: c.String("netns")})
	if err != nil {
		return failure(c, err)
	}
	writeState(c.App.Writer, s, "")
	return nil
}

// writeState prints a scenario: the words, then the commands that make it by hand.
func writeState(w io.Writer, s lossy.State, indent string) {
	for _, l := range s.Words() {
		fmt.Fprintf(w, "%s%s\n", indent, l)
	}
	if cmds := s.Commands(); len(cmds) > 0 {
		fmt.Fprintf(w, "%sThe same by hand:\n", indent)
		for _, l := range cmds {
			fmt.Fprintf(w, "%s  %s\n", indent, l)
		}
	}
}

func lossyClearCommand() *cli.Command {
	return &cli.Command{
		Name:      "clear",
		Usage:     "remove everything pinglab set: its nftables table and its netem qdiscs (nothing else)",
		UsageText: "pinglab lossy clear [--netns NS]",
		Description: `Clearing twice is fine; another program's tables and qdiscs are never touched.

Examples:
   pinglab lossy clear
   pinglab lossy clear --netns pinglab-server`,
		Flags:  []cli.Flag{netnsFlag()},
		Action: lossyClear,
	}
}

func lossyClear(c *cli.Context) error {
	if err := setupCheck(c); err != nil {
		return err
	}
	o := lossy.Options{Netns: c.String("netns")}
	if err := lossy.Clear(c.Context, o); err != nil {
		return failure(c, err)
	}
	fmt.Fprintf(c.App.Writer, "%scleared: packets pass untouched.\n", where(o))
	return nil
}

// onTerminal reports whether w is a terminal; tests stand a buffer in for one.
var onTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// countdown keeps one line on w, a terminal, saying how long until the scenario is removed,
// redrawn every tick, until stop erases it. Elsewhere (a pipe, a log) it writes nothing.
func countdown(w io.Writer, until time.Time, tick time.Duration) (stop func()) {
	if !onTerminal(w) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	draw := func() {
		// Whole seconds, rounded up: "1s left" until the very end, as a countdown reads.
		left := max((time.Until(until) + time.Second - 1).Truncate(time.Second), 0)
		fmt.Fprintf(w, "\r\x1b[K%s left before it is removed (Ctrl-C removes it now)", left)
	}
	wg.Go(func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		draw()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-t.C:
				draw()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
