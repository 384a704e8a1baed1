package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/icmpping"
	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/testutil"
)

// digits hides what changes from run to run (times, RTTs) so that lines compare by shape.
var digits = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

func shape(out string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, digits.ReplaceAllString(l, "N"))
	}
	return lines
}

// TestPingLoopbackLikeIputils pings loopback with pinglab and iputils ping alike: every line
// ping prints, pinglab prints the same, numbers aside (pinglab adds a percentile line).
func TestPingLoopbackLikeIputils(t *testing.T) {
	testutil.RequireRoot(t) // root's group is outside the default ping_group_range: raw socket
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, errOut, code := runCmd(t, ctx, "ping", host, "-c", "3", "-i", "0.2")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
			}
			want := map[string]string{
				"127.0.0.1": "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.",
				"::1":       "PING ::1(::1) 56 data bytes",
			}[host]
			if first := strings.SplitN(out, "\n", 2)[0]; first != want {
				t.Errorf("header %q, want %q", first, want)
			}
			for seq := 1; seq <= 3; seq++ {
				re := regexp.MustCompile(`(?m)^64 bytes from ` + regexp.QuoteMeta(host) + `: icmp_seq=` + string(rune('0'+seq)) + ` ttl=64 time=[0-9.]+ ms$`)
				if !re.MatchString(out) {
					t.Errorf("no reply line for icmp_seq=%d in:\n%s", seq, out)
				}
			}
			if _, err := exec.LookPath("ping"); err != nil {
				testutil.SkipOrFail(t, "iputils ping not installed (Debian package iputils-ping)")
			}
			real, err := exec.CommandContext(ctx, "ping", host, "-c", "3", "-i", "0.2").Output()
			if err != nil {
				t.Fatalf("iputils ping: %v\n%s", err, real)
			}
			got := shape(out)
			for _, l := range shape(string(real)) {
				found := false
				for _, g := range got {
					found = found || g == l
				}
				if !found {
					t.Errorf("iputils prints %q; pinglab has no such line:\n%s", l, out)
				}
			}
		})
	}
}

func TestPingFloodAsRoot(t *testing.T) {
	testutil.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := runtime.GOMAXPROCS(0)
	out, errOut, code := runCmd(t, ctx, "ping", "-f", "-c", "50", "-q", "127.0.0.1")
	if code != 0 || !strings.Contains(out, "50 packets transmitted, 50 received, 0% packet loss") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	// The flood runs on one P; the rest of the process (here, the other tests) must not.
	if after := runtime.GOMAXPROCS(0); after != before {
		t.Errorf("GOMAXPROCS is %d after the flood, %d before", after, before)
	}
}

func TestPingUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ping"}, "usage error: Destination address required"},
		{[]string{"ping", "127.0.0.1", "-t", "0"}, "cannot set unicast time-to-live: Invalid argument"},
		{[]string{"ping", "127.0.0.1", "-t", "256"}, "invalid argument: '256': out of range: 0 <= value <= 255"},
		{[]string{"ping", "127.0.0.1", "-s", "-1"}, "invalid argument: '-1': out of range: 0 <= value <= 65507"},
		{[]string{"ping", "127.0.0.1", "-s", "65508"}, "payload size out of range: 65508"},
		{[]string{"ping", "-6", "127.0.0.1"}, "127.0.0.1: Address family for hostname not supported"},
		{[]string{"ping", "-M", "sometimes", "127.0.0.1"}, "invalid -M argument: sometimes"},
		{[]string{"ping", "-Q", "300", "127.0.0.1"}, "the decimal value of TOS bits must be in range 0-255: 300"},
		{[]string{"ping", "-p", "xyz", "127.0.0.1"}, "patterns must be specified as hex digits: xyz"},
		{[]string{"ping", "-I", "nosuch0", "127.0.0.1"}, "SO_BINDTODEVICE nosuch0: No such device"},
		{[]string{"ping", "-4", "-6", "::1"}, "-4 and -6 exclude each other"},
		{[]string{"trace", "--proto", "sctp", "127.0.0.1"}, `protocol "sctp" (want udp, udp-port, icmp or tcp)`},
		{[]string{"trace", "-m", "300", "127.0.0.1"}, "max hops 300"},
		{[]string{"trace", "-q", "0", "127.0.0.1"}, "--queries: 0 must be above 0"},
		{[]string{"trace", "-f", "5", "-m", "3", "127.0.0.1"}, "first hop 5"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, errOut, code := runCmd(t, ctx, tt.args...)
		cancel()
		if code != 2 || !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q (want exit 2 and one line with %q), stdout %q", tt.args, code, errOut, tt.want, out)
		}
	}
}

func TestTraceLoopback(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tt := range []struct {
		args   []string
		header string
		hop    string
	}{
		{[]string{"trace", "-n", "-q", "2", "127.0.0.1"}, "traceroute to 127.0.0.1 (127.0.0.1), 30 hops max, 60 byte packets", `^ 1  127\.0\.0\.1  [0-9]+\.[0-9]{3} ms  [0-9]+\.[0-9]{3} ms$`},
		{[]string{"trace", "-n", "--proto", "icmp", "127.0.0.1"}, "traceroute to 127.0.0.1 (127.0.0.1), 30 hops max, 60 byte packets", `^ 1  127\.0\.0\.1  [0-9.]+ ms  [0-9.]+ ms  [0-9.]+ ms$`},
		{[]string{"trace", "-n", "-I", "-q", "1", "::1"}, "traceroute to ::1 (::1), 30 hops max, 80 byte packets", `^ 1  ::1  [0-9.]+ ms$`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, errOut, code := runCmd(t, ctx, tt.args...)
		cancel()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 2 || lines[0] != tt.header || !regexp.MustCompile(tt.hop).MatchString(lines[1]) {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s", tt.args, code, errOut, out)
		}
	}
}

func TestWriteHop(t *testing.T) {
	r1 := netip.MustParseAddr("10.0.0.1")
	r2 := netip.MustParseAddr("10.0.0.9")
	dst := netip.MustParseAddr("10.0.2.2")
	hostUnreach := &icmperr.Error{Type: icmperr.TypeDestUnreach, Code: icmperr.CodeHostUnreach, From: dst}
	tests := []struct {
		hop   icmpping.Hop
		names bool
		want  string
	}{
		{icmpping.Hop{TTL: 1, Probes: []icmpping.HopProbe{{From: r1, RTT: 123 * time.Microsecond}, {From: r1, RTT: 101 * time.Microsecond}, {From: r1, RTT: 99 * time.Microsecond}}}, false,
			" 1  10.0.0.1  0.123 ms  0.101 ms  0.099 ms\n"},
		{icmpping.Hop{TTL: 2, Probes: []icmpping.HopProbe{{}, {}, {}}}, false, " 2  * * *\n"},
		{icmpping.Hop{TTL: 3, Probes: []icmpping.HopProbe{{}, {From: r1, RTT: time.Millisecond}, {From: r2, RTT: 12345 * time.Microsecond}}}, false,
			" 3  * 10.0.0.1  1.000 ms 10.0.0.9  12.345 ms\n"},
		{icmpping.Hop{TTL: 12, Probes: []icmpping.HopProbe{{From: dst, RTT: 301 * time.Microsecond, Err: hostUnreach}, {}}}, false,
			"12  10.0.2.2  0.301 ms !H *\n"},
		{icmpping.Hop{TTL: 1, Probes: []icmpping.HopProbe{{From: r1, Name: "gw.lab", RTT: 123 * time.Microsecond}, {From: r2, RTT: 100 * time.Microsecond}}}, true,
			" 1  gw.lab (10.0.0.1)  0.123 ms 10.0.0.9 (10.0.0.9)  0.100 ms\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeHop(&b, tt.hop, tt.names)
		if diff := cmp.Diff(tt.want, b.String()); diff != "" {
			t.Errorf("writeHop (-want +got):\n%s", diff)
		}
	}
}

// childArgsEnv makes a re-run test binary run pinglab with these arguments and exit with its code.
const childArgsEnv = "PINGLAB_ICMP_TEST_ARGS"

// TestPingAsNobody runs pinglab ping as an unprivileged user (uid 65534): where
// ping_group_range lets nobody in (the default "1 0") it must exit 2 with one line that says why
// and every remedy; and -f or -i below 2 ms are refused as iputils refuses them.
func TestPingAsNobody(t *testing.T) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Exit(run(context.Background(), append([]string{"pinglab"}, strings.Fields(args)...), os.Stdout, os.Stderr))
	}
	testutil.RequireRoot(t)
	r, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil || strings.Join(strings.Fields(string(r)), " ") != "1 0" {
		testutil.SkipOrFail(t, "ping_group_range here is %q, not the default that lets nobody in", r)
	}
	bin := copyForNobody(t)
	tests := []struct {
		args string
		want []string
	}{
		{"ping -c 1 127.0.0.1", []string{"pinglab ping: cannot open an ICMP socket: datagram socket: permission denied",
			`net.ipv4.ping_group_range "1 0"`, `sudo sysctl -w net.ipv4.ping_group_range="0 2147483647"`,
			"sudo setcap cap_net_raw+ep " + bin + "; ", "run it as root"}},
		{"ping -f -c 1 127.0.0.1", []string{"pinglab ping: cannot flood, minimal interval for user must be >= 2 ms, use -i 0.002 (or higher)"}},
		{"ping -i 0.001 -c 1 127.0.0.1", []string{"cannot flood"}},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, "-test.run=^TestPingAsNobody$")
		cmd.Env = []string{childArgsEnv + "=" + tt.args}
		asNobody(t, cmd)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%s: %v, want exit 2; stderr %q", tt.args, err, stderr.String())
			continue
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: more than one line: %q", tt.args, msg)
		}
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q lacks %q", tt.args, msg, w)
			}
		}
	}
}

// copyForNobody copies the test binary where uid 65534 may run it.
func copyForNobody(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pinglab-icmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pinglab.test")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
