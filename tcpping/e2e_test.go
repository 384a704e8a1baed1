package tcpping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/testutil"
)

// families are the loopback addresses every end-to-end test runs over.
func families(t *testing.T) []string {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		testutil.SkipOrFail(t, "no IPv6 loopback: %v", err)
	}
	ln.Close()
	return []string{"127.0.0.1", "::1"}
}

// logRec collects a server's log, safely for the connections' goroutines.
type logRec struct {
	mu     sync.Mutex
	events []Event
}

func (l *logRec) log(e Event) {
	e.Data = bytes.Clone(e.Data)
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *logRec) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// droppedSeqs returns the sequence numbers of the pings the server dropped, from its log.
func (l *logRec) droppedSeqs() []int {
	var seqs []int
	for _, e := range l.all() {
		if e.Type == Message && e.Action == Dropped {
			if seq, ok := pingmsg.ParseSeq(e.Data); ok {
				seqs = append(seqs, seq)
			}
		}
	}
	slices.Sort(seqs)
	return seqs
}

// startServer runs a server on host's loopback, a free port, until the test ends.
func startServer(t testing.TB, host string, cfg ServerConfig) (*Server, *logRec) {
	t.Helper()
	rec := &logRec{}
	if cfg.Log == nil {
		cfg.Log = rec.log
	}
	cfg.Addr = net.JoinHostPort(host, "0")
	srv, err := Listen(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Serve did not return 30s after its context ended")
		}
	})
	return srv, rec
}

// outcome is what a run of the engine saw, seqs by event type.
type outcome struct {
	replies, lost, timeouts, errs []int
	reasons                       map[string]int // Reason of lost, words of errors
	connect                       []time.Duration
	rtt                           []time.Duration
	order                         []int // replies in the order they came
}

func runPings(t testing.TB, cfg Config, opts probe.Options) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := outcome{reasons: map[string]int{}}
	_, err = probe.Run(ctx, cl, opts, func(ev probe.Event) {
		switch ev.Type {
		case probe.EventReply:
			out.replies = append(out.replies, ev.Seq)
			out.order = append(out.order, ev.Seq)
			out.connect = append(out.connect, ev.Connect)
			out.rtt = append(out.rtt, ev.RTT)
		case probe.EventLost:
			out.lost = append(out.lost, ev.Seq)
			out.reasons[ev.Reason]++
		case probe.EventTimeout:
			out.timeouts = append(out.timeouts, ev.Seq)
		case probe.EventError:
			out.errs = append(out.errs, ev.Seq)
			out.reasons[ev.Err.Words()]++
		case probe.EventDuplicate, probe.EventLate:
			t.Errorf("unexpected %v for seq %d", ev.Type, ev.Seq)
		}
	})
	if err != nil {
		t.Fatalf("probe.Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("run did not end within its bound")
	}
	for _, s := range [][]int{out.replies, out.lost, out.timeouts, out.errs} {
		slices.Sort(s)
	}
	return out
}

func seqs(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// simulateDrops replays the server's seeded decisions for n messages in a row.
func simulateDrops(seed uint64, drop float64, n int) []int {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []int
	for seq := 1; seq <= n; seq++ {
		if rng.Float64() < drop {
			out = append(out, seq)
		}
	}
	return out
}

// TestDropModes runs keep and per-ping clients against servers dropping 0%, 100% and a seeded
// 20% in each drop mode, over IPv4 and IPv6, and checks that the client lost exactly what the
// server dropped, and reported it as the drop mode says.
func TestDropModes(t *testing.T) {
	const seed = 7
	for _, host := range families(t) {
		for _, connect := range []ConnectMode{ConnectKeep, ConnectPerPing} {
			for _, mode := range []DropMode{DropLost, DropSilent, DropClose} {
				for _, drop := range []float64{0, 1, 0.2} {
					name := fmt.Sprintf("%s/%s/%s/%g", host, connect, mode, drop)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						count := 10
						if drop == 0.2 {
							count = 40
						}
						srv, log := startServer(t, host, ServerConfig{Drop: drop, DropMode: mode, Seed: seed})
						// Stop-and-wait makes the client learn of each LOST or close before its
						// next ping, so every ping reaches the server as a message of its own.
						opts := probe.Options{Count: count, Interval: 0, Timeout: 10 * time.Second}
						if mode == DropSilent {
							// Silence is only noticed by the timeout; pings at a steady pace
							// keep the test short.
							opts = probe.Options{Count: count, Interval: 5 * time.Millisecond, Timeout: 3 * time.Second}
						}
						got := runPings(t, Config{Addr: srv.Addr().String(), Connect: connect, Timeout: 10 * time.Second}, opts)

						want := log.droppedSeqs()
						// Pings that each wait for the last reach the server in order, so the
						// seed alone says which are dropped. Paced per-ping connections may
						// overtake each other; there the server's log says.
						if connect == ConnectKeep || opts.Interval == 0 {
							if diff := cmp.Diff(simulateDrops(seed, drop, count), want, cmpopts.EquateEmpty()); diff != "" {
								t.Errorf("server dropped other pings than its seed says (-want +got):\n%s", diff)
							}
						}
						var lost []int
						var wantReason string
						switch mode {
						case DropLost:
							lost, wantReason = got.lost, "server answered LOST"
						case DropClose:
							lost, wantReason = got.lost, "connection closed by server"
						case DropSilent:
							lost = got.timeouts
						}
						if diff := cmp.Diff(want, lost, cmpopts.EquateEmpty()); diff != "" {
							t.Errorf("client lost other pings than the server dropped (-want +got):\n%s", diff)
						}
						if wantReason != "" && len(want) > 0 && got.reasons[wantReason] != len(want) {
							t.Errorf("reasons %v, want %d × %q", got.reasons, len(want), wantReason)
						}
						wantReplies := slices.DeleteFunc(seqs(1, count), func(s int) bool { return slices.Contains(want, s) })
						if diff := cmp.Diff(wantReplies, got.replies, cmpopts.EquateEmpty()); diff != "" {
							t.Errorf("replies (-want +got):\n%s", diff)
						}
						if len(got.errs) > 0 || (mode != DropSilent && len(got.timeouts) > 0) {
							t.Errorf("errors %v, timeouts %v; want none", got.errs, got.timeouts)
						}
						st := srv.Stats()
						if len(st) != 1 || st[0].Received != count || st[0].Dropped != len(want) || st[0].Echoed != count-len(want) {
							t.Errorf("server stats %+v; want %d received, %d dropped", st, count, len(want))
						}
						for _, d := range got.connect {
							if (connect == ConnectPerPing) != (d > 0) {
								t.Errorf("%s mode reported connect time %v", connect, d)
								break
							}
						}
						wantConns := count
						if connect == ConnectKeep {
							// One connection, and one more after each drop that closed it
							// (but the last ping's).
							wantConns = 1
							if mode != DropSilent {
								wantConns += len(slices.DeleteFunc(slices.Clone(want), func(s int) bool { return s == count }))
							}
						}
						if len(st) == 1 && st[0].Conns != wantConns {
							t.Errorf("server saw %d connections, want %d", st[0].Conns, wantConns)
						}
					})
				}
			}
		}
	}
}

// closedPort returns a port on host where nothing listens.
func closedPort(t *testing.T, host string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return ap
}

func TestConnectionRefused(t *testing.T) {
	for _, host := range families(t) {
		for _, connect := range []ConnectMode{ConnectKeep, ConnectPerPing} {
			t.Run(host+"/"+connect.String(), func(t *testing.T) {
				addr := closedPort(t, host)
				got := runPings(t, Config{Addr: addr.String(), Connect: connect}, probe.Options{Count: 3, Timeout: 5 * time.Second})
				if diff := cmp.Diff(seqs(1, 3), got.errs); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(map[string]int{"Connection refused": 3}, got.reasons); diff != "" {
					t.Errorf("reasons (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestConnectionReset pings a server that resets the connection when a ping arrives.
func TestConnectionReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 100)
				_, _ = c.Read(buf)
				_ = c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}()
		}
	}()
	for _, connect := range []ConnectMode{ConnectKeep, ConnectPerPing} {
		t.Run(connect.String(), func(t *testing.T) {
			got := runPings(t, Config{Addr: ln.Addr().String(), Connect: connect}, probe.Options{Count: 3, Timeout: 5 * time.Second})
			if diff := cmp.Diff(map[string]int{"Connection reset by peer": 3}, got.reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}

// TestThousandClients has 1000 clients, each on a connection of its own, ping one server every
// 100 ms, ten times each: every ping is answered.
func TestThousandClients(t *testing.T) {
	const clients, count = 1000, 10
	raiseNoFile(t, 2*clients+200) // each connection's two ends, and some to spare
	srv, _ := startServer(t, "127.0.0.1", ServerConfig{Log: func(Event) {}})
	var wg sync.WaitGroup
	results := make([]outcome, clients)
	for i := range clients {
		wg.Go(func() {
			results[i] = runPings(t, Config{Addr: srv.Addr().String(), Timeout: 30 * time.Second},
				probe.Options{Count: count, Interval: 100 * time.Millisecond, Timeout: 30 * time.Second})
		})
	}
	wg.Wait()
	bad := 0
	for i, r := range results {
		if len(r.replies) != count || len(r.lost)+len(r.timeouts)+len(r.errs) > 0 {
			if bad++; bad <= 5 {
				t.Errorf("client %d: %d replies, lost %v, timeouts %v, errors %v %v", i, len(r.replies), r.lost, r.timeouts, r.errs, r.reasons)
			}
		}
	}
	st := srv.Stats()
	if len(st) != 1 || st[0].Conns != clients || st[0].Echoed != clients*count || st[0].Refused != 0 {
		t.Errorf("server stats %+v; want %d connections, %d echoed", st, clients, clients*count)
	}
}

// readAll reads c until the server closes it (or resets it), for at most 30 s.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read: %v", err)
	}
	return buf.Bytes()
}

// TestBadClients checks what the server does to a silent client, one that sends a line too
// long, garbage, the handout's client and one that hangs up at once, all at the same time,
// while a well-behaved client pings undisturbed.
func TestBadClients(t *testing.T) {
	for _, host := range families(t) {
		t.Run(host, func(t *testing.T) {
			srv, log := startServer(t, host, ServerConfig{IdleTimeout: 300 * time.Millisecond, MaxLineLength: 1000})
			addr := srv.Addr().String()
			dial := func() net.Conn {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				got := string(readAll(t, dial()))
				if want := "ERROR idle for 300ms\n"; got != want {
					t.Errorf("silent client got %q, want %q", got, want)
				}
			})
			wg.Go(func() {
				c := dial()
				go func() {
					// Megabytes without a newline; the server closes long before the end.
					_, _ = c.Write(bytes.Repeat([]byte("a"), 4<<20))
				}()
				got := readAll(t, c)
				const tail = "ERROR line too long (over 1000 bytes)\n"
				echo, ok := bytes.CutSuffix(got, []byte(tail))
				if !ok || len(echo) > 1000 || len(bytes.Trim(echo, "A")) > 0 {
					t.Errorf("long-line client got %d bytes ending %q; want up to 1000 'A' then %q", len(got), got[max(len(got)-60, 0):], tail)
				}
			})
			wg.Go(func() {
				c := dial()
				garbage := make([]byte, 0, 1024)
				for i := range 1024 {
					garbage = append(garbage, byte(i*7+i/256))
				}
				if _, err := c.Write(garbage); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, len(garbage))
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Errorf("garbage client: %v", err)
				}
				want := bytes.Clone(garbage)
				pingmsg.Upper(want)
				if !bytes.Equal(got, want) {
					t.Errorf("garbage came back as %q, want %q", got, want)
				}
			})
			wg.Go(func() {
				// The handout's client: one message, no newline, on a connection of its own.
				c := dial()
				msg := "ping 1 2026-11-22 16:02:43.123456"
				if _, err := io.WriteString(c, msg); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, len(msg))
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != strings.ToUpper(msg) {
					t.Errorf("handout client got %q, %v; want %q", got, err, strings.ToUpper(msg))
				}
			})
			wg.Go(func() { dial().Close() })
			got := runPings(t, Config{Addr: addr}, probe.Options{Count: 20, Interval: 20 * time.Millisecond, Timeout: 10 * time.Second})
			if diff := cmp.Diff(seqs(1, 20), got.replies); diff != "" {
				t.Errorf("well-behaved client's replies (-want +got):\n%s\n%+v", diff, got)
			}
			wg.Wait()
			// The server logs a close once the connection is gone, after the client hung up.
			want := []string{"idle for 300ms", "line too long (over 1000 bytes)"}
			var reasons []string
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				reasons = reasons[:0]
				for _, e := range log.all() {
					if e.Type == Closed && e.Reason != "" {
						reasons = append(reasons, e.Reason)
					}
				}
				if slices.Contains(reasons, want[0]) && slices.Contains(reasons, want[1]) {
					break
				}
			}
			if !slices.Contains(reasons, want[0]) || !slices.Contains(reasons, want[1]) {
				t.Errorf("server closed connections for %q; want among them %q", reasons, want)
			}
		})
	}
}

// TestHandoutServerWords checks that the handout's client, which sends no newline, gets the
// server's "LOST" with no newline either, and pinglab's gets "LOST\n".
func TestHandoutServerWords(t *testing.T) {
	srv, _ := startServer(t, "127.0.0.1", ServerConfig{Drop: 1})
	for _, msg := range []string{"ping 1 2026-11-22 16:02:43.123456", "ping 1 2026-11-22 16:02:43.123456\n"} {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		want := "LOST"
		if strings.HasSuffix(msg, "\n") {
			want += "\n"
		}
		if got := string(readAll(t, c)); got != want {
			t.Errorf("after %q got %q, want %q", msg, got, want)
		}
		c.Close()
	}
}

// TestMaxConns fills the server and checks that one more connection is told so at once, and
// that pinglab's client reports it as the probe's error.
func TestMaxConns(t *testing.T) {
	srv, log := startServer(t, "127.0.0.1", ServerConfig{MaxConns: 2})
	for range 2 {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// An echo proves the connection is being served.
		if _, err := io.WriteString(c, "x\n"); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "X\n" {
			t.Fatalf("echo %q, %v", got, err)
		}
	}
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(readAll(t, c)), "ERROR server busy (2 connections)\n"; got != want {
		t.Errorf("third connection got %q, want %q", got, want)
	}
	c.Close()
	got := runPings(t, Config{Addr: srv.Addr().String(), Connect: ConnectPerPing}, probe.Options{Count: 1, Timeout: 10 * time.Second})
	if diff := cmp.Diff(map[string]int{"Server: server busy (2 connections)": 1}, got.reasons); diff != "" {
		t.Errorf("client (-want +got):\n%s", diff)
	}
	if st := srv.Stats(); len(st) != 1 || st[0].Refused != 2 || st[0].Conns != 2 {
		t.Errorf("stats %+v, want 2 connections and 2 refused", st)
	}
	refused := 0
	for _, e := range log.all() {
		if e.Type == Refused {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("logged %d refusals, want 2", refused)
	}
}

// TestShutdown checks that a server whose context ends closes every connection and returns.
func TestShutdown(t *testing.T) {
	rec := &logRec{}
	srv, err := Listen(context.Background(), ServerConfig{Addr: "127.0.0.1:0", Log: rec.log, Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Its echo is held back an hour: the shutdown must not wait for it.
		if _, err := io.WriteString(c, "ping 1 x\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for deadline := time.Now().Add(30 * time.Second); srv.Conns() < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("server serves %d connections, want 3", srv.Conns())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	for i, c := range conns {
		if got := readAll(t, c); len(got) != 0 {
			t.Errorf("connection %d got %q after shutdown", i, got)
		}
	}
	closed := 0
	for _, e := range rec.all() {
		if e.Type == Closed && e.Reason == "server shut down" {
			closed++
		}
	}
	if closed != 3 || srv.Conns() != 0 {
		t.Errorf("%d connections logged closed by the shutdown, %d left; want 3, 0", closed, srv.Conns())
	}
	if _, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		t.Error("server still accepts after shutdown")
	}
}

// TestDelay checks that delayed replies come no sooner than the delay allows, and in order.
func TestDelay(t *testing.T) {
	for _, host := range families(t) {
		t.Run(host, func(t *testing.T) {
			const delay, jitter = 20 * time.Millisecond, 15 * time.Millisecond
			srv, _ := startServer(t, host, ServerConfig{Delay: delay, Jitter: jitter, Seed: 3})
			got := runPings(t, Config{Addr: srv.Addr().String()}, probe.Options{Count: 20, Interval: 2 * time.Millisecond, Timeout: 10 * time.Second})
			if diff := cmp.Diff(seqs(1, 20), got.order); diff != "" {
				t.Errorf("replies in the order (-want +got):\n%s", diff)
			}
			for i, rtt := range got.rtt {
				if rtt < delay-jitter {
					t.Errorf("reply %d after %v, sooner than the delay allows", got.order[i], rtt)
				}
			}
		})
	}
}

// TestKeepReconnects checks that a kept connection the server closed while idle is replaced.
func TestKeepReconnects(t *testing.T) {
	srv, _ := startServer(t, "127.0.0.1", ServerConfig{IdleTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := Dial(ctx, Config{Addr: srv.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for seq := 1; seq <= 2; seq++ {
		if _, err := cl.Send(ctx, seq); err != nil {
			t.Fatalf("Send %d: %v", seq, err)
		}
		p, err := cl.Receive(ctx)
		if err != nil || p.Kind != probe.KindReply || p.Seq != seq {
			t.Fatalf("Receive = %+v, %v; want the reply to %d", p, err, seq)
		}
		// Wait until the server closed the idle connection and the client noticed.
		for {
			cl.mu.Lock()
			gone := cl.cur == nil
			cl.mu.Unlock()
			if gone {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("the idle connection was never closed")
			}
			time.Sleep(time.Millisecond)
		}
	}
	if st := srv.Stats(); len(st) != 1 || st[0].Conns != 2 {
		t.Errorf("stats %+v, want 2 connections", st)
	}
}

// TestReceiveReturnsOnCancel checks that Receive returns soon after its context ends.
func TestReceiveReturnsOnCancel(t *testing.T) {
	cl, err := Dial(context.Background(), Config{Addr: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := cl.Receive(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Receive = %v, want %v", err, context.Canceled)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Receive did not return after its context ended")
	}
}

// BenchmarkServerEcho measures echoes per second: 16 kept connections, each with one 64-byte
// message in flight at a time.
func BenchmarkServerEcho(b *testing.B) {
	srv, _ := startServer(b, "127.0.0.1", ServerConfig{Log: func(Event) {}})
	const conns = 16
	msg := AppendPing(nil, 1, time.Now(), 63)
	var mu sync.Mutex
	var cs []net.Conn
	for range conns {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		c := cs[0]
		cs = cs[1:]
		mu.Unlock()
		buf := make([]byte, len(msg))
		for pb.Next() {
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "echoes/s")
}

// TestDelayedLost checks that a LOST held back longer than the server's grace for last words
// still reaches the client.
func TestDelayedLost(t *testing.T) {
	srv, _ := startServer(t, "127.0.0.1", ServerConfig{Drop: 1, Delay: lingerTimeout + 100*time.Millisecond})
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "ping 1 x\n"); err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, c)); got != "LOST\n" {
		t.Errorf("got %q, want %q", got, "LOST\n")
	}
}
