package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/lossy"
)

func init() { register(labCommand) }

// labPrefix names the lab's namespaces; tests point it at names of their own.
var labPrefix = lossy.DefaultLabPrefix

func labCommand() *cli.Command {
	return &cli.Command{
		Name:  "lab",
		Usage: "a second (and third) machine on this one: network namespaces joined by veth pairs (Linux, CAP_NET_ADMIN)",
		Description: `The hosts are network namespaces named pinglab-client, pinglab-server and, with --hosts 3,
pinglab-router between them. "ip netns exec pinglab-client ..." works on them too. The lab's
addresses (10.77.x.x, fd00:77:...) exist only inside the lab: from the host, or from another
machine, they lead nowhere (to the default gateway).

Examples:
   sudo pinglab lab up --hosts 3
   sudo pinglab lab exec server -- pinglab udp server &
   sudo pinglab lab exec client -- pinglab udp ping 10.77.2.2 -c 10
   sudo pinglab lab status
   sudo pinglab lab down`,
		Subcommands: []*cli.Command{
			labUpCommand(),
			labDownCommand(),
			labStatusCommand(),
			labExecCommand(),
		},
	}
}

func labUpCommand() *cli.Command {
	return &cli.Command{
		Name:      "up",
		Usage:     "build the lab: client and server, or client, router and server",
		UsageText: "pinglab lab up [--hosts 2|3]",
		Description: `With 2 hosts, client (10.77.1.1, fd00:77:1::1) and server (10.77.1.2, fd00:77:1::2) share
one link. With 3, a router forwards between client (10.77.1.1) and server (10.77.2.2), so
TTL and traceroute have a real hop. The addresses exist only inside the lab. A lab that is
already up is an error: "pinglab lab down" first.

Examples:
   pinglab lab up
   pinglab lab up --hosts 3`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "hosts", Value: 2, Usage: "`N` hosts: 2 (client, server) or 3 (client, router, server)"},
		},
		Action: labUp,
	}
}

func labUp(c *cli.Context) error {
	name := c.Command.HelpName
	if n := c.Int("hosts"); n != 2 && n != 3 {
		return exitUsage("%s: --hosts: %d (want 2 or 3)", name, n)
	}
	if err := setupCheck(c); err != nil {
		return err
	}
	l, err := lossy.LabUp(c.Context, c.Int("hosts"), lossy.WithPrefix(labPrefix))
	if err != nil {
		return failure(c, err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Lab up: %d hosts.\n", len(l.Hosts))
	writeHosts(w, l)
	server, _ := l.Host(lossy.HostServer)
	s4, s6 := server.Addr(false), server.Addr(true)
	fmt.Fprintf(w, "\nTry next:\n")
	tries := []string{
		"pinglab lab exec server -- pinglab udp server &",
		fmt.Sprintf("pinglab lab exec client -- pinglab udp ping %s -c 10", s4),
		fmt.Sprintf("pinglab lossy drop --netns %s --prob 20%% --proto udp --port 12000", server.Netns),
		fmt.Sprintf("pinglab lossy reject --netns %s --with host-unreachable", server.Netns),
		fmt.Sprintf("pinglab lab exec client -- pinglab ping %s -c 3", s6),
	}
	if _, ok := l.Host(lossy.HostRouter); ok {
		tries = append(tries,
			fmt.Sprintf("pinglab lab exec client -- ping -c 1 -t 1 %s    # Time to live exceeded, from the router", s4),
			fmt.Sprintf("pinglab lab exec client -- pinglab trace %s", s4))
	}
	tries = append(tries, "pinglab lab status", "pinglab lab down")
	for _, t := range tries {
		fmt.Fprintf(w, "  %s\n", t)
	}
	return nil
}

// writeHosts prints one block per host: its namespace, links and routes.
func writeHosts(w io.Writer, l lossy.LabInfo) {
	for _, h := range l.Hosts {
		fmt.Fprintf(w, "  %-7s (netns %s)", h.Name, h.Netns)
		if h.Forwarding {
			fmt.Fprintf(w, ", forwarding IPv4 and IPv6")
		}
		fmt.Fprintln(w)
		for _, link := range h.Links {
			addrs := make([]string, len(link.Addrs))
			for i, a := range link.Addrs {
				addrs[i] = a.String()
			}
			fmt.Fprintf(w, "    %-5s %s", link.Dev, strings.Join(addrs, " "))
			if link.Peer != "" {
				fmt.Fprintf(w, "  (to %s)", link.Peer)
			}
			fmt.Fprintln(w)
		}
		if h.Gateway4.IsValid() || h.Gateway6.IsValid() {
			fmt.Fprintf(w, "    default via %s, %s\n", h.Gateway4, h.Gateway6)
		}
	}
}

func labDownCommand() *cli.Command {
	return &cli.Command{
		Name:      "down",
		Usage:     "remove the lab's namespaces and everything in them",
		UsageText: "pinglab lab down",
		Description: `Removing a lab that is not there is fine. Programs still running in a host keep their
namespace alive until they end.

Examples:
   pinglab lab down`,
		Action: labDown,
	}
}

func labDown(c *cli.Context) error {
	if err := setupCheck(c); err != nil {
		return err
	}
	if err := lossy.LabDown(c.Context, lossy.WithPrefix(labPrefix)); err != nil {
		return failure(c, err)
	}
	fmt.Fprintln(c.App.Writer, "Lab down.")
	return nil
}

func labStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the hosts, their addresses and routes, and the scenario active in each",
		UsageText: "pinglab lab status",
		Description: `Examples:
   pinglab lab status`,
		Action: labStatus,
	}
}

func labStatus(c *cli.Context) error {
	if err := setupCheck(c); err != nil {
		return err
	}
	l, err := lossy.LabStatus(c.Context, lossy.WithPrefix(labPrefix))
	if err != nil {
		return failure(c, err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Lab: %d hosts.\n", len(l.Hosts))
	writeHosts(w, l)
	fmt.Fprintln(w, "\nScenarios:")
	for _, h := range l.Hosts {
		fmt.Fprintf(w, "  %s:\n", h.Name)
		if h.Scenario != nil {
			s := *h.Scenario
			if s.Empty() {
				fmt.Fprintf(w, "    %s\n", s.Words()[0])
				continue
			}
			writeState(w, s, "    ")
		}
	}
	return nil
}

func labExecCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a lab host",
		UsageText: "pinglab lab exec HOST [--] COMMAND [ARGS...]",
		Description: `HOST is client, server or router (or the namespace's name). Everything after HOST is
the command and its arguments; a -- before it is allowed. The exit code is the command's.

Examples:
   pinglab lab exec server -- pinglab udp server
   pinglab lab exec client -- pinglab udp ping 10.77.1.2 -c 10
   pinglab lab exec client -- ping -c 1 -t 1 10.77.2.2
   pinglab lab exec router -- ip addr`,
		Action: labExec,
	}
}

func labExec(c *cli.Context) error {
	name := c.Command.HelpName
	args := c.Args().Slice()
	if len(args) > 1 && args[1] == "--" {
		args = append(args[:1], args[2:]...)
	}
	if len(args) < 2 {
		return exitUsage("%s: want a host and a command: pinglab lab exec client -- ping -c 1 10.77.1.2", name)
	}
	if err := setupCheck(c); err != nil {
		return err
	}
	prog := args[1]
	if prog == "pinglab" {
		// This very binary, wherever it is: "./pinglab lab exec client -- pinglab ..." and sudo
		// (whose PATH is its own) need no pinglab on the PATH, and run the same version.
		if self, err := os.Executable(); err == nil {
			prog = self
		}
	}
	cmd := exec.CommandContext(c.Context, prog, args[2:]...)
	// The command sees its name as typed, not the path it was found at.
	cmd.Args[0] = args[1]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.App.Writer, c.App.ErrWriter
	// Ctrl-C reaches the command too (same terminal); SIGTERM to pinglab is passed on gently.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err := lossy.LabExec(c.Context, args[0], cmd, lossy.WithPrefix(labPrefix))
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		if code := ee.ExitCode(); code >= 0 {
			return cli.Exit("", code)
		}
		return cli.Exit("", 1)
	}
	return failure(c, err)
}
