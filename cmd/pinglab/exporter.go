package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/internal/exporter"
	"github.com/pinglab/pinglab/internal/metrics"
)

func init() { register(exporterCommand) }

// defaultExporterListen is the exporter's address when --listen is not given.
const defaultExporterListen = ":9428"

func exporterCommand() *cli.Command {
	return &cli.Command{
		Name:      "exporter",
		Usage:     "probe targets continuously over ICMP, UDP and TCP for Prometheus",
		UsageText: "pinglab exporter --config FILE [--listen ADDR]",
		Description: `Probes every target of the configuration on its own schedule, through the same engine as
the clients, and serves the counts and the RTT histogram on /metrics, labelled by target and
protocol, as the clients' --metrics do. /probe?target=ADDR&module=NAME runs one round on
demand, as blackbox_exporter's /probe does; NAME is a module of the configuration, or icmp,
udp, tcp or tcp-connect for that protocol's defaults. The configuration is checked at start
(an error names its line) and read again on SIGHUP; a configuration with an error is
rejected, and the exporter goes on with the one it had. ICMP needs no root where the system
allows unprivileged ICMP, as pinglab ping.

A configuration (YAML):

   defaults:            # for every target and module; each may set its own
     interval: 1s       # a round every second, on a fixed schedule
     count: 5           # of 5 probes
     spacing: 100ms     # 100ms apart
     timeout: 500ms     # each waiting up to 500ms
   targets:
     - target: 127.0.0.1
       protocol: icmp   # icmp, udp (any echo server), tcp (echo) or tcp-connect
       ttl: 64
       tos: 0xb8
     - target: 127.0.0.1:12000
       protocol: udp
       size: 100
       source: 127.0.0.1
     - target: 127.0.0.1:22
       protocol: tcp-connect
       interface: lo
   modules:
     icmp10:
       protocol: icmp
       count: 10

Examples:
   pinglab exporter --config pinglab.yml
   pinglab exporter --config pinglab.yml --listen 127.0.0.1:9428
   curl 'http://127.0.0.1:9428/probe?target=127.0.0.1&module=icmp10'
   kill -HUP $(pidof pinglab)           # read the configuration again`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "read targets and modules from `FILE` (YAML)"},
			&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Value: defaultExporterListen, Usage: "serve /metrics and /probe on `ADDR`"},
		},
		Action: exporterAction,
	}
}

func exporterAction(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Args().Len() > 0 {
		return exitUsage("%s: unexpected argument %q (targets go in the --config file)", name, c.Args().First())
	}
	path := c.String("config")
	if path == "" {
		return exitUsage("%s: --config FILE is required", name)
	}
	cfg, err := exporter.LoadConfig(path)
	if err != nil {
		return failure(c, err)
	}
	e := exporter.New()
	defer e.Close()
	reg, err := metrics.NewRegistry(e.Collectors()...)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), 2)
	}
	mux := http.NewServeMux()
	mux.Handle("/probe", e.ProbeHandler())
	srv, err := metrics.Listen(c.Context, c.String("listen"), reg, mux)
	if err != nil {
		return flagFailure(c, "--listen", err)
	}
	defer srv.Close()
	// SIGHUP is caught before the first round, so that a reload sent at once is not fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	e.Apply(cfg)
	w := c.App.Writer
	fmt.Fprintf(w, "pinglab exporter: probing %d targets of %s; metrics on %s, one round on demand at /probe?target=ADDR&module=NAME\n",
		len(cfg.Targets), path, srv.URL())
	for {
		select {
		case <-c.Context.Done():
			return nil
		case <-hup:
			cfg, err := exporter.LoadConfig(path)
			if err != nil {
				e.Rejected()
				fmt.Fprintf(c.App.ErrWriter, "%s: reload rejected, going on with the configuration before: %s\n", name, errText(err))
				continue
			}
			e.Apply(cfg)
			fmt.Fprintf(w, "pinglab exporter: reloaded %s: probing %d targets\n", path, len(cfg.Targets))
		}
	}
}
