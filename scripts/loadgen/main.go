// Command loadgen is the load tool of scripts/bench.sh: it keeps a UDP or TCP echo server busy
// from many sockets at once and prints what it measured as one line of key=value pairs, so that
// the benchmark compares servers (pinglab's, the assignment's Python ones, socat, a naive Go
// echo) with the same client. It is a benchmark fixture, not part of pinglab.
//
//	loadgen udp -addr 127.0.0.1:12000 -clients 4 -window 32 -duration 3s
//	loadgen tcp -addr 127.0.0.1:12000 -conns 10000 -interval 1s -duration 10s
//	loadgen tcp -addr 127.0.0.1:12000 -conns 100 -interval 0 -duration 3s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

var errUsage = errors.New("usage: loadgen udp|tcp [flags] (see -h)")

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := flag.NewFlagSet("loadgen "+args[0], flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:12000", "the echo server's `host:port`")
	size := fs.Int("size", 64, "message size in `bytes` (at least 24)")
	duration := fs.Duration("duration", 3*time.Second, "how long to measure")
	clients := fs.Int("clients", 4, "udp: sockets sending at once")
	window := fs.Int("window", 32, "udp: datagrams in flight per socket")
	timeout := fs.Duration("timeout", 5*time.Millisecond, "udp: a datagram not echoed by then is lost and frees its slot")
	conns := fs.Int("conns", 100, "tcp: connections")
	interval := fs.Duration("interval", 0, "tcp: time between pings on each connection (0: the next as soon as the last is echoed)")
	ramp := fs.Duration("ramp", 2*time.Second, "tcp: spread the connections' first pings over this long")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *size < 24 || *size > 4096 || *duration <= 0 || *clients < 1 || *window < 1 || *window > ringSize/2 || *conns < 1 {
		return fmt.Errorf("bad flags: size 24..4096, duration > 0, clients >= 1, window 1..%d, conns >= 1", ringSize/2)
	}
	switch args[0] {
	case "udp":
		return udpLoad(*addr, *size, *clients, *window, *timeout, *duration)
	case "tcp":
		return tcpLoad(*addr, *size, *conns, *interval, *ramp, *duration)
	}
	return errUsage
}

// message writes "ping <seq, 16 digits> " and 'x' padding into b, in lower case so that the
// servers' upper-casing shows it was echoed by them.
func message(b []byte, seq uint64) {
	copy(b, "ping ")
	d := strconv.AppendUint(make([]byte, 0, 20), seq, 10)
	for i := 5; i < 21; i++ {
		b[i] = '0'
	}
	copy(b[21-len(d):21], d)
	for i := 21; i < len(b); i++ {
		b[i] = 'x'
	}
	b[len(b)-1] = '\n'
}

// echoSeq reads the seq of an echoed message, false when it is not one. socat's cat echoes
// it unchanged, the others in upper case.
func echoSeq(b []byte) (uint64, bool) {
	if len(b) < 21 || (string(b[:5]) != "PING " && string(b[:5]) != "ping ") {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(b[5:21]), 10, 64)
	return seq, err == nil
}

const ringSize = 8192

// udpLoad keeps window datagrams in flight from each of clients sockets, with recvmmsg and
// sendmmsg, and prints the echoes per second.
func udpLoad(addr string, size, clients, window int, timeout, duration time.Duration) error {
	raddr, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var sent, echoed, lost atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		_ = c.SetReadBuffer(4 << 20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			s, e, l, err := udpClient(ctx, c, raddr, size, window, timeout)
			sent.Add(s)
			echoed.Add(e)
			lost.Add(l)
			if err != nil {
				errs <- err
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	el := time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("sent=%d echoed=%d lost=%d seconds=%.3f echoes_per_s=%.0f sent_per_s=%.0f\n",
		sent.Load(), echoed.Load(), lost.Load(), el, float64(echoed.Load())/el, float64(sent.Load())/el)
	return nil
}

func udpClient(ctx context.Context, c *net.UDPConn, raddr *net.UDPAddr, size, window int, timeout time.Duration) (sent, echoed, lost int64, err error) {
	p := ipv4.NewPacketConn(c)
	const batch = 64
	out := make([]ipv4.Message, batch)
	in := make([]ipv4.Message, batch)
	for i := range batch {
		out[i].Buffers = [][]byte{make([]byte, size)}
		out[i].Addr = raddr
		in[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	var sentAt [ringSize]int64 // unix nanos of seq%ringSize; 0: answered or lost
	var next, oldest uint64 = 1, 1
	inFlight := 0
	t0 := time.Now()
	now := func() int64 { return int64(time.Since(t0)) + 1 }
	for ctx.Err() == nil {
		// Fill the window.
		n := 0
		for inFlight+n < window && n < batch {
			message(out[n].Buffers[0], next)
			sentAt[next%ringSize] = now()
			next++
			n++
		}
		for k := 0; k < n; {
			w, err := p.WriteBatch(out[k:n], 0)
			if err != nil {
				return sent, echoed, lost, fmt.Errorf("send: %w", err)
			}
			k += w
		}
		sent += int64(n)
		inFlight += n
		// Read what came back, waiting at most until the oldest datagram's timeout.
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		m, err := p.ReadBatch(in, 0)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return sent, echoed, lost, fmt.Errorf("receive: %w", err)
		}
		for i := range m {
			seq, ok := echoSeq(in[i].Buffers[0][:in[i].N])
			if !ok || seq >= next || seq+ringSize/2 < next || sentAt[seq%ringSize] == 0 {
				continue
			}
			sentAt[seq%ringSize] = 0
			echoed++
			inFlight--
		}
		// Give up on datagrams older than timeout.
		cut := now() - int64(timeout)
		for oldest < next {
			at := sentAt[oldest%ringSize]
			if at != 0 && at > cut {
				break
			}
			if at != 0 {
				sentAt[oldest%ringSize] = 0
				lost++
				inFlight--
			}
			oldest++
		}
	}
	return sent, echoed, lost, nil
}

// tcpLoad opens conns connections and pings on each every interval (or back to back), and
// prints the messages per second and the round trips' percentiles.
func tcpLoad(addr string, size, conns int, interval, ramp, duration time.Duration) error {
	cs := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	// A server that cannot keep up with the connections (the threaded Python one at 10,000)
	// refuses or times some out: they are counted, and the rest measured.
	d := net.Dialer{Timeout: 5 * time.Second}
	var dialErr error
	for range conns {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			dialErr = err
			continue
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return fmt.Errorf("no connection of %d: %w", conns, dialErr)
	}
	// Only pings sent between measureFrom and measureEnd count; the connections stop half a
	// second later, so that their stopping (a deadline set on each) delays none that count.
	ctx, cancel := context.WithTimeout(context.Background(), ramp+duration+500*time.Millisecond)
	defer cancel()
	measureFrom := time.Now().Add(ramp)
	measureEnd := measureFrom.Add(duration)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var rtts []time.Duration
	var msgs, failed atomic.Int64
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
			defer stop()
			mine := make([]time.Duration, 0, 64)
			buf, rbuf := make([]byte, size), make([]byte, size)
			// Each connection's first ping falls at its own point of the ramp, so that the
			// pings at 1/s are spread evenly rather than all at once.
			next := time.Now().Add(time.Duration(i) * ramp / time.Duration(len(cs)))
			for seq := uint64(1); ctx.Err() == nil && time.Now().Before(measureEnd); seq++ {
				if interval > 0 {
					if w := time.Until(next); w > 0 {
						select {
						case <-time.After(w):
						case <-ctx.Done():
						}
					}
					next = next.Add(interval)
				}
				message(buf, seq)
				t := time.Now()
				if _, err := c.Write(buf); err != nil {
					break
				}
				if _, err := io.ReadFull(c, rbuf); err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					break
				}
				if got, ok := echoSeq(rbuf); !ok || got != seq {
					failed.Add(1)
					break
				}
				if t.After(measureFrom) && t.Before(measureEnd) {
					msgs.Add(1)
					mine = append(mine, time.Since(t))
				}
			}
			mu.Lock()
			rtts = append(rtts, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(rtts)
	pct := func(p float64) float64 {
		if len(rtts) == 0 {
			return 0
		}
		return float64(rtts[min(len(rtts)-1, int(p*float64(len(rtts))))].Microseconds()) / 1000
	}
	fmt.Printf("conns=%d dial_failed=%d msgs=%d failed=%d seconds=%.3f msgs_per_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		len(cs), conns-len(cs), msgs.Load(), failed.Load(), duration.Seconds(), float64(msgs.Load())/duration.Seconds(), pct(0.5), pct(0.99), pct(1))
	return nil
}
