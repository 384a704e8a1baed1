package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/pinglab/pinglab/internal/testutil"
	"github.com/pinglab/pinglab/udpping"
)

// newUDPTestNS creates a network namespace with its loopback up, removed when the test ends.
// The ICMP error tests run there: their raw sockets then see only the test's traffic.
func newUDPTestNS(t *testing.T) netns.NsHandle {
	t.Helper()
	return testutil.NewNetns(t, fmt.Sprintf("udppingtest%d-cmd", os.Getpid()))
}

// TestUDPPingICMPErrors runs pinglab's UDP client against a server that answers every ping
// with an ICMP error of each type, over IPv4 and IPv6: every probe is reported with the error's
// words, in the text and in the assignment's format, and counted as an error.
func TestUDPPingICMPErrors(t *testing.T) {
	ns := newUDPTestNS(t)
	for _, f := range udpFamilies {
		for _, name := range udpping.ICMPErrorTypes() {
			t.Run(f.name+"/"+name, func(t *testing.T) {
				typ, _ := udpping.ParseICMPErrorType(name)
				var srv *udpping.Server
				var err error
				testutil.InNetns(t, ns, func() {
					srv, err = udpping.Listen(context.Background(), udpping.ServerConfig{Addr: hostPort(f.loopback, 0), ICMPError: 1, ICMPErrorType: typ})
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- srv.Serve(ctx) }()
				defer func() { cancel(); <-done }()
				target := hostPort(f.loopback, srv.Addr().Port())
				words := typ.Error(f.flag == "-6").Words()

				var out, errOut string
				var code int
				testutil.InNetns(t, ns, func() {
					out, errOut, code = runCmd(t, context.Background(), "udp", "ping", target, "-c", "3", "-i", "5ms", "-W", "5s")
				})
				if code != 1 {
					t.Fatalf("exit %d, want 1; stderr: %s\n%s", code, errOut, out)
				}
				for seq := 1; seq <= 3; seq++ {
					if want := fmt.Sprintf("From %s udp_seq=%d %s\n", f.loopback, seq, words); !strings.Contains(out, want) {
						t.Errorf("no line %q in:\n%s", want, out)
					}
				}
				if tx, rx, errs, loss := summary(t, out); tx != 3 || rx != 0 || errs != 3 || loss != 100 {
					t.Errorf("%d transmitted, %d received, +%d errors, %g%% loss; want 3, 0, +3, 100%%:\n%s", tx, rx, errs, loss, out)
				}

				testutil.InNetns(t, ns, func() {
					out, errOut, code = runCmd(t, context.Background(), "udp", "ping", target, "-c", "3", "-i", "5ms", "-W", "5s", "--format", "assignment")
				})
				for seq := 1; seq <= 3; seq++ {
					if want := fmt.Sprintf("ICMP %s error received for packet %d\n", words, seq); !strings.Contains(out, want) {
						t.Errorf("no line %q in (exit %d, stderr %q):\n%s", want, code, errOut, out)
					}
				}
				if strings.Contains(out, "Response received") || strings.Contains(out, "is lost") {
					t.Errorf("a probe was echoed or lost:\n%s", out)
				}
				if st := srv.Stats(); len(st) != 2 || st[0].Errors != 3 || st[1].Errors != 3 || st[0].Echoed+st[1].Echoed != 0 {
					t.Errorf("server counted %+v, want two clients with 3 errors each and no echo", st)
				}
			})
		}
	}
}

// TestUDPPingICMPHostUnreachableAssignment pins the handout's line for the handout's error.
func TestUDPPingICMPHostUnreachableAssignment(t *testing.T) {
	ns := newUDPTestNS(t)
	var srv *udpping.Server
	var err error
	testutil.InNetns(t, ns, func() {
		srv, err = udpping.Listen(context.Background(), udpping.ServerConfig{Addr: "127.0.0.1:0", ICMPError: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	var out string
	testutil.InNetns(t, ns, func() {
		out, _, _ = runCmd(t, context.Background(), "udp", "ping", srv.Addr().String(), "-c", "2", "-i", "5ms", "--format", "assignment")
	})
	want := "ICMP Destination Host Unreachable error received for packet 1\nICMP Destination Host Unreachable error received for packet 2\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("output does not start with\n%s\ngot:\n%s", want, out)
	}
}

// TestUDPServerICMPErrorCommand runs "pinglab udp server --icmp-error 100%" and reads its log,
// one line per error in the handout's words, and its table with the errors column.
func TestUDPServerICMPErrorCommand(t *testing.T) {
	ns := newUDPTestNS(t)
	const addr = "127.0.0.1:12099"
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine, in ns
		if err := netns.Set(ns); err != nil {
			fmt.Fprintf(&errOut, "enter the namespace: %v\n", err)
			done <- -1
			return
		}
		done <- run(ctx, []string{"pinglab", "udp", "server", "--listen", addr, "--icmp-error", "100%",
			"--icmp-error-type", "port-unreachable", "--seed", "3"}, &out, &errOut)
	}()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "UDP echo server on "+addr); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start; stdout %q, stderr %q", out.String(), errOut.String())
		}
	}
	var pout, perr string
	var code int
	testutil.InNetns(t, ns, func() {
		pout, perr, code = runCmd(t, context.Background(), "udp", "ping", addr, "-c", "3", "-i", "5ms")
	})
	if code != 1 || !strings.Contains(pout, "From 127.0.0.1 udp_seq=3 Destination Port Unreachable\n") {
		t.Errorf("ping: exit %d, stderr %s\n%s", code, perr, pout)
	}
	cancel()
	stopped = true
	if code := <-done; code != 0 {
		t.Errorf("server exit %d, stderr %q", code, errOut.String())
	}
	got := out.String()
	if want := "UDP echo server on " + addr + ": ICMP port-unreachable 100% (seed 3); Ctrl-C stops it\n"; !strings.HasPrefix(got, want) {
		t.Errorf("server output does not start with %q:\n%s", want, got)
	}
	line := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{6} received 40 bytes from 127\.0\.0\.1:(\d+): ping \d .* -> Sending ICMP 'Port Unreachable' to 127\.0\.0\.1:(\d+)$`)
	lines := line.FindAllStringSubmatch(got, -1)
	if len(lines) != 3 || lines[0][1] != lines[0][2] {
		t.Errorf("want 3 lines sending the error back to the sender, got %q:\n%s", lines, got)
	}
	if !strings.Contains(got, "  received    echoed   dropped    errors\n") ||
		!regexp.MustCompile(`\n127\.0\.0\.1:\d+\s+3\s+0\s+0\s+3\ntotal\s+3\s+0\s+0\s+3\n$`).MatchString(got) {
		t.Errorf("server table lacks the errors column or its counts:\n%s", got)
	}
}

// TestUDPServerNeedsNetRaw runs the server without CAP_NET_RAW: one line says so, exit 2,
// nothing served.
func TestUDPServerNeedsNetRaw(t *testing.T) {
	ns := newUDPTestNS(t)
	var out, errOut string
	var code int
	testutil.WithoutNetRaw(t, ns, func() {
		out, errOut, code = runCmd(t, context.Background(), "udp", "server", "--listen", "127.0.0.1:0", "--icmp-error", "10%")
	})
	if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "needs CAP_NET_RAW") ||
		!strings.Contains(errOut, "operation not permitted") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line saying CAP_NET_RAW is needed", code, out, errOut)
	}
	// The same server without ICMP errors needs no privilege: it starts (and stops with ctx).
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	testutil.WithoutNetRaw(t, ns, func() {
		out, errOut, code = runCmd(t, ctx, "udp", "server", "--listen", "127.0.0.1:0", "--quiet")
	})
	if code != 0 || !strings.HasPrefix(out, "UDP echo server on 127.0.0.1:") {
		t.Errorf("without --icmp-error: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
