package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/udpping"
)

// udpFamilies are the loopbacks the end-to-end tests run on.
var udpFamilies = []struct{ name, flag, loopback string }{
	{"IPv4", "-4", "127.0.0.1"},
	{"IPv6", "-6", "::1"},
}

// udpServer runs the library's server on a free loopback port until the test ends.
func startUDPServer(t *testing.T, cfg udpping.ServerConfig) *udpping.Server {
	t.Helper()
	s, err := udpping.Listen(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// hostPort is how a user types the server's address: "127.0.0.1:PORT" or "[::1]:PORT".
func hostPort(loopback string, port uint16) string {
	return netip.AddrPortFrom(netip.MustParseAddr(loopback), port).String()
}

var lossRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received, (?:\+(\d+) errors, )?([0-9.]+)% packet loss`)

// summary returns the transmitted, received and error counts and the loss of a text summary.
func summary(t *testing.T, out string) (tx, rx, errs int, loss float64) {
	t.Helper()
	m := lossRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", out)
	}
	tx, _ = strconv.Atoi(m[1])
	rx, _ = strconv.Atoi(m[2])
	errs, _ = strconv.Atoi(m[3])
	loss, _ = strconv.ParseFloat(m[4], 64)
	return tx, rx, errs, loss
}

func TestUDPPingNoDrop(t *testing.T) {
	for _, f := range udpFamilies {
		t.Run(f.name, func(t *testing.T) {
			s := startUDPServer(t, udpping.ServerConfig{Addr: hostPort(f.loopback, 0)})
			target := hostPort(f.loopback, s.Addr().Port())
			out, errOut, code := runCmd(t, context.Background(), "udp", "ping", target, "-c", "20", "-i", "5ms", f.flag)
			if code != 0 {
				t.Fatalf("exit %d, want 0; stderr: %s\n%s", code, errOut, out)
			}
			if tx, rx, _, loss := summary(t, out); tx != 20 || rx != 20 || loss != 0 {
				t.Errorf("%d transmitted, %d received, %g%% loss; want 20, 20, 0%%:\n%s", tx, rx, loss, out)
			}
			wantLine := fmt.Sprintf("%d bytes from %s: udp_seq=20 time=", udpping.DefaultSize, target)
			if !strings.Contains(out, wantLine) || !strings.HasPrefix(out, "PING "+target) {
				t.Errorf("output lacks the header or %q:\n%s", wantLine, out)
			}
		})
	}
}

func TestUDPPingDropAll(t *testing.T) {
	for _, f := range udpFamilies {
		t.Run(f.name, func(t *testing.T) {
			s := startUDPServer(t, udpping.ServerConfig{Addr: hostPort(f.loopback, 0), Drop: 1})
			out, errOut, code := runCmd(t, context.Background(), "udp", "ping", hostPort(f.loopback, s.Addr().Port()),
				"-c", "5", "-i", "5ms", "-W", "100ms")
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s\n%s", code, errOut, out)
			}
			if tx, rx, _, loss := summary(t, out); tx != 5 || rx != 0 || loss != 100 {
				t.Errorf("%d transmitted, %d received, %g%% loss; want 5, 0, 100%%:\n%s", tx, rx, loss, out)
			}
			if n := strings.Count(out, "Request timeout for udp_seq="); n != 5 {
				t.Errorf("%d timeout lines, want 5:\n%s", n, out)
			}
		})
	}
}

// TestUDPPingSeededDrop sends 500 probes to a server that drops 20% with a fixed seed; the
// client measures a loss within 15-25%.
func TestUDPPingSeededDrop(t *testing.T) {
	for _, f := range udpFamilies {
		t.Run(f.name, func(t *testing.T) {
			s := startUDPServer(t, udpping.ServerConfig{Addr: hostPort(f.loopback, 0), Drop: 0.2, Seed: 20})
			// 1 ms apart, each with a generous timeout: the run takes about 1.5 s.
			out, errOut, code := runCmd(t, context.Background(), "udp", "ping", hostPort(f.loopback, s.Addr().Port()),
				"-c", "500", "-i", "1ms", "-W", "1s", "-q")
			if code != 0 {
				t.Fatalf("exit %d, want 0; stderr: %s\n%s", code, errOut, out)
			}
			tx, rx, _, loss := summary(t, out)
			if tx != 500 || loss < 15 || loss > 25 {
				t.Errorf("%d transmitted, %d received, %g%% loss; want 500 and 15-25%% loss:\n%s", tx, rx, loss, out)
			}
			st := s.Stats()
			if len(st) != 1 || st[0].Received != 500 || st[0].Echoed != rx {
				t.Errorf("server counted %+v; the client received %d of 500", st, rx)
			}
		})
	}
}

// TestUDPPingNoServer pings a port where nothing listens: every probe comes back as the
// kernel's ICMP port unreachable, reported as an error, never a timeout.
func TestUDPPingNoServer(t *testing.T) {
	for _, f := range udpFamilies {
		t.Run(f.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", hostPort(f.loopback, 0))
			if err != nil {
				t.Fatal(err)
			}
			target := pc.LocalAddr().String()
			pc.Close()
			out, errOut, code := runCmd(t, context.Background(), "udp", "ping", target, "-c", "10", "-i", "10ms", "-W", "2s")
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s\n%s", code, errOut, out)
			}
			words := map[string]string{"IPv4": "Destination Port Unreachable", "IPv6": "Destination unreachable: Port unreachable"}[f.name]
			for seq := 1; seq <= 10; seq++ {
				if want := fmt.Sprintf("From %s udp_seq=%d %s\n", f.loopback, seq, words); !strings.Contains(out, want) {
					t.Errorf("no line %q in:\n%s", want, out)
				}
			}
			if strings.Contains(out, "Request timeout") {
				t.Errorf("a probe timed out instead of reporting its error:\n%s", out)
			}
			if tx, rx, errs, loss := summary(t, out); tx != 10 || rx != 0 || errs != 10 || loss != 100 {
				t.Errorf("%d transmitted, %d received, +%d errors, %g%% loss; want 10, 0, +10, 100%%", tx, rx, errs, loss)
			}
		})
	}
}

// TestUDPPingTwoClients runs two clients at once against one dual-stack server: the command
// over IPv4 and, beside it, the same transport and engine over IPv6 (urfave/cli keeps global
// state, so two commands cannot run in one process at once).
func TestUDPPingTwoClients(t *testing.T) {
	s := startUDPServer(t, udpping.ServerConfig{Addr: ":0"})
	conn, err := udpping.Dial(context.Background(), udpping.Config{Addr: hostPort("::1", s.Addr().Port())})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	var replies int
	wg.Go(func() {
		_, err := probe.Run(context.Background(), conn, probe.Options{Count: 30, Interval: 5 * time.Millisecond}, func(ev probe.Event) {
			if ev.Type == probe.EventReply {
				replies++
			}
		})
		if err != nil {
			t.Errorf("IPv6 client: %v", err)
		}
	})
	out, errOut, code := runCmd(t, context.Background(), "udp", "ping", hostPort("127.0.0.1", s.Addr().Port()), "-c", "30", "-i", "5ms")
	wg.Wait()
	if code != 0 {
		t.Fatalf("IPv4 client: exit %d, stderr %s\n%s", code, errOut, out)
	}
	if tx, rx, _, _ := summary(t, out); tx != 30 || rx != 30 || replies != 30 {
		t.Errorf("IPv4 client: %d transmitted, %d received; IPv6 client: %d replies; want 30 each", tx, rx, replies)
	}
	st := s.Stats()
	if len(st) != 2 || st[0].Echoed != 30 || st[1].Echoed != 30 {
		t.Errorf("server counted %+v, want two clients with 30 echoes each", st)
	}
}

// TestUDPPingPlainEcho pings an echo server that does not upper-case, as socat's is.
func TestUDPPingPlainEcho(t *testing.T) {
	for _, f := range udpFamilies {
		t.Run(f.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", hostPort(f.loopback, 0))
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				buf := make([]byte, 1<<16)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					pc.WriteTo(buf[:n], from)
				}
			})
			defer func() { pc.Close(); wg.Wait() }()
			out, errOut, code := runCmd(t, context.Background(), "udp", "ping", pc.LocalAddr().String(), "-c", "5", "-i", "5ms", "--format", "assignment")
			if code != 0 {
				t.Fatalf("exit %d, stderr %s\n%s", code, errOut, out)
			}
			if n := strings.Count(out, "Response received is: ping "); n != 5 {
				t.Errorf("%d lower-case responses, want 5:\n%s", n, out)
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer a running command writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUDPServerCommand runs "pinglab udp server", pings it with pinglab and sends it garbage,
// empty and largest datagrams, then stops it as Ctrl-C does and reads its log and table.
func TestUDPServerCommand(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"pinglab", "udp", "server", "--listen", addr, "--drop", "0", "--delay", "1ms"}, &out, &errOut)
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

	conn, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 1<<16)
	for _, m := range [][]byte{[]byte("\x00\xffgarbage\n"), {}, bytes.Repeat([]byte("x"), udpping.MaxSize)} {
		conn.Write(m)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil || n != len(m) {
			t.Fatalf("echo of a %d-byte datagram: %d bytes, %v", len(m), n, err)
		}
	}
	pout, perr, code := runCmd(t, context.Background(), "udp", "ping", addr, "-c", "3", "-i", "5ms")
	if code != 0 {
		t.Fatalf("ping: exit %d, stderr %s\n%s", code, perr, pout)
	}

	cancel()
	stopped = true
	if code := <-done; code != 0 {
		t.Errorf("server exit %d, stderr %q", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		`received 10 bytes from 127.0.0.1:`, `: "\x00\xffgarbage\n" -> echoed after 1ms`,
		`received 0 bytes from `, `received 65507 bytes from `, `: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ... -> echoed`,
		"--- udp server statistics ---\nclient ",
		"  received    echoed   dropped    errors\n",
		"       3         3         0         0\n", // pinglab's client
		"       3         3         0         0\n", // the test's socket
		"\ntotal ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("server output lacks %q:\n%s", want, got)
		}
	}
	// A ping is shown without its padding.
	if !regexp.MustCompile(`received 40 bytes from 127\.0\.0\.1:\d+: ping 3 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} \.\.\. -> echoed after 1ms\n`).MatchString(got) {
		t.Errorf("server output lacks the line of ping 3:\n%s", got)
	}
	if !regexp.MustCompile(`total\s+6\s+6\s+0\s+0\n$`).MatchString(got) {
		t.Errorf("server table does not end with the total 6 6 0 0:\n%s", got)
	}
}

func TestUDPServerCannotBind(t *testing.T) {
	s := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0"})
	out, errOut, code := runCmd(t, context.Background(), "udp", "server", "--listen", s.Addr().String())
	if code != 2 || !strings.Contains(errOut, "address already in use") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and one line saying the address is in use", code, errOut, out)
	}
}

// TestUDPBadInput checks that each mistake exits 2 with one line naming it, before sending.
func TestUDPBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"udp", "ping", "no..such..host", "-c", "1"}, `cannot resolve "no..such..host"`},
		{[]string{"udp", "ping", "127.0.0.1:99999", "-c", "1"}, `bad port "99999"`},
		{[]string{"udp", "ping", "127.0.0.1:x", "-c", "1"}, `bad port "x"`},
		{[]string{"udp", "ping", "127.0.0.1", "-c", "-1"}, "-c: -1 is negative"},
		{[]string{"udp", "ping", "127.0.0.1", "-i", "-1"}, `--interval: "-1" is negative`},
		{[]string{"udp", "ping", "127.0.0.1", "-s", "10"}, "size too small for the message (at least 33 bytes), not 10"},
		{[]string{"udp", "ping", "127.0.0.1", "-s", "65508"}, "size above 65507"},
		{[]string{"udp", "ping", "-4", "::1"}, "::1 is not an IPv4 address"},
		{[]string{"udp", "ping"}, "missing HOST[:PORT]"},
		{[]string{"udp", "server", "--drop", "150%"}, `--drop: "150%" is outside 0% to 100%`},
		{[]string{"udp", "server", "--delay", "-5ms"}, `--delay: "-5ms" is negative`},
		{[]string{"udp", "server", "--icmp-error", "150%"}, `--icmp-error: "150%" is outside 0% to 100%`},
		{[]string{"udp", "server", "--icmp-error", "10%", "--icmp-error-type", "host"},
			`--icmp-error-type: unknown ICMP error type "host" (choose host-unreachable, net-unreachable, port-unreachable, proto-unreachable, admin-prohibited)`},
		{[]string{"udp", "server", "--icmp-error-type", "prot-unreachable"}, `unknown ICMP error type "prot-unreachable" (choose `},
		{[]string{"udp", "server", "--listen", "127.0.0.1:99999"}, "listen on 127.0.0.1:99999"},
		{[]string{"demo", "--drop", "2"}, `--drop: "2" is above 1`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := runCmd(t, context.Background(), tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2, one line with %q", code, errOut, out, tt.want)
			}
		})
	}
}

// TestDemo runs the demo, faster than its default pace, with a fixed seed.
func TestDemo(t *testing.T) {
	out, errOut, code := runCmd(t, context.Background(), "demo", "--seed", "1", "-i", "10ms", "-W", "500ms")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s\n%s", code, errOut, out)
	}
	tx, rx, _, loss := summary(t, out)
	if tx != 20 || loss <= 0 || loss >= 50 {
		t.Errorf("%d transmitted, %g%% loss; want 20 and a loss between 0%% and 50%%:\n%s", tx, loss, out)
	}
	if !strings.Contains(out, fmt.Sprintf("server: received 20, echoed %d, dropped %d\n", rx, 20-rx)) {
		t.Errorf("the server's counts do not match the client's %d replies:\n%s", rx, out)
	}
	if n := strings.Count(out, " udp_seq="); n != 20 {
		t.Errorf("%d per-probe lines, want 20:\n%s", n, out)
	}
}

// TestUDPHelp checks that each command's help shows examples.
func TestUDPHelp(t *testing.T) {
	for _, args := range [][]string{{"demo", "--help"}, {"udp", "server", "--help"}, {"udp", "ping", "--help"}} {
		out, _, code := runCmd(t, context.Background(), args...)
		if code != 0 || !regexp.MustCompile(`Examples:\n +pinglab `).MatchString(out) {
			t.Errorf("%q: exit %d, no examples:\n%s", args, code, out)
		}
	}
}
