package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// udpEcho is a UDP server on loopback that echoes in upper case and remembers who sent.
type udpEcho struct {
	conn *net.UDPConn
	mu   sync.Mutex
	from map[netip.AddrPort]int
}

func startUDPEcho(t testing.TB, network, addr string) *udpEcho {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	e := &udpEcho{conn: c, from: make(map[netip.AddrPort]int)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, a, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			e.mu.Lock()
			e.from[a]++
			e.mu.Unlock()
			_, _ = c.WriteToUDPAddrPort(bytes.ToUpper(buf[:n]), a)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return e
}

func (e *udpEcho) addr() string { return e.conn.LocalAddr().String() }

func (e *udpEcho) senders() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.from)
}

// startProxy runs a proxy until the test ends; stop ends it early and returns its flows.
func startProxy(t testing.TB, cfg Config) (p *Proxy, stop func() []FlowStats) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	p, err := Listen(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	var once sync.Once
	stop = func() []FlowStats {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
		return p.Flows()
	}
	t.Cleanup(func() { stop() })
	return p, stop
}

func dialUDP(t testing.TB, addr net.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and waits up to wait for a reply; "" when none came.
func roundTrip(t testing.TB, c *net.UDPConn, msg string, wait time.Duration) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// TestUDPClientsApart: three clients through one proxy, over IPv4 and IPv6, each get their
// own replies, and the server sees three senders (one upstream socket per client).
func TestUDPClientsApart(t *testing.T) {
	for _, fam := range []struct{ network, loopback string }{{"udp4", "127.0.0.1"}, {"udp6", "[::1]"}} {
		t.Run(fam.network, func(t *testing.T) {
			e := startUDPEcho(t, fam.network, fam.loopback+":0")
			p, stop := startProxy(t, Config{Listen: fam.loopback + ":0", To: e.addr()})
			var clients []*net.UDPConn
			for range 3 {
				clients = append(clients, dialUDP(t, p.Addr()))
			}
			for round := range 5 {
				for i, c := range clients {
					msg := fmt.Sprintf("ping client%d round%d", i, round)
					if got, want := roundTrip(t, c, msg, 2*time.Second), strings.ToUpper(msg); got != want {
						t.Fatalf("client %d got %q, want %q", i, got, want)
					}
				}
			}
			if n := e.senders(); n != 3 {
				t.Errorf("server saw %d senders, want 3", n)
			}
			flows := stop()
			if len(flows) != 3 {
				t.Fatalf("%d flows, want 3: %+v", len(flows), flows)
			}
			for _, f := range flows {
				if f.Up.Forwarded != 5 || f.Down.Forwarded != 5 || f.Up.Bytes != f.Down.Bytes {
					t.Errorf("flow %v: up %+v down %+v; want 5 each way, as many bytes", f.Client, f.Up, f.Down)
				}
			}
		})
	}
}

// TestUDPIdleAndMaxFlows: a flow ends after Idle; past MaxFlows a new client is refused, and
// served again once a flow has ended.
func TestUDPIdleAndMaxFlows(t *testing.T) {
	e := startUDPEcho(t, "udp4", "127.0.0.1:0")
	p, _ := startProxy(t, Config{To: e.addr(), MaxFlows: 2, Idle: 150 * time.Millisecond})
	a, b, c := dialUDP(t, p.Addr()), dialUDP(t, p.Addr()), dialUDP(t, p.Addr())
	for _, x := range []*net.UDPConn{a, b} {
		if roundTrip(t, x, "hello", 2*time.Second) != "HELLO" {
			t.Fatal("no echo through the proxy")
		}
	}
	if got := roundTrip(t, c, "third", 200*time.Millisecond); got != "" || p.Refused() != 1 {
		t.Fatalf("third client got %q, %d refused; want nothing and 1", got, p.Refused())
	}
	time.Sleep(600 * time.Millisecond) // a and b go idle
	if got := roundTrip(t, c, "third", 2*time.Second); got != "THIRD" {
		t.Fatalf("after the idle flows ended, the third client got %q", got)
	}
	active := 0
	for _, f := range p.Flows() {
		if f.Active {
			active++
		}
	}
	if n := len(p.Flows()); n != 3 || active != 1 {
		t.Errorf("%d flows, %d active; want 3 and 1", n, active)
	}
}

// TestUDPBadInput: oversize datagrams are dropped and counted, never cut; empty and binary
// ones pass unchanged.
func TestUDPBadInput(t *testing.T) {
	e := startUDPEcho(t, "udp4", "127.0.0.1:0")
	p, stop := startProxy(t, Config{To: e.addr(), MaxSize: 100})
	c := dialUDP(t, p.Addr())
	if got := roundTrip(t, c, strings.Repeat("x", 101), 300*time.Millisecond); got != "" {
		t.Errorf("a 101-byte datagram came back (%d bytes), want it dropped", len(got))
	}
	bin := "\x00\xff\x1b[2J\n\r"
	if got := roundTrip(t, c, bin, 2*time.Second); got != strings.ToUpper(bin) {
		t.Errorf("binary datagram came back as %q", got)
	}
	if got := roundTrip(t, c, strings.Repeat("y", 100), 2*time.Second); len(got) != 100 {
		t.Errorf("a 100-byte datagram came back with %d bytes", len(got))
	}
	flows := stop()
	if len(flows) != 1 || flows[0].Up.Oversize != 1 || flows[0].Up.Forwarded != 2 {
		t.Errorf("flows %+v: want one with 1 oversize, 2 forwarded", flows)
	}
}

// TestUDPQueueBound: a flood into a 1-second delay holds no more than Limit, drops the rest
// at the queue, and nothing is left held after the proxy stops.
func TestUDPQueueBound(t *testing.T) {
	e := startUDPEcho(t, "udp4", "127.0.0.1:0")
	const limit = 64 << 10
	p, stop := startProxy(t, Config{To: e.addr(), Limit: limit, Up: Impairment{Delay: time.Second}})
	c := dialUDP(t, p.Addr())
	msg := make([]byte, 1000)
	maxHeld := 0
	for range 2000 {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		up, _ := p.Held()
		maxHeld = max(maxHeld, up)
	}
	time.Sleep(100 * time.Millisecond)
	up, _ := p.Held()
	maxHeld = max(maxHeld, up)
	if maxHeld > limit || maxHeld < limit/2 {
		t.Errorf("held at most %d bytes, want about the limit %d and never above", maxHeld, limit)
	}
	flows := stop()
	if len(flows) != 1 || flows[0].Up.QueueDrops == 0 {
		t.Fatalf("flows %+v: want queue drops", flows)
	}
	perPacket := limit / (1000 + heldOverhead)
	if got := flows[0].Up.Delayed; got > uint64(perPacket) {
		t.Errorf("%d datagrams held, more than the %d that fit in %d bytes", got, perPacket, limit)
	}
	if up, down := p.Held(); up != 0 || down != 0 {
		t.Errorf("after Serve returned: %d and %d bytes held, want 0", up, down)
	}
}

// TestUDPTenThousandFlows opens 10,000 flows (a socket per client, closed after its echo, so
// that the test needs few descriptors) and 100 more past MaxFlows: the proxy keeps exactly
// 10,000, refuses the rest, and its memory per flow stays within the bound the package
// documents (a MaxSize buffer, a goroutine, the flow's bookkeeping).
func TestUDPTenThousandFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("needs every address of 127.0.0.0/8 on the loopback, as Linux has")
	}
	e := startUDPEcho(t, "udp4", "127.0.0.1:0")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	const flows = 10000
	p, stop := startProxy(t, Config{To: e.addr(), MaxFlows: flows, MaxSize: 2048, Idle: time.Minute})
	to := p.Addr().(*net.UDPAddr)
	buf := make([]byte, 64)
	for i := range flows + 100 {
		// Each client from an address of its own in 127.0.0.0/8: a port the kernel hands out
		// again after a close would make the same flow twice.
		src := &net.UDPAddr{IP: net.IPv4(127, 1, byte(i>>8), byte(i))}
		c, err := net.DialUDP("udp", src, to)
		if err != nil {
			t.Fatal(err)
		}
		// Wait for the echo (a few tries: a datagram lost at a busy socket buffer would be a
		// flow never made), except past MaxFlows, where none comes.
		for try := 0; try < 5; try++ {
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if i >= flows {
				break
			}
			_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := c.Read(buf); err == nil {
				break
			}
		}
		c.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.flows.count() < flows && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	live := p.flows.count()
	if live != flows || p.Refused() < 100 {
		t.Errorf("%d flows live, %d refused; want %d and at least 100", live, p.Refused(), flows)
	}
	grew := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	perFlow := grew / flows
	t.Logf("memory for %d flows: %d MB, %d bytes a flow", flows, grew>>20, perFlow)
	if perFlow > 16<<10 {
		t.Errorf("%d bytes a flow, want under 16 KiB (a 2 KiB buffer, a goroutine, the flow)", perFlow)
	}
	// Once stopped, every flow has ended: the table keeps the first 1024 one by one and
	// merges the rest into its last row.
	got := stop()
	n := 0
	for _, f := range got {
		n += f.Flows
	}
	if n != flows || len(got) != maxRetired+1 {
		t.Errorf("%d flows in %d rows, want %d in %d", n, len(got), flows, maxRetired+1)
	}
}

// tcpSink accepts connections and counts what arrives, as a throughput meter.
func startTCPServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handle(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func tcpEcho(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(bytes.ToUpper(buf[:n])); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestTCPRate: 1 Mbit/s up a stream, measured at the receiver over about 3 s, within 10%.
func TestTCPRate(t *testing.T) {
	type result struct {
		bytes int
		d     time.Duration
	}
	res := make(chan result, 1)
	srv := startTCPServer(t, func(c net.Conn) {
		buf := make([]byte, 65536)
		var first time.Time
		n := 0
		for {
			k, err := c.Read(buf)
			if k > 0 && first.IsZero() {
				first = time.Now()
			}
			n += k
			if err != nil {
				res <- result{n, time.Since(first)}
				return
			}
		}
	})
	p, stop := startProxy(t, Config{Proto: "tcp", To: srv, Up: Impairment{Rate: 125000}})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// 3 s worth at the rate: the kernel's socket buffers take it all at once, so that the
	// sender never waits and the receiver's clock measures the proxy alone.
	chunk := make([]byte, 8192)
	for sent := 0; sent < 3*125000; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	r := <-res
	c.Close()
	// What was queued when the sender stopped still drains at the rate: the meter counts it
	// and its time alike.
	bps := float64(r.bytes) * 8 / r.d.Seconds()
	t.Logf("%d bytes in %v: %.0f bit/s", r.bytes, r.d, bps)
	if bps < 0.9e6 || bps > 1.1e6 {
		t.Errorf("throughput %.0f bit/s, want 1 Mbit/s ± 10%%", bps)
	}
	flows := stop()
	if len(flows) != 1 || flows[0].Up.Bytes != uint64(r.bytes) {
		t.Errorf("flows %+v: want one that forwarded %d bytes", flows, r.bytes)
	}
}

// TestTCPEchoAndDelay: an echo through a 50 ms delay each way takes 100 ms a round trip; a
// half-close passes (the client's FIN reaches the server, whose FIN comes back).
func TestTCPEchoAndDelay(t *testing.T) {
	srv := startTCPServer(t, tcpEcho)
	for _, delay := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			imp := Impairment{Delay: delay}
			p, stop := startProxy(t, Config{Proto: "tcp", To: srv, Up: imp, Down: imp})
			c, err := net.Dial("tcp", p.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 100)
			for i := range 3 {
				start := time.Now()
				msg := fmt.Sprintf("ping %d\n", i)
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
					t.Fatal(err)
				}
				rtt := time.Since(start)
				if string(buf[:len(msg)]) != strings.ToUpper(msg) || rtt < 2*delay || rtt > 2*delay+80*time.Millisecond {
					t.Errorf("reply %q after %v, want %q after %v", buf[:len(msg)], rtt, strings.ToUpper(msg), 2*delay)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, err := c.Read(buf); n != 0 || err != io.EOF {
				t.Errorf("after a half-close: %d bytes, %v; want the server's EOF", n, err)
			}
			c.Close()
			time.Sleep(50 * time.Millisecond)
			flows := stop()
			if len(flows) != 1 || flows[0].Up.Forwarded != 3 || flows[0].Down.Bytes != flows[0].Up.Bytes {
				t.Errorf("flows %+v", flows)
			}
		})
	}
}

// TestTCPReset: --reset 100% up: the client's first message is cut at a random point and both
// sides get an RST.
func TestTCPReset(t *testing.T) {
	srv := startTCPServer(t, tcpEcho)
	p, stop := startProxy(t, Config{Proto: "tcp", To: srv, Up: Impairment{Reset: 1}})
	for range 5 {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("ping 1 2026-01-01 00:00:00.000000\n")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = io.ReadAll(c)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("read: %v, want connection reset", err)
		}
		c.Close()
	}
	time.Sleep(50 * time.Millisecond)
	var resets uint64
	for _, f := range stop() {
		resets += f.Up.Resets
	}
	if resets != 5 {
		t.Errorf("%d resets counted, want 5", resets)
	}
}

// TestTCPStall: --stall 100% for 300 ms: each message waits 300 ms more, none is lost.
func TestTCPStall(t *testing.T) {
	srv := startTCPServer(t, tcpEcho)
	p, stop := startProxy(t, Config{Proto: "tcp", To: srv, Down: Impairment{Stall: 1, StallFor: 300 * time.Millisecond}})
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HELLO\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > time.Second {
		t.Errorf("reply after %v, want about 300ms", d)
	}
	c.Close()
	time.Sleep(50 * time.Millisecond)
	if f := stop(); len(f) != 1 || f[0].Down.Stalled != 1 {
		t.Errorf("flows %+v: want one stall down", f)
	}
}

// TestTCPMaxFlows: past MaxFlows a connection is reset at once.
func TestTCPMaxFlows(t *testing.T) {
	srv := startTCPServer(t, tcpEcho)
	p, _ := startProxy(t, Config{Proto: "tcp", To: srv, MaxFlows: 1})
	a, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(a, buf); err != nil {
		t.Fatal(err)
	}
	// The reset may come before the dial returns, or at the first read.
	if b, err := net.Dial("tcp", p.Addr().String()); err == nil {
		defer b.Close()
		_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := b.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("a second connection past MaxFlows 1: read error %v, want a reset", err)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("dial: %v, want a reset", err)
	}
	if p.Refused() != 1 {
		t.Errorf("%d refused, want 1", p.Refused())
	}
}

func TestListenErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"no to", Config{Listen: "127.0.0.1:0"}, "missing address"},
		{"proto", Config{Proto: "sctp", Listen: "127.0.0.1:0", To: "127.0.0.1:1"}, "udp or tcp"},
		{"bad up", Config{Listen: "127.0.0.1:0", To: "127.0.0.1:1", Up: Impairment{Loss: 2}}, "up: loss 2"},
		{"bad down", Config{Proto: "tcp", Listen: "127.0.0.1:0", To: "127.0.0.1:1", Down: Impairment{Loss: 0.1}}, "down: a TCP stream"},
		{"max size", Config{Listen: "127.0.0.1:0", To: "127.0.0.1:1", MaxSize: 70000}, "must be positive"},
		{"to without port", Config{Listen: "127.0.0.1:0", To: "127.0.0.1"}, "missing port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Listen(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}

// TestClients: the per-address totals sum an address's flows, live and ended, keep one row
// per address in the order they came, put the addresses past maxClients in one last row, and
// never go down when a flow ends.
func TestClients(t *testing.T) {
	tb := table{live: make(map[*flow]struct{}), byIP: make(map[netip.Addr]int)}
	newFlow := func(a string, n uint64) *flow {
		f := &flow{client: netip.MustParseAddrPort(a), start: t0}
		f.up.packets.Add(n)
		tb.add(f)
		return f
	}
	a1 := newFlow("10.0.0.1:1000", 1)
	newFlow("[::ffff:10.0.0.1]:1001", 2) // the same client through a dual-stack socket
	b := newFlow("10.0.0.2:1000", 4)
	before := tb.clients()
	tb.retire(a1)
	tb.retire(b)
	after := tb.clients()
	got := func(st []FlowStats) []string {
		var s []string
		for _, r := range st {
			s = append(s, fmt.Sprintf("%v flows=%d up=%d", r.Client, r.Flows, r.Up.Packets))
		}
		return s
	}
	want := []string{"10.0.0.1:0 flows=2 up=3", "10.0.0.2:0 flows=1 up=4"}
	if diff := cmp.Diff(want, got(before)); diff != "" {
		t.Errorf("live (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, got(after)); diff != "" {
		t.Errorf("after two ended (-want +got):\n%s", diff)
	}
	for i := range maxClients {
		f := newFlow(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 1).String(), 1)
		tb.retire(f)
	}
	st := tb.clients()
	if len(st) != maxClients+1 || st[len(st)-1].Client.IsValid() || st[len(st)-1].Flows != 2 {
		t.Errorf("%d rows, the last %+v; want %d, the last the other addresses' 2 flows", len(st), st[len(st)-1], maxClients+1)
	}
}
