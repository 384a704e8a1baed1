package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/tcpping"
	"github.com/pinglab/pinglab/udpping"
)

// startTCPServer runs the library's server on a free loopback port until the test ends.
func startTCPServer(t *testing.T, cfg tcpping.ServerConfig) *tcpping.Server {
	t.Helper()
	s, err := tcpping.Listen(context.Background(), cfg)
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

// normalize blanks out what differs from run to run (times, ports, timestamps in messages)
// and, with the protocol words made the same, what differs between UDP and TCP.
func normalize(s string) string {
	for _, r := range []struct{ re, with string }{
		{`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}`, "DATE TIME"},
		{`time=[0-9.]+ ms`, "time=T ms"},
		{`time \d+ms`, "time Tms"},
		{`= [0-9./]+ ms`, "= RTTS ms"},
		{`jitter = [0-9.]+ ms`, "jitter = J ms"},
		{` is [0-9]+\.[0-9]{6}`, " is RTT"},
		{`(127\.0\.0\.1|\[::1\]):\d+`, "$1:PORT"},
		{`udp`, "tcp"},
		{`UDP`, "TCP"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// TestTCPPingLikeUDP runs "pinglab tcp ping" and "pinglab udp ping" against servers that drop
// the same probe (same seed; TCP's silently, as UDP's must) and checks that each output format
// prints the same, but for the protocol's name.
func TestTCPPingLikeUDP(t *testing.T) {
	const seed = 3 // drops probe 4 of 10
	for _, f := range udpFamilies {
		for _, format := range []string{"text", "assignment"} {
			t.Run(f.name+"/"+format, func(t *testing.T) {
				// Fresh servers: a seeded server's decisions go on from where the last run left.
				us := startUDPServer(t, udpping.ServerConfig{Addr: hostPort(f.loopback, 0), Drop: 0.2, Seed: seed})
				ts := startTCPServer(t, tcpping.ServerConfig{Addr: hostPort(f.loopback, 0), Drop: 0.2, DropMode: tcpping.DropSilent, Seed: seed})
				// Stop-and-wait keeps the order of the lines free of timing.
				args := []string{"-c", "10", "-i", "0", "-W", "1s", "--format", format}
				uout, uerr, ucode := runCmd(t, context.Background(), append([]string{"udp", "ping", hostPort(f.loopback, us.Addr().Port())}, args...)...)
				tout, terr, tcode := runCmd(t, context.Background(), append([]string{"tcp", "ping", hostPort(f.loopback, ts.Addr().Port())}, args...)...)
				if ucode != 0 || tcode != 0 {
					t.Fatalf("udp exit %d (%s), tcp exit %d (%s)", ucode, uerr, tcode, terr)
				}
				if diff := cmp.Diff(normalize(uout), normalize(tout)); diff != "" {
					t.Errorf("tcp ping output differs from udp ping's (-udp +tcp):\n%s", diff)
				}
				lostLine := map[string]string{"text": "Request timeout for tcp_seq=4\n", "assignment": "Packet 4 is lost\n"}[format]
				if !strings.Contains(tout, lostLine) {
					t.Errorf("output lacks %q:\n%s", lostLine, tout)
				}
			})
		}
	}
}

// TestTCPPingRefused pings a port where nothing listens, in both connect modes: every probe is
// reported refused, exit 1, and the output is the golden file's.
func TestTCPPingRefused(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tcp", "refused.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range udpFamilies {
		for _, connect := range []string{"keep", "per-ping"} {
			t.Run(f.name+"/"+connect, func(t *testing.T) {
				ln, err := net.Listen("tcp", hostPort(f.loopback, 0))
				if err != nil {
					t.Fatal(err)
				}
				target := ln.Addr().String()
				ln.Close()
				out, errOut, code := runCmd(t, context.Background(), "tcp", "ping", target, "-c", "3", "-i", "0", "--connect", connect)
				if code != 1 || errOut != "" {
					t.Fatalf("exit %d, stderr %q; want 1 and nothing", code, errOut)
				}
				got := strings.ReplaceAll(normalize(out), f.loopback, "ADDR")
				got = strings.ReplaceAll(got, "[ADDR]", "ADDR")
				if diff := cmp.Diff(string(want), got); diff != "" {
					t.Errorf("output differs from testdata/tcp/refused.golden (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestTCPPingDropAll checks exit 1 and a "lost" line per probe when every ping is answered LOST.
func TestTCPPingDropAll(t *testing.T) {
	for _, f := range udpFamilies {
		t.Run(f.name, func(t *testing.T) {
			s := startTCPServer(t, tcpping.ServerConfig{Addr: hostPort(f.loopback, 0), Drop: 1})
			out, errOut, code := runCmd(t, context.Background(), "tcp", "ping", hostPort(f.loopback, s.Addr().Port()), "-c", "5", "-i", "0", f.flag)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %s\n%s", code, errOut, out)
			}
			if tx, rx, _, loss := summary(t, out); tx != 5 || rx != 0 || loss != 100 {
				t.Errorf("%d transmitted, %d received, %g%% loss; want 5, 0, 100%%:\n%s", tx, rx, loss, out)
			}
			if n := strings.Count(out, ": server answered LOST\n"); n != 5 {
				t.Errorf("%d LOST lines, want 5:\n%s", n, out)
			}
		})
	}
}

// TestTCPPingPerPing checks that per-ping mode prints the connect time of each probe.
func TestTCPPingPerPing(t *testing.T) {
	s := startTCPServer(t, tcpping.ServerConfig{Addr: "127.0.0.1:0"})
	target := s.Addr().String()
	out, errOut, code := runCmd(t, context.Background(), "tcp", "ping", target, "-c", "3", "-i", "5ms", "--connect", "per-ping")
	if code != 0 {
		t.Fatalf("exit %d; stderr %s\n%s", code, errOut, out)
	}
	for seq := 1; seq <= 3; seq++ {
		re := regexp.MustCompile(fmt.Sprintf(`\n%d bytes from %s: tcp_seq=%d time=[0-9.]+ ms connect=[0-9.]+ ms\n`, tcpping.DefaultSize, regexp.QuoteMeta(target), seq))
		if !re.MatchString(out) {
			t.Errorf("no reply line with a connect time for seq %d:\n%s", seq, out)
		}
	}
	if st := s.Stats(); len(st) != 1 || st[0].Conns != 3 {
		t.Errorf("server stats %+v, want 3 connections", st)
	}
}

// TestTCPServerCommand runs "pinglab tcp server", serves pinglab's client, the handout's and
// garbage, then stops it as Ctrl-C does and reads its log and table.
func TestTCPServerCommand(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"pinglab", "tcp", "server", "--listen", addr, "--delay", "1ms", "--seed", "5", "--max-line", "100"}, &out, &errOut)
	}()
	defer func() {
		cancel()
		<-done
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "TCP echo server on "+addr); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start; stdout %q, stderr %q", out.String(), errOut.String())
		}
	}
	exchange := func(send string, want string) {
		t.Helper()
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Errorf("sent %q, got %q, %v; want %q", send, got, err, want)
		}
	}
	exchange("ping 1 2026-11-22 16:02:43.123456", "PING 1 2026-11-22 16:02:43.123456") // the handout's client
	exchange("\x00\xffgarbage\n", "\x00\xffGARBAGE\n")
	exchange(strings.Repeat("x", 80)+"\n"+strings.Repeat("x", 200), strings.Repeat("X", 80)+"\nERROR line too long (over 100 bytes)\n")

	cl, err := tcpping.Dial(context.Background(), tcpping.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	replies := 0
	_, err = probe.Run(context.Background(), cl, probe.Options{Count: 3, Interval: 5 * time.Millisecond, Timeout: 10 * time.Second}, func(ev probe.Event) {
		if ev.Type == probe.EventReply {
			replies++
		}
	})
	cl.Close()
	if err != nil || replies != 3 {
		t.Errorf("pinglab's client: %d replies of 3, %v", replies, err)
	}

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("server exit %d, stderr %q", code, errOut.String())
	}
	done <- 0
	got := out.String()
	for _, want := range []string{
		"Connected to 127.0.0.1:",
		`received 33 bytes from 127.0.0.1:`, `: ping 1 2026-11-22 16:02:43.123456 -> echoed after 1ms`,
		`: "\x00\xffgarbage" -> echoed after 1ms`,
		`received 80 bytes from 127.0.0.1:`, `: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ... -> echoed`,
		" closed (line too long (over 100 bytes))\n",
		": ping 3 20",
		"--- tcp server statistics ---\nclient     connections   refused  received    echoed   dropped\n",
		"127.0.0.1            4         0         6         6         0\n",
		"total                4         0         6         6         0\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("server output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "Connection with 127.0.0.1:"); n != 4 {
		t.Errorf("%d connections logged closed, want 4:\n%s", n, got)
	}
}

func TestTCPServerCannotBind(t *testing.T) {
	s := startTCPServer(t, tcpping.ServerConfig{Addr: "127.0.0.1:0"})
	out, errOut, code := runCmd(t, context.Background(), "tcp", "server", "--listen", s.Addr().String())
	if code != 2 || !strings.Contains(errOut, "address already in use") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and one line saying the address is in use", code, errOut, out)
	}
}

// TestTCPBadInput checks that each mistake exits 2 with one line naming it, before sending.
func TestTCPBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"tcp", "ping", "no..such..host", "-c", "1"}, `cannot resolve "no..such..host"`},
		{[]string{"tcp", "ping", "127.0.0.1:99999", "-c", "1"}, `bad port "99999"`},
		{[]string{"tcp", "ping", "127.0.0.1", "-c", "-1"}, "-c: -1 is negative"},
		{[]string{"tcp", "ping", "127.0.0.1", "-s", "10"}, "size too small for the message (at least 33 bytes), not 10"},
		{[]string{"tcp", "ping", "127.0.0.1", "-s", "65508"}, "size above 65507"},
		{[]string{"tcp", "ping", "127.0.0.1", "--connect", "sometimes"}, `--connect: "sometimes" is not keep or per-ping`},
		{[]string{"tcp", "ping", "-6", "127.0.0.1"}, "127.0.0.1 is not an IPv6 address"},
		{[]string{"tcp", "ping"}, "missing HOST[:PORT]"},
		{[]string{"tcp", "server", "--drop", "150%"}, `--drop: "150%" is outside 0% to 100%`},
		{[]string{"tcp", "server", "--drop-mode", "loud"}, `--drop-mode: "loud" is not lost, silent or close`},
		{[]string{"tcp", "server", "--jitter", "-5ms"}, `--jitter: "-5ms" is negative`},
		{[]string{"tcp", "server", "--max-conns", "0"}, "--max-conns: 0 is below 1"},
		{[]string{"tcp", "server", "--max-line", "-3"}, "--max-line: -3 is below 1"},
		{[]string{"tcp", "server", "--idle-timeout", "soon"}, `--idle-timeout: "soon" is not a duration`},
		{[]string{"tcp", "server", "--listen", "127.0.0.1:99999"}, "listen on 127.0.0.1:99999"},
		{[]string{"tcp", "server", "extra"}, `unexpected argument "extra"`},
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

// TestTCPHelp checks that each command's help shows examples.
func TestTCPHelp(t *testing.T) {
	for _, args := range [][]string{{"tcp", "server", "--help"}, {"tcp", "ping", "--help"}} {
		out, _, code := runCmd(t, context.Background(), args...)
		if code != 0 || !regexp.MustCompile(`Examples:\n +pinglab tcp `).MatchString(out) {
			t.Errorf("%q: exit %d, no examples:\n%s", args, code, out)
		}
	}
}

// TestTCPEventLine checks the server's log lines.
func TestTCPEventLine(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 2, 43, 123456000, time.Local)
	client := netip.MustParseAddrPort("127.0.0.1:5000")
	tests := []struct {
		e    tcpping.Event
		want string
	}{
		{tcpping.Event{Type: tcpping.Connected, Time: at, Client: client}, "16:02:43.123456 Connected to 127.0.0.1:5000"},
		{tcpping.Event{Type: tcpping.Closed, Time: at, Client: client}, "16:02:43.123456 Connection with 127.0.0.1:5000 closed"},
		{tcpping.Event{Type: tcpping.Closed, Time: at, Client: client, Reason: "idle for 1m0s"}, "16:02:43.123456 Connection with 127.0.0.1:5000 closed (idle for 1m0s)"},
		{tcpping.Event{Type: tcpping.Refused, Time: at, Client: client, Reason: "server busy (2 connections)"}, "16:02:43.123456 Refused 127.0.0.1:5000: server busy (2 connections)"},
		{tcpping.Event{Type: tcpping.Message, Time: at, Client: client, Action: tcpping.Echoed, Data: []byte("ping 1 2026-11-22 16:02:43.123456 abcdef")},
			"16:02:43.123456 received 40 bytes from 127.0.0.1:5000: ping 1 2026-11-22 16:02:43.123456 ... -> echoed"},
		{tcpping.Event{Type: tcpping.Message, Time: at, Client: client, Action: tcpping.Dropped, Reason: "answered LOST", Data: []byte("ping 2 x")},
			"16:02:43.123456 received 8 bytes from 127.0.0.1:5000: ping 2 x -> dropped (answered LOST)"},
		{tcpping.Event{Type: tcpping.Message, Time: at, Client: client, Action: tcpping.Echoed, Delay: 1500 * time.Microsecond, Data: []byte{0, 'a'}},
			`16:02:43.123456 received 2 bytes from 127.0.0.1:5000: "\x00a" -> echoed after 1.5ms`},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tcpEventLine(tt.e)); diff != "" {
			t.Errorf("tcpEventLine(%+v) (-want +got):\n%s", tt.e, diff)
		}
	}
	var b bytes.Buffer
	writeTCPTable(&b, []tcpping.ClientStats{{Addr: client.Addr(), Conns: 3, Refused: 1, Received: 10, Echoed: 8, Dropped: 2}, {Conns: 1}})
	want := `
--- tcp server statistics ---
client           connections   refused  received    echoed   dropped
127.0.0.1                  3         1        10         8         2
(other clients)            1         0         0         0         0
total                      4         1        10         8         2
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("writeTCPTable (-want +got):\n%s", diff)
	}
}
