package udpping

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pinglab/pinglab/internal/probe"
)

// testTimeout bounds each wait of the network tests; loopback answers in microseconds, so only
// a broken test waits this long.
const testTimeout = 10 * time.Second

func dial(t *testing.T, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receive reads one packet, failing the test when none comes in time.
func receive(t *testing.T, c *Conn) probe.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p, err := c.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return p
}

func send(t *testing.T, c *Conn, seq int) time.Time {
	t.Helper()
	at, err := c.Send(context.Background(), seq)
	if err != nil {
		t.Fatalf("Send(%d): %v", seq, err)
	}
	return at
}

func TestConnAgainstServer(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			s := startServer(t, ServerConfig{Addr: net.JoinHostPort(f.loopback, "0")})
			c := dial(t, Config{Addr: s.Addr().String(), Network: f.network, Size: 64})
			wantFrom := netip.AddrPortFrom(netip.MustParseAddr(f.loopback), s.Addr().Port()).String()
			for seq := 1; seq <= 3; seq++ {
				sent := send(t, c, seq)
				p := receive(t, c)
				if p.Seq != seq || p.Kind != probe.KindReply || p.Bytes != 64 || p.From != wantFrom {
					t.Errorf("reply = %+v, want seq %d, 64 bytes from %s", p, seq, wantFrom)
				}
				if !bytes.HasPrefix(p.Data, []byte("PING ")) || !bytes.HasSuffix(p.Data, []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZABCD")) {
					t.Errorf("reply data = %q, want the upper-cased ping", p.Data)
				}
				// The kernel's receive time, which cannot come before the send.
				if p.Time.IsZero() || p.Time.Before(sent.Add(-time.Millisecond)) {
					t.Errorf("reply time %v, sent %v", p.Time, sent)
				}
			}
		})
	}
}

// plainEcho runs an echo server that sends every datagram back as it is, as
// "socat UDP-RECVFROM:PORT,fork EXEC:cat" does, and first a garbage datagram before it.
func plainEcho(t *testing.T, network, addr string, garbage bool) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
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
			if garbage {
				pc.WriteTo([]byte("\x00garbage\xff"), from)
				pc.WriteTo([]byte("PING 999999 not sent yet"), from)
				pc.WriteTo(nil, from)
			}
			pc.WriteTo(buf[:n], from)
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestConnPlainEcho(t *testing.T) {
	for _, f := range families {
		for _, garbage := range []bool{false, true} {
			name := f.name
			if garbage {
				name += " with garbage"
			}
			t.Run(name, func(t *testing.T) {
				addr := plainEcho(t, f.network, net.JoinHostPort(f.loopback, "0"), garbage)
				c := dial(t, Config{Addr: addr.String(), Network: f.network})
				for seq := 1; seq <= 3; seq++ {
					send(t, c, seq)
					p := receive(t, c)
					if p.Seq != seq || p.Kind != probe.KindReply || p.Bytes != DefaultSize {
						t.Errorf("reply = %+v, want seq %d of %d bytes", p, seq, DefaultSize)
					}
					if !bytes.HasPrefix(p.Data, []byte("ping ")) {
						t.Errorf("reply data = %q, want the lower-case ping", p.Data)
					}
				}
			})
		}
	}
}

func TestConnReceiveCancel(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := dial(t, Config{Addr: s.Addr().String()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Receive(ctx)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Receive after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Receive did not return after cancel")
	}
	// A cancelled call must leave the socket usable for the next.
	send(t, c, 1)
	if p := receive(t, c); p.Seq != 1 {
		t.Errorf("reply after a cancelled Receive = %+v", p)
	}
	if _, err := c.Send(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a done ctx = %v, want context.Canceled", err)
	}
}

// TestConnTwoClients runs two clients at once against one server; both get all their echoes.
func TestConnTwoClients(t *testing.T) {
	s := startServer(t, ServerConfig{Addr: ":0"})
	var wg sync.WaitGroup
	for _, f := range families {
		c := dial(t, Config{Addr: net.JoinHostPort(f.loopback, strings.TrimPrefix(s.Addr().String(), "[::]:")), Network: f.network})
		wg.Go(func() {
			for seq := 1; seq <= 20; seq++ {
				if _, err := c.Send(context.Background(), seq); err != nil {
					t.Errorf("%s: Send: %v", f.name, err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				p, err := c.Receive(ctx)
				cancel()
				if err != nil || p.Seq != seq {
					t.Errorf("%s: Receive = %+v, %v; want seq %d", f.name, p, err, seq)
					return
				}
			}
		})
	}
	wg.Wait()
	var got []ClientStats
	for _, st := range s.Stats() {
		got = append(got, ClientStats{Received: st.Received, Echoed: st.Echoed})
	}
	if diff := cmp.Diff([]ClientStats{{Received: 20, Echoed: 20}, {Received: 20, Echoed: 20}}, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("server counters (-want +got):\n%s", diff)
	}
}

func TestDialErrors(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{Addr: "127.0.0.1", Size: 10}, "size too small for the message (at least 33 bytes), not 10"},
		{Config{Addr: "127.0.0.1", Size: -1}, "size too small"},
		{Config{Addr: "127.0.0.1", Size: MaxSize + 1}, "size above 65507, the largest UDP payload, not 65508"},
		{Config{Addr: "127.0.0.1:0"}, `bad port "0"`},
		{Config{Addr: "no..such..host"}, `cannot resolve "no..such..host"`},
		{Config{Addr: "::1", Network: "udp4"}, "not an IPv4 address"},
		{Config{Addr: "127.0.0.1", Network: "ip"}, `bad network "ip": want udp, udp4 or udp6`},
	}
	for _, tt := range tests {
		t.Run(tt.wantErr, func(t *testing.T) {
			c, err := Dial(context.Background(), tt.cfg)
			if err == nil {
				c.Close()
				t.Fatalf("Dial(%+v) succeeded", tt.cfg)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Dial error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestConnMaxSize(t *testing.T) {
	s := startServer(t, ServerConfig{})
	c := dial(t, Config{Addr: s.Addr().String(), Size: MaxSize})
	send(t, c, 1)
	if p := receive(t, c); p.Seq != 1 || p.Bytes != MaxSize {
		t.Errorf("reply = seq %d, %d bytes; want seq 1, %d bytes", p.Seq, p.Bytes, MaxSize)
	}
}
