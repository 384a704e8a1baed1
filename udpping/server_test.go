package udpping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

// families are the loopback addresses every network test runs on.
var families = []struct{ name, network, loopback string }{
	{"IPv4", "udp4", "127.0.0.1"},
	{"IPv6", "udp6", "::1"},
}

// startServer listens on a free loopback port and serves until the test ends.
func startServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := Listen(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
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

// waitStats waits until the server's counters satisfy ok; a delayed echo is counted only when it
// leaves, so the count may trail the datagrams the server received by a moment.
func waitStats(t testing.TB, s *Server, ok func([]ClientStats) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(s.Stats()); time.Sleep(50 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("server counters are %+v", s.Stats())
		}
	}
}

// exchange sends each datagram from a fresh socket and reads one answer to each, failing the
// test if an answer does not come within a generous time.
func exchange(t *testing.T, network string, to netip.AddrPort, msgs ...[]byte) [][]byte {
	t.Helper()
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got [][]byte
	buf := make([]byte, 1<<16)
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			t.Fatalf("write %d bytes: %v", len(m), err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no echo of a %d-byte datagram: %v", len(m), err)
		}
		got = append(got, bytes.Clone(buf[:n]))
	}
	return got
}

func TestServerEchoesUpperCase(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			var mu sync.Mutex
			var logged []string
			s := startServer(t, ServerConfig{
				Addr: net.JoinHostPort(f.loopback, "0"),
				Log: func(m Message) {
					mu.Lock()
					defer mu.Unlock()
					logged = append(logged, fmt.Sprintf("%s %q %s", m.From.Addr(), m.Data, m.Action))
				},
			})
			big := bytes.Repeat([]byte("ab\x00\xff"), MaxSize/4+1)[:MaxSize]
			bigUpper := bytes.Repeat([]byte("AB\x00\xff"), MaxSize/4+1)[:MaxSize]
			if f.network == "udp6" {
				// The largest IPv6 payload on loopback, beyond pinglab's own limit.
				big, bigUpper = bytes.Repeat([]byte("z"), 65527), bytes.Repeat([]byte("Z"), 65527)
			}
			in := [][]byte{
				[]byte("ping 1 2026-11-22 16:02:43.123456"),
				{},
				[]byte("\x00\x01garbage\xfe\xff{ping}"),
				big,
			}
			got := exchange(t, f.network, s.Addr(), in...)
			want := [][]byte{
				[]byte("PING 1 2026-11-22 16:02:43.123456"),
				{},
				[]byte("\x00\x01GARBAGE\xfe\xff{PING}"),
				bigUpper,
			}
			for i := range want {
				// bytes.Equal first: cmp.Diff is slow on 64 KiB, and only needed to show a failure.
				if i >= len(got) || !bytes.Equal(want[i], got[i]) {
					t.Errorf("echoes (-want +got):\n%s", cmp.Diff(want, got))
					break
				}
			}
			waitStats(t, s, func(st []ClientStats) bool {
				return len(st) == 1 && st[0].Received == 4 && st[0].Echoed == 4 && st[0].Dropped == 0 &&
					st[0].Addr.Addr().String() == f.loopback
			})
			mu.Lock()
			defer mu.Unlock()
			if len(logged) != 4 || logged[0] != fmt.Sprintf("%s %q echoed", f.loopback, in[0]) {
				t.Errorf("log = %q", logged)
			}
		})
	}
}

// TestServerDualStack checks that the default listen address (":port") serves both families,
// and that an IPv4 client is counted under its IPv4 address, not a mapped one.
func TestServerDualStack(t *testing.T) {
	s := startServer(t, ServerConfig{Addr: ":0"})
	port := s.Addr().Port()
	exchange(t, "udp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), []byte("ping 1 x"))
	exchange(t, "udp6", netip.AddrPortFrom(netip.IPv6Loopback(), port), []byte("ping 1 x"))
	var got []string
	for _, st := range s.Stats() {
		got = append(got, st.Addr.Addr().String())
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "::1"}, got); diff != "" {
		t.Errorf("clients (-want +got):\n%s", diff)
	}
}

// TestServerSeededDrop sends 500 datagrams to a server that drops 20% with a fixed seed: the
// share dropped is near 20%, and a second server with the same seed drops exactly the same
// datagrams.
func TestServerSeededDrop(t *testing.T) {
	const n = 500
	run := func() []bool {
		var mu sync.Mutex
		var dropped []bool
		s := startServer(t, ServerConfig{Drop: 0.2, Seed: 7, Log: func(m Message) {
			mu.Lock()
			dropped = append(dropped, m.Action == Dropped)
			mu.Unlock()
		}})
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(s.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 1; i <= n; i++ {
			if _, err := c.Write(pingmsg.Append(nil, i, time.Now(), 0)); err != nil {
				t.Fatal(err)
			}
			// Wait for the server to take each one, so that none is lost on the way and the
			// order is the order sent.
			waitStats(t, s, func(st []ClientStats) bool { return len(st) == 1 && st[0].Received == i })
		}
		st := s.Stats()[0]
		if st.Received != n || st.Dropped+st.Echoed != n {
			t.Errorf("Stats() = %+v, want %d received, all echoed or dropped", st, n)
		}
		share := float64(st.Dropped) / n
		if share < 0.15 || share > 0.25 {
			t.Errorf("dropped %d of %d (%.1f%%), want 15-25%%", st.Dropped, n, 100*share)
		}
		mu.Lock()
		defer mu.Unlock()
		return dropped
	}
	first, second := run(), run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("same seed, different drops (-first +second):\n%s", diff)
	}
}

func TestServerDropAll(t *testing.T) {
	s := startServer(t, ServerConfig{Drop: 1})
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		c.Write([]byte("ping 1 x"))
	}
	waitStats(t, s, func(st []ClientStats) bool { return len(st) == 1 && st[0].Received == 5 })
	if st := s.Stats()[0]; st.Dropped != 5 || st.Echoed != 0 {
		t.Errorf("Stats() = %+v, want all 5 dropped", st)
	}
	// Had anything been echoed, it would be waiting by now.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := c.Read(make([]byte, 100)); err == nil {
		t.Errorf("got a %d-byte echo from a server that drops everything", n)
	}
}

// TestServerDelay checks that delayed replies, reordered by jitter, all come back and are
// counted, and that a client is served while other clients' replies are held back.
func TestServerDelay(t *testing.T) {
	s := startServer(t, ServerConfig{Delay: 30 * time.Millisecond, Jitter: 25 * time.Millisecond, Seed: 1})
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 50
	for i := 1; i <= n; i++ {
		if _, err := c.Write(pingmsg.Append(nil, i, time.Now(), 100)); err != nil {
			t.Fatal(err)
		}
	}
	other := exchange(t, "udp4", s.Addr(), []byte("other client"))
	if string(other[0]) != "OTHER CLIENT" {
		t.Errorf("other client got %q", other[0])
	}
	seen := map[int]bool{}
	buf := make([]byte, 1<<16)
	for len(seen) < n {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("got %d of %d delayed echoes: %v", len(seen), n, err)
		}
		seq, ok := pingmsg.ParseSeq(buf[:k])
		if !ok || k != 100 || seen[seq] {
			t.Fatalf("bad or repeated echo %q", buf[:k])
		}
		seen[seq] = true
	}
	waitStats(t, s, func(st []ClientStats) bool { return st[0].Echoed == n && st[1].Echoed == 1 })
}

func TestServerDelayQueueBound(t *testing.T) {
	s := startServer(t, ServerConfig{Delay: time.Hour})
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := make([]byte, MaxSize)
	// A client alone may hold half the queue (the other half is room for newcomers), each
	// reply costing its 64 KiB buffer and its entry.
	fit := maxPendingBytes / 2 / replyCost(MaxSize)
	n := fit + 20
	sent := 0
	for range n {
		if _, err := c.Write(big); err != nil {
			t.Fatal(err)
		}
		sent++
		// Pace the writes so the socket buffer does not overflow on the way.
		waitStats(t, s, func(st []ClientStats) bool { return len(st) == 1 && st[0].Received == sent })
	}
	st := s.Stats()[0]
	if want := n - fit; st.Dropped != want || st.Shed != want || st.Echoed != 0 {
		t.Errorf("Stats() = %+v, want %d dropped and shed for a full queue, none echoed yet", st, want)
	}
}

func TestListenErrors(t *testing.T) {
	s := startServer(t, ServerConfig{Addr: "127.0.0.1:0"})
	tests := []struct {
		name    string
		cfg     ServerConfig
		wantErr string
	}{
		{"in use", ServerConfig{Addr: s.Addr().String()}, "address already in use"},
		{"drop above 1", ServerConfig{Addr: "127.0.0.1:0", Drop: 1.5}, "drop must be between 0 and 1, not 1.5"},
		{"negative drop", ServerConfig{Addr: "127.0.0.1:0", Drop: -0.1}, "drop must be between 0 and 1"},
		{"negative delay", ServerConfig{Addr: "127.0.0.1:0", Delay: -time.Second}, "must not be negative"},
		{"bad network", ServerConfig{Addr: "127.0.0.1:0", Network: "tcp"}, `bad network "tcp"`},
		{"bad address", ServerConfig{Addr: "127.0.0.1:99999"}, "listen on 127.0.0.1:99999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Listen(context.Background(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Listen(%+v) succeeded", tt.cfg)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Listen error = %q, want it to contain %q", err, tt.wantErr)
			}
			if tt.name == "in use" && !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("Listen error %q is not EADDRINUSE", err)
			}
		})
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	s, err := Listen(context.Background(), ServerConfig{Addr: "127.0.0.1:0", Delay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	exchange(t, "udp4", s.Addr(), []byte("x"))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("second Serve succeeded")
	}
}
