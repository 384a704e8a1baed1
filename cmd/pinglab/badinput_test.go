package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
)

// TestBadInput runs every command with bad input and asserts what a user must get: exactly one
// line on stderr naming the problem, nothing on stdout, exit code 2, and nothing sent. Each run
// is a child process (the test binary as pinglab). As root the children run in a network
// namespace of their own where raw sockets see every UDP, TCP and ICMP packet that anything
// sends; otherwise they aim at a UDP and a TCP listener on loopback that count what reaches
// them.
func TestBadInput(t *testing.T) {
	testutil.HostOnly(t, "input checks do not depend on the kernel, and on the emulated CPU they would take a tenth of the VM's time budget")
	dir := t.TempDir()
	noReplies := filepath.Join(dir, "noreplies.csv")
	headerOnly := filepath.Join(dir, "header.csv")
	garbage := filepath.Join(dir, "garbage.csv")
	const header = "seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error\n"
	for path, data := range map[string]string{
		noReplies:  header + "1,1795363910.182959,timeout,,,,,,udp,127.0.0.1:9,\n2,1795363911.182959,error,,,127.0.0.1,3,3,udp,127.0.0.1:9,Destination Port Unreachable\n",
		headerOnly: header,
		garbage:    "time,latency\n1,2\n",
	} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := newWitness(t)
	u, tc := w.udpTarget, w.tcpTarget
	// {udp} and {tcp} stand for the witness's addresses, {dir} for a folder of test files.
	tests := []struct {
		args string
		want string // in the one line
	}{
		{"nosuch", `no command "nosuch"`},
		{"udp", "missing subcommand: server, ping"},
		{"tcp", "missing subcommand"},
		{"lossy", "missing subcommand"},
		{"lab", "missing subcommand"},
		{"udp nosuch", `no subcommand "nosuch"`},

		// watch checks every target before any is pinged.
		{"watch", "no TARGET"},
		{"watch 127.0.0.1 foo:{udp}", `unknown scheme "foo"`},
		{"watch udp:{udp} udp:127.0.0.1:99999", `bad port "99999"`},
		{"watch tcp:{tcp} tcp:127.0.0.1:http", `bad port "http"`},
		{"watch udp:127.0.0.1:1:2", "bad HOST:PORT"},
		{"watch udp:{udp} -W 0", "-W: the timeout must be above 0"},
		{"watch udp:{udp} --connect sometimes", "--connect"},

		// Every client, the same bad flags.
		{"udp ping {udp} -c -1", "-c: -1 is negative"},
		{"udp ping {udp} -i soon", `--interval: "soon" is not a duration`},
		{"udp ping {udp} -W 0", "-W: the timeout must be above 0"},
		{"udp ping {udp} --format xml", "--format"},
		{"udp ping {udp} --csv /missing/dir/x.csv", "--csv: cannot write in /missing/dir"},
		{"udp ping {udp} --plot /missing/dir/x.png", "--plot: cannot write in /missing/dir"},
		{"udp ping {udp} --plot x.gif", "--plot"},
		{"udp ping {udp} --csv {dir}", "is a folder"},
		{"udp ping {udp} -4 -6", "-4 and -6 exclude each other"},
		{"udp ping {udp} --nosuch", "nosuch"},
		{"udp ping {udp} -s 0", "size too small for the message (at least 33 bytes), not 0"},
		{"udp ping {udp} -s 10", "not 10"},
		{"udp ping {udp} -s 70000", "70000"},
		{"udp ping {udp} --window -1", "--window"},
		{"udp ping {udp} {udp}", "one HOST[:PORT] expected"},
		{"udp ping", "missing HOST[:PORT]"},
		{"udp ping 127.0.0.1:99999", `bad port "99999"`},
		{"udp ping ::1:12000", "[ADDR]:PORT"},
		{"tcp ping {tcp} -c -1", "-c: -1 is negative"},
		{"tcp ping {tcp} --csv /missing/dir/x.csv", "--csv: cannot write in /missing/dir"},
		{"tcp ping {tcp} --plot /missing/dir/x.png", "--plot: cannot write in /missing/dir"},
		{"tcp ping {tcp} -s 0", "not 0"},
		{"tcp ping {tcp} --connect sometimes", "--connect"},
		{"tcp ping {tcp} --format xml", "--format"},
		{"tcp ping ::1:12000", "[ADDR]:PORT"},
		{"ping 127.0.0.1 -c -1", "'-1': out of range"}, // iputils' words, as pinglab ping has them
		{"ping 127.0.0.1 --csv /missing/dir/x.csv", "--csv: cannot write in /missing/dir"},
		{"ping 127.0.0.1 --plot /missing/dir/x.png", "--plot: cannot write in /missing/dir"},
		{"ping 127.0.0.1 -t 256", "'256': out of range: 0 <= value <= 255"},
		{"ping 127.0.0.1 -W 0", "-W"},
		{"ping 127.0.0.1 -s 70000", "70000"},
		{"ping", "Destination address required"},
		{"demo --csv /missing/x.csv", "--csv: cannot write in /missing"},
		{"demo --drop 150%", `--drop: "150%" is outside 0% to 100%`},
		{"demo -s 0", "not 0"},
		{"demo extra", "takes no arguments"},

		// traceroute's options, all before its header.
		{"trace -m 256 127.0.0.1", "max hops 256 (want 1..255)"},
		{"trace -q 11 127.0.0.1", "11 queries per hop (want 1..10)"},
		{"trace -f 40 127.0.0.1", "first hop 40 (want 1..30)"},
		{"trace -f 5 -m 3 127.0.0.1", "first hop 5 (want 1..3)"},
		{"trace -p 70000 127.0.0.1", "port 70000"},
		{"trace -w 0 127.0.0.1", "-w: the wait must be above 0"},
		{"trace --proto sctp 127.0.0.1", `protocol "sctp"`},
		{"trace", "missing HOST"},

		// Servers.
		{"udp server --drop 150%", `--drop: "150%" is outside 0% to 100%`},
		{"udp server --delay -1", "--delay"},
		{"udp server --icmp-error-type host", `--icmp-error-type: unknown ICMP error type "host"`},
		{"udp server 127.0.0.1", "the address goes in --listen"},
		{"tcp server --drop-mode sometimes", "--drop-mode"},
		{"tcp server --max-conns 0", "--max-conns: 0 is below 1"},
		{"tcp server --drop 2", `--drop: "2" is above 1`},

		// lossy and lab: bad input is named before the privilege is looked at.
		{"lossy reject", "--with TYPE is required"},
		{"lossy reject --with bogus", "--with"},
		{"lossy netem", "--dev IF is required"},
		{"lossy netem --dev eth0 --loss 20% --jitter 10ms", "jitter needs a delay"},
		{"lossy netem --dev eth0 --rate fast", "--rate"},
		{"lossy drop", "--prob is required"},
		{"lossy drop --prob 20% --port 70000", "--port: 70000 is not a port"},
		{"lossy drop --prob 20% --from bogus", `"bogus" (want an address like 10.77.1.1`},
		{"lossy drop --prob 20% --proto sctp", `"sctp": protocol must be udp, tcp or icmp`},
		{"lossy drop --prob 20% --dir sideways", "direction must be in or out"},
		{"lossy drop --prob 20% --for soon", "--for"},
		{"lab up --hosts 4", "--hosts: 4 (want 2 or 3)"},
		{"lab exec", "want a host and a command"},
		{"lab exec client", "want a host and a command"},

		// Saved runs.
		{"plot {dir}/noreplies.csv -o {dir}/out.png", "noreplies.csv: no replies to draw"},
		{"plot {dir}/header.csv -o {dir}/out.png", "header.csv: no probes in it"},
		{"plot {dir}/garbage.csv -o {dir}/out.png", "garbage.csv:1: not a pinglab CSV"},
		{"plot {dir}/nosuch.csv -o {dir}/out.png", "nosuch.csv"},
		{"plot {dir}/noreplies.csv", "-o FILE is required"},
		{"plot {dir}/noreplies.csv -o {dir}/out.gif", "-o"},
		{"plot {dir}/noreplies.csv -o /missing/dir/out.png", "-o: cannot write in /missing/dir"},
		{"plot {dir}/noreplies.csv -o {dir}/out.png --width 10", "--width: 10 pixels"},
		{"plot -o {dir}/out.png", "no run to read"},
		{"report {dir}/nosuch.csv", "nosuch.csv"},
		{"report {dir}/garbage.csv", "garbage.csv:1: not a pinglab CSV"},
		{"report {dir}/noreplies.csv --format xml", "--format"},
	}
	// The witness sees what a good run sends, or its silence below would prove nothing.
	for _, good := range [][]string{{"udp", "ping", u, "-c", "1", "-W", "0.2"}, {"tcp", "ping", tc, "-c", "1", "-W", "0.2"}} {
		w.run(t, good)
		if n := w.sent(); n == 0 {
			t.Fatalf("pinglab %s: the witness saw nothing", strings.Join(good, " "))
		}
	}
	for _, tt := range tests {
		args := strings.NewReplacer("{udp}", u, "{tcp}", tc, "{dir}", dir).Replace(tt.args)
		t.Run(tt.args, func(t *testing.T) {
			stdout, stderr, code := w.run(t, strings.Fields(args))
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("pinglab %s: exit %d, stdout %q, stderr %q; want exit 2, no stdout, one line with %q",
					args, code, stdout, stderr, tt.want)
			}
			if m := libraryWords.FindString(commandName.ReplaceAllString(stderr, "")); m != "" {
				t.Errorf("pinglab %s: stderr %q has the library's %q", args, stderr, m)
			}
			if n := w.sent(); n != 0 {
				t.Errorf("pinglab %s sent %d packets (or connections); bad input must send nothing", args, n)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "out.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a plot that failed left %s behind (%v)", filepath.Join(dir, "out.png"), err)
	}
}

// libraryWords are what a Go package says of itself and a user should never read.
var libraryWords = regexp.MustCompile(`(^|[^-\w])(udpping|tcpping|icmpping|lossy|proxy|report|plot|pingmsg|probe|impair|sock|trace): |ParseAddr|ParseInt|strconv\.|netip\.`)

// commandName is the start of every error line: "pinglab lossy drop: ".
var commandName = regexp.MustCompile(`^pinglab( [a-z]+)*: `)

// A witness runs pinglab children and counts what they send.
type witness struct {
	netns                string // the children's namespace, "" for the test's own
	udpTarget, tcpTarget string
	count                func() int
}

func newWitness(t *testing.T) *witness {
	w := &witness{}
	if os.Geteuid() == 0 {
		w.netns = fmt.Sprintf("plbad%d", os.Getpid())
		h := testutil.NewNetns(t, w.netns)
		var conns []net.PacketConn
		testutil.InNetns(t, h, func() {
			for _, network := range []string{"ip4:udp", "ip4:tcp", "ip4:icmp", "ip6:udp", "ip6:tcp", "ip6:ipv6-icmp"} {
				c, err := net.ListenPacket(network, "")
				if err != nil {
					t.Fatalf("raw %s socket: %v", network, err)
				}
				conns = append(conns, c)
			}
		})
		var n atomic.Int64
		for _, c := range conns {
			t.Cleanup(func() { c.Close() })
			go func() {
				buf := make([]byte, 65536)
				for {
					if _, _, err := c.ReadFrom(buf); err != nil {
						return
					}
					n.Add(1)
				}
			}()
		}
		w.udpTarget, w.tcpTarget = "127.0.0.1:12000", "127.0.0.1:12000"
		w.count = func() int { time.Sleep(20 * time.Millisecond); return int(n.Swap(0)) }
		return w
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	w.udpTarget, w.tcpTarget = pc.LocalAddr().String(), ln.Addr().String()
	w.count = func() int { time.Sleep(20 * time.Millisecond); return int(n.Swap(0)) }
	return w
}

func (w *witness) sent() int { return w.count() }

func (w *witness) run(t *testing.T, args []string) (stdout, stderr string, code int) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{self}, args...)
	if w.netns != "" {
		argv = append([]string{"ip", "netns", "exec", w.netns}, argv...)
	}
	cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), asPinglabEnv+"=1")
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}
