package main

import (
	"context"
	"errors"
	"os"
	"regexp"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/icmpping"
	"github.com/pinglab/pinglab/lossy"
	"github.com/pinglab/pinglab/udpping"
)

// failure is what an action returns for err, the error of a package it called: one line, the
// command's name, the error in the user's words and what to do about it, exit code 2. The
// packages say what failed and why; what to do (a flag, another pinglab command, this
// binary's path) only the command knows, so the remedies live here, keyed by the packages'
// sentinel errors. A cancelled run (Ctrl-C, SIGTERM) exits 130 without a word.
func failure(c *cli.Context, err error) error {
	if errors.Is(err, context.Canceled) {
		return cli.Exit("", 130)
	}
	return cli.Exit(c.Command.HelpName+": "+errText(err)+remedy(c, err), 2)
}

// flagFailure is failure for the error of one flag's value: "pinglab X: --flag: ...".
func flagFailure(c *cli.Context, flag string, err error) error {
	return cli.Exit(c.Command.HelpName+": "+flag+": "+errText(err)+remedy(c, err), 2)
}

// packagePrefix is the "udpping: " that a package puts before its errors (and the names of
// the steps inside one, as "trace: "), which say where an error came from to a Go program
// but nothing to a user of the command.
var packagePrefix = regexp.MustCompile(`\b(udpping|tcpping|icmpping|lossy|proxy|report|plot|pingmsg|probe|stats|impair|sock|metrics|exporter|trace: bad trace option|trace): `)

// errText is err's text without the packages' prefixes.
func errText(err error) string {
	return packagePrefix.ReplaceAllString(err.Error(), "")
}

// remedy is what to do about err, "" when the error says it all.
func remedy(c *cli.Context, err error) string {
	switch {
	case errors.Is(err, icmpping.ErrNoSocket):
		if runtime.GOOS != "linux" {
			return ". To fix it, run pinglab as root (Administrator on Windows)"
		}
		sysctl := `allow unprivileged ping with: sudo sysctl -w net.ipv4.ping_group_range="0 2147483647"`
		setcap := "give pinglab raw sockets with: sudo setcap cap_net_raw+ep " + self() + "; or run it as root"
		if c.Bool("privileged") {
			return ". To fix it, " + setcap + "; or drop --privileged and " + sysctl
		}
		return ". To fix it, " + sysctl + "; or " + setcap
	case errors.Is(err, udpping.ErrNeedRaw):
		return " (run as root, or: sudo setcap cap_net_raw+ep " + self() + ")"
	case errors.Is(err, icmpping.ErrNotSupported) && c.Command.Name == "trace" && !c.Bool("icmp") && c.String("proto") != "icmp":
		return "; use --proto icmp"
	case errors.Is(err, lossy.ErrLabExists):
		return "; `pinglab lab down` removes it"
	case errors.Is(err, lossy.ErrNoLab):
		return ": run `pinglab lab up` first"
	case errors.Is(err, lossy.ErrForeignQdisc):
		return "; remove it or use --force to replace it"
	case errors.Is(err, lossy.ErrNetemMissing):
		return "; `pinglab lossy drop --prob SHARE` gives loss through nftables instead"
	}
	return ""
}

// self is the path of this binary for a command the user is to type, as sudo would find it.
func self() string {
	if p, err := os.Executable(); err == nil && !strings.ContainsAny(p, " \t'\"$") {
		return p
	}
	return "$(command -v pinglab)"
}
