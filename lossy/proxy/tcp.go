package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// chunkSize is the most a TCP relay reads at once; each connection holds one such buffer per
// direction while it waits for data.
const chunkSize = 4096

// queueChunks bounds the chunks one direction of one connection holds in its queue, so that
// one fast sender cannot take a whole direction's limit from the others.
const queueChunks = 16

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

func (p *Proxy) serveTCP(ctx context.Context) error {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: wait a little rather than spin.
			if !sleepUntil(ctx, time.Now().Add(10*time.Millisecond)) {
				return nil
			}
			continue
		}
		if p.flows.count() >= p.cfg.MaxFlows {
			p.flows.refused.Add(1)
			abort(c)
			continue
		}
		from, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		f := &flow{client: from, start: time.Now()}
		p.flows.add(f)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.flows.retire(f)
			p.handleTCP(ctx, f, c)
		}()
	}
}

// abort closes c with an RST rather than a FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// tcpConn is one relayed connection: the client's side and the server's.
type tcpConn struct {
	client, server net.Conn
	once           sync.Once
}

// reset ends both sides with an RST.
func (t *tcpConn) reset() {
	t.once.Do(func() {
		abort(t.client)
		abort(t.server)
	})
}

func (p *Proxy) handleTCP(ctx context.Context, f *flow, client net.Conn) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	var d net.Dialer
	server, err := d.DialContext(dctx, "tcp", p.toT)
	cancel()
	if err != nil {
		f.up.errors.Add(1)
		abort(client)
		return
	}
	t := &tcpConn{client: client, server: server}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// Ctrl-C ends every connection at once, with a FIN as an ordinary close would.
	done := context.AfterFunc(ctx, func() { client.Close(); server.Close() })
	defer done()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(ctx, t, p.up, &f.up, f, client, server) }()
	go func() { defer wg.Done(); p.pump(ctx, t, p.down, &f.down, f, server, client) }()
	wg.Wait()
	client.Close()
	server.Close()
}

// closeWrite passes a FIN on.
func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		return
	}
	c.Close()
}

// pump relays src to dst through a direction. A read error other than the end of the stream
// (a reset) resets the other side too, as a middlebox that forwards the RST would.
func (p *Proxy) pump(ctx context.Context, t *tcpConn, d *direction, c *counters, f *flow, src, dst net.Conn) {
	if d.zero {
		bp := chunkPool.Get().(*[]byte)
		defer chunkPool.Put(bp)
		buf := *bp
		for {
			n, err := src.Read(buf)
			if n > 0 {
				c.packets.Add(1)
				f.touch(time.Now())
				if _, werr := dst.Write(buf[:n]); werr != nil {
					t.reset()
					return
				}
				c.forwarded.Add(1)
				c.bytes.Add(uint64(n))
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					closeWrite(dst)
				} else {
					t.reset()
				}
				return
			}
		}
	}
	type chunk struct {
		bp  *[]byte
		n   int
		dec streamDecision
		err error
	}
	queue := make(chan chunk, queueChunks)
	cost := chunkSize + heldOverhead
	go func() {
		defer close(queue)
		var last time.Time
		for {
			bp := chunkPool.Get().(*[]byte)
			n, err := src.Read(*bp)
			if n > 0 {
				now := time.Now()
				c.packets.Add(1)
				f.touch(now)
				if d.budget.take(ctx, cost) != nil {
					chunkPool.Put(bp)
					return
				}
				d.mu.Lock()
				dec := d.link.decideStream(now, last, n)
				d.mu.Unlock()
				if dec.due.After(last) {
					last = dec.due
				}
				select {
				case queue <- chunk{bp: bp, n: n, dec: dec}:
				case <-ctx.Done():
					d.budget.give(cost)
					chunkPool.Put(bp)
					return
				}
				if dec.reset {
					return
				}
			} else {
				chunkPool.Put(bp)
			}
			if err != nil {
				select {
				case queue <- chunk{err: err}:
				case <-ctx.Done():
				}
				return
			}
		}
	}()
	for ch := range queue {
		if ch.bp == nil {
			if errors.Is(ch.err, io.EOF) {
				closeWrite(dst)
			} else {
				t.reset()
			}
			continue
		}
		ok := p.writeChunk(ctx, t, d, c, dst, ch.bp, ch.n, ch.dec)
		d.budget.give(cost)
		chunkPool.Put(ch.bp)
		if !ok {
			for rest := range queue {
				if rest.bp != nil {
					d.budget.give(cost)
					chunkPool.Put(rest.bp)
				}
			}
			return
		}
	}
}

// writeChunk waits until a chunk is due and writes it, or its prefix and then the reset.
func (p *Proxy) writeChunk(ctx context.Context, t *tcpConn, d *direction, c *counters, dst net.Conn, bp *[]byte, n int, dec streamDecision) bool {
	if !dec.due.IsZero() {
		c.delayed.Add(1)
		if dec.stalled {
			c.stalled.Add(1)
		}
		if !sleepUntil(ctx, dec.due) {
			return false
		}
	}
	if dec.reset {
		n = dec.keep
	}
	if n > 0 {
		if _, err := dst.Write((*bp)[:n]); err != nil {
			t.reset()
			return false
		}
		c.forwarded.Add(1)
		c.bytes.Add(uint64(n))
	}
	if dec.reset {
		c.resets.Add(1)
		t.reset()
		return false
	}
	return true
}
