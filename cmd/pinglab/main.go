// Command pinglab is one binary for a "build your own pinger" networking lab: UDP and TCP echo
// servers and their clients, an ICMP ping and traceroute, loss and reject scenarios, and a lab
// of network namespaces. Each subcommand is a few lines over the packages that do the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// builders make the top-level commands. Each command file registers its own in an init func.
var builders []func() *cli.Command

// register adds a top-level command. It takes a function that builds the command, not the
// command itself, so that every run (and every test) gets commands and flag values of its own.
func register(build func() *cli.Command) { builders = append(builders, build) }

// commandOrder is the order of the top-level commands in help, the order a course meets them.
var commandOrder = []string{"demo", "udp", "tcp", "ping", "trace", "lossy", "proxy", "lab", "plot", "report"}

// version is set with -ldflags "-X main.version=..."; otherwise it comes from the build info.
var version = ""

func init() {
	// A boolean flag is off unless given: "(default: false)" after each says nothing.
	stringer := cli.FlagStringer
	cli.FlagStringer = func(f cli.Flag) string { return strings.TrimSuffix(stringer(f), " (default: false)") }
}

// urfave/cli/v2 appends its package-level HelpFlag and VersionFlag to every app and command,
// and BoolFlag.Apply writes to the flag it is called on: two apps parsing at once (tests run
// several pinglab commands in one process) would write to the same flag. These wrappers apply a
// copy, so that run is safe to call concurrently.
func init() {
	cli.HelpFlag = copyOnApply{cli.HelpFlag.(*cli.BoolFlag)}
	cli.VersionFlag = copyOnApply{cli.VersionFlag.(*cli.BoolFlag)}
}

// copyOnApply is a BoolFlag that applies a copy of itself to each flag set.
type copyOnApply struct{ *cli.BoolFlag }

func (f copyOnApply) Apply(set *flag.FlagSet) error {
	c := *f.BoolFlag
	return c.Apply(set)
}

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// run runs pinglab with args (args[0] is the program name) and returns the exit code: 0 when
// things went well (replies came), 1 when no reply came, 2 for usage and setup errors.
// Ctrl-C and SIGTERM cancel ctx, which every command treats as the end of its run.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var notFound string
	app := newApp(stdout, stderr, &notFound)
	err := app.RunContext(ctx, reorderArgs(app, args))
	if notFound != "" {
		fmt.Fprintln(stderr, notFound)
		return 2
	}
	return exitCode(err, stderr)
}

// newApp builds the app. An unknown top-level command is reported through notFound, since
// urfave/cli tells of it through a callback that cannot return an error.
func newApp(stdout, stderr io.Writer, notFound *string) *cli.App {
	app := &cli.App{
		Name:      "pinglab",
		Usage:     "ping over UDP, TCP and ICMP, make loss and rejects, and build a lab on one machine",
		Version:   appVersion(),
		Writer:    stdout,
		ErrWriter: stderr,
		// pinglab maps errors to exit codes itself (exitCode), never through os.Exit in urfave/cli.
		ExitErrHandler:       func(*cli.Context, error) {},
		EnableBashCompletion: false,
		Description: `Start with "pinglab demo". Every client prints a line per probe and a summary
(loss, min/avg/max/mdev RTT) like iputils ping; --format json and --csv FILE make results
for a report. Flags may come before or after the host, and one-letter flags may be grouped
(-qc3) as ping takes them. Exit codes are ping's: 0 replies came, 1 none did, 2 bad input or
a setup error (always one line saying what was wrong).

Install it with "go install ./cmd/pinglab" (into $(go env GOPATH)/bin); sudo has a PATH of
its own, so run "sudo $(command -v pinglab) ...". Inside a lab host "pinglab lab exec"
runs this same binary for "pinglab", wherever it is.

Examples:
   pinglab demo                                     # a lossy server and 20 pings, no root
   pinglab udp server --drop 20%                    # the handout's server; in another terminal:
   pinglab udp ping 127.0.0.1 -c 10
   pinglab ping -c 3 127.0.0.1
   sudo pinglab lab up --hosts 3                    # client, router and server namespaces
   sudo pinglab lab exec client -- pinglab trace -n 10.77.2.2
   pinglab COMMAND --help                           # every command has examples`,
	}
	for _, b := range builders {
		app.Commands = append(app.Commands, b())
	}
	slices.SortStableFunc(app.Commands, func(a, b *cli.Command) int {
		return orderOf(a.Name) - orderOf(b.Name)
	})
	app.OnUsageError = usageError
	app.CommandNotFound = func(c *cli.Context, name string) {
		*notFound = fmt.Sprintf("pinglab: no command %q (see pinglab --help)", name)
	}
	for _, c := range app.Commands {
		prepare(c, "pinglab")
	}
	return app
}

func orderOf(name string) int {
	if i := slices.Index(commandOrder, name); i >= 0 {
		return i
	}
	return len(commandOrder)
}

// prepare gives every command the same handling of usage errors, and a command that only
// groups subcommands an action that names an unknown subcommand instead of printing help.
func prepare(c *cli.Command, parent string) {
	path := parent + " " + c.Name
	c.OnUsageError = usageError
	// urfave/cli would add its one package-level help command to every command and write to
	// it while parsing; --help (the global HelpFlag, applied as a copy) does the same job.
	c.HideHelpCommand = true
	if len(c.Subcommands) > 0 && c.Action == nil {
		names := make([]string, 0, len(c.Subcommands))
		for _, s := range c.Subcommands {
			names = append(names, s.Name)
		}
		c.Action = func(ctx *cli.Context) error {
			if ctx.Args().Len() == 0 {
				return exitUsage("%s: missing subcommand: %s (see %s --help)", path, strings.Join(names, ", "), path)
			}
			return exitUsage("%s: no subcommand %q (want %s)", path, ctx.Args().First(), strings.Join(names, ", "))
		}
	}
	for _, s := range c.Subcommands {
		prepare(s, path)
	}
}

func usageError(c *cli.Context, err error, _ bool) error {
	return exitUsage("%s: %v (see --help)", c.Command.HelpName, err)
}

// exitUsage is the error of a usage or setup problem: one line, exit code 2.
func exitUsage(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), 2)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(stderr, "pinglab: %v\n", err)
	return 2
}

// reorderArgs moves a leaf command's flags in front of its positional arguments, so that flags
// may follow the host as they do for ping ("pinglab udp ping 127.0.0.1 -c 3"). Everything after
// "--" is left as it is.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	cmds := app.Commands
	var leaf *cli.Command
	i := 1
	for ; i < len(args); i++ {
		c := findCommand(cmds, args[i])
		if c == nil {
			break
		}
		out = append(out, args[i])
		leaf, cmds = c, c.Subcommands
	}
	if leaf == nil || len(leaf.Subcommands) > 0 {
		return args
	}
	var flags, pos []string
	rest := args[i:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			pos = append(pos, rest[j:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			if takesCommandLine[strings.Join(out[1:], " ")] {
				// The rest is a command line of its own ("lab exec client ping -c 1 ...").
				pos = append(pos, rest[j+1:]...)
				break
			}
			continue
		}
		name := strings.TrimLeft(a, "-")
		if split, needsValue, ok := groupedFlags(leaf, a); ok {
			// ping's "-c3" and "-qc2": one-letter flags grouped, the last one's value attached
			// or in the next argument.
			flags = append(flags, split...)
			if needsValue && j+1 < len(rest) {
				flags = append(flags, rest[j+1])
				j++
			}
			continue
		}
		flags = append(flags, a)
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue(leaf, name) && j+1 < len(rest) {
			flags = append(flags, rest[j+1])
			j++
		}
	}
	out = append(out, flags...)
	return append(out, pos...)
}

// takesCommandLine names the commands whose first positional argument is followed by a command
// line of its own, flags included, which reorderArgs must leave alone.
var takesCommandLine = map[string]bool{"lab exec": true}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

// groupedFlags splits one-letter flags written together, as iputils takes them: "-c3" into
// "-c" "3", "-qc2" into "-q" "-c" "2", "-qD" into "-q" "-D". Every letter but the last that
// takes a value must be a flag without one; a flag that takes a value ends the group, the rest
// of the group being its value (needsValue: the value is the next argument). An argument that
// is itself a flag's name ("-ipv4"... none here, but "-4") is not split.
func groupedFlags(c *cli.Command, arg string) (split []string, needsValue, ok bool) {
	if len(arg) < 3 || arg[0] != '-' || arg[1] == '-' || strings.Contains(arg, "=") || hasFlag(c, arg[1:]) {
		return nil, false, false
	}
	for i := 1; i < len(arg); i++ {
		l := arg[i : i+1]
		if !hasFlag(c, l) {
			return nil, false, false
		}
		split = append(split, "-"+l)
		if takesValue(c, l) {
			if i+1 < len(arg) {
				return append(split, arg[i+1:]), false, true
			}
			return split, true, true
		}
	}
	return split, false, true
}

func hasFlag(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

func takesValue(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		_, isBool := f.(*cli.BoolFlag)
		return !isBool
	}
	return false
}

func appVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
