package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"

	"github.com/pinglab/pinglab/icmpping"
	"github.com/pinglab/pinglab/lossy"
	"github.com/pinglab/pinglab/udpping"
)

// TestFailure checks the one renderer of the packages' errors: the package prefixes go, the
// remedy that goes with each sentinel comes, wherever in the chain the sentinel is.
func TestFailure(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cmd  string
		err  error
		want string
	}{
		{"lab up", fmt.Errorf("lossy: pinglab-client: %w", lossy.ErrLabExists),
			"pinglab lab up: pinglab-client: lab already exists; `pinglab lab down` removes it"},
		{"lab status", fmt.Errorf("lossy: %w", lossy.ErrNoLab),
			"pinglab lab status: no lab is up: run `pinglab lab up` first"},
		{"lossy netem", fmt.Errorf("lossy: eth0: %w: htb 1: is there", lossy.ErrForeignQdisc),
			"pinglab lossy netem: eth0: root qdisc is not the kernel default nor pinglab's: htb 1: is there; remove it or use --force to replace it"},
		{"lossy netem", fmt.Errorf("lossy: %w (no sch_netem)", lossy.ErrNetemMissing),
			"pinglab lossy netem: netem is missing in this kernel (no sch_netem); `pinglab lossy drop --prob SHARE` gives loss through nftables instead"},
		{"udp server", fmt.Errorf("udpping: %w: open a raw ICMP socket: %w", udpping.ErrNeedRaw, syscall.EPERM),
			"pinglab udp server: sending ICMP errors needs CAP_NET_RAW: open a raw ICMP socket: operation not permitted (run as root, or: sudo setcap cap_net_raw+ep " + self + ")"},
		{"trace", fmt.Errorf("icmpping: trace: bad trace option: max hops 256 (want 1..255)"),
			"pinglab trace: max hops 256 (want 1..255)"},
		{"report", errors.New("report: a.csv:1: not a pinglab CSV"), "pinglab report: a.csv:1: not a pinglab CSV"},
		{"ping", fmt.Errorf("icmpping: %w: raw socket: operation not permitted", icmpping.ErrNoSocket),
			"pinglab ping: cannot open an ICMP socket: raw socket: operation not permitted. To fix it, allow unprivileged ping with: " +
				`sudo sysctl -w net.ipv4.ping_group_range="0 2147483647"; or give pinglab raw sockets with: sudo setcap cap_net_raw+ep ` + self + "; or run it as root"},
		{"udp ping", fmt.Errorf("udpping: listen on :1: %w", syscall.EADDRINUSE), "pinglab udp ping: listen on :1: address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			if tt.cmd == "ping" && runtime.GOOS != "linux" {
				t.Skip("the remedies for no ICMP socket are Linux's here")
			}
			c := cli.NewContext(&cli.App{}, flag.NewFlagSet(tt.cmd, flag.ContinueOnError), nil)
			c.Command = &cli.Command{Name: tt.cmd, HelpName: "pinglab " + tt.cmd}
			got := failure(c, tt.err)
			var ec cli.ExitCoder
			if !errors.As(got, &ec) || ec.ExitCode() != 2 {
				t.Fatalf("failure(%v) = %v, want an exit code 2", tt.err, got)
			}
			if diff := cmp.Diff(tt.want, got.Error()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
