package udpping

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

// BenchmarkServerEcho measures the server's echo loop on loopback with 64-byte datagrams:
// "stopwait" is one client with one datagram in flight (the latency of a round trip), the
// others keep 4 clients x 32 datagrams in flight (throughput, as scripts/bench.sh measures it), with and
// without emulation. It reports echoes/s.
func BenchmarkServerEcho(b *testing.B) {
	cases := []struct {
		name            string
		cfg             ServerConfig
		clients, window int
	}{
		{"stopwait", ServerConfig{}, 1, 1},
		{"4x32", ServerConfig{}, 4, 32},
		{"4x32/drop20%,delay1ms", ServerConfig{Drop: 0.2, Delay: time.Millisecond, Seed: 1}, 4, 32},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			bc.cfg.Addr = "127.0.0.1:0"
			s := startServer(b, bc.cfg)
			conns := make([]*net.UDPConn, bc.clients)
			for i := range conns {
				c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(s.Addr()))
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			per := b.N/bc.clients + 1
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Go(func() { pump(b, c, per, bc.window) })
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(per*bc.clients)/b.Elapsed().Seconds(), "echoes/s")
		})
	}
}

// pump sends n pings on c, keeping up to window of them unanswered. The server answers in
// order (no jitter here), so the echo of ping k tells that any ping before k still unanswered
// was dropped; a read timeout frees the window when the last ones were.
func pump(b *testing.B, c *net.UDPConn, n, window int) {
	buf := make([]byte, 2048)
	msg := make([]byte, 0, 128)
	now := time.Now()
	sent, answered := 0, 0
	for answered < n {
		for sent < n && sent-answered < window {
			sent++
			msg = pingmsg.Append(msg[:0], sent, now, 64)
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
				return
			}
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		k, err := c.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				answered = sent
				continue
			}
			b.Error(err)
			return
		}
		if seq, ok := pingmsg.ParseSeq(buf[:k]); ok && seq > answered {
			answered = seq
		}
	}
}
