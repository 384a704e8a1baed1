package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/report"
	"github.com/pinglab/pinglab/udpping"
)

func init() { register(demoCommand) }

// The demo's defaults: the handout's 20% loss, 20 pings 200 ms apart.
const (
	demoDrop     = "20%"
	demoCount    = 20
	demoInterval = 200 * time.Millisecond
)

func demoCommand() *cli.Command {
	flags := clientFlags(udpping.DefaultSize)
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.IntFlag:
			if f.Name == "count" {
				f.Value = demoCount
			}
		case *cli.StringFlag:
			if f.Name == "interval" {
				f.Value = formatDuration(demoInterval)
			}
		}
	}
	drop := shareFlag("drop", "the server drops this share of pings")
	drop.Value = demoDrop
	flags = append(flags, drop,
		&cli.Uint64Flag{Name: "seed", Usage: "seed the server's drops with `N` for a reproducible run (0: random)"})
	return &cli.Command{
		Name:      "demo",
		Usage:     "see pinglab work: a lossy UDP echo server and 20 pings to it, on this machine",
		UsageText: "pinglab demo [flags]",
		Description: `Needs no root and no flags. Starts the assignment's UDP echo server on a free loopback
port, dropping 20% of pings at random, sends it 20 pings 200 ms apart, prints what ping
would print, and stops the server. Every client flag works here too.

Examples:
   pinglab demo
   pinglab demo --format assignment       # the handout's own output
   pinglab demo --drop 50% -c 100 -i 10ms -q`,
		Flags:  flags,
		Action: demo,
	}
}

func demo(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return exitUsage("%s: takes no arguments, got %q", c.Command.HelpName, c.Args().Slice())
	}
	drop, err := flagShare(c, "drop")
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
	network, loopback := "udp4", "127.0.0.1"
	if c.Bool("ipv6") {
		network, loopback = "udp6", "[::1]"
	}
	srv, err := udpping.Listen(c.Context, udpping.ServerConfig{Addr: loopback + ":0", Network: network, Drop: drop, Seed: c.Uint64("seed")})
	if err != nil {
		return failure(c, err)
	}
	ctx, stop := context.WithCancel(c.Context)
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() { serveErr = srv.Serve(ctx) })
	defer func() { stop(); wg.Wait() }()

	conn, err := udpping.Dial(c.Context, udpping.Config{Addr: srv.Addr().String(), Network: network, Size: size})
	if err != nil {
		return failure(c, err)
	}
	defer conn.Close()
	if c.String("format") != "json" {
		fmt.Fprintf(c.App.Writer, "pinglab demo: a UDP echo server on %s drops %s of pings at random (seed %d).\n\n",
			srv.Addr(), strings.TrimSpace(c.String("drop")), srv.Seed())
	}
	h := report.Header{Proto: "udp", Target: srv.Addr().String(), Addr: srv.Addr().String(), Size: conn.Size()}
	runErr := cr.run(c.Context, h, conn)
	stop()
	wg.Wait()
	if serveErr != nil {
		return cli.Exit(fmt.Sprintf("%s: server: %v", c.Command.HelpName, serveErr), 2)
	}
	if c.String("format") != "json" {
		st := srv.Stats()
		var got udpping.ClientStats
		if len(st) > 0 {
			got = st[0]
		}
		fmt.Fprintf(c.App.Writer, "server: received %d, echoed %d, dropped %d\n", got.Received, got.Echoed, got.Dropped)
	}
	return runErr
}
