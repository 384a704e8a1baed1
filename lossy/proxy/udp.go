package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// serveUDP reads clients' datagrams and relays each through its flow's upstream socket.
func (p *Proxy) serveUDP(ctx context.Context) error {
	byAddr := make(map[netip.AddrPort]*flow) // read loop and janitor, under p.flows.mu
	p.wg.Add(3)
	go func() { defer p.wg.Done(); p.up.sched.run(ctx) }()
	go func() { defer p.wg.Done(); p.down.sched.run(ctx) }()
	go func() { defer p.wg.Done(); p.janitor(ctx, byAddr) }()
	defer func() {
		p.flows.mu.Lock()
		fs := make([]*flow, 0, len(byAddr))
		for _, f := range byAddr {
			fs = append(fs, f)
		}
		p.flows.mu.Unlock()
		for _, f := range fs {
			p.closeFlow(f, byAddr)
		}
	}()
	buf := make([]byte, p.cfg.MaxSize+1)
	for {
		n, from, err := p.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// A port unreachable for an earlier reply (Windows reports it on the next read),
			// or a datagram too large for the buffer: neither ends the proxy.
			continue
		}
		now := time.Now()
		f := p.flowFor(ctx, from, now, byAddr)
		if f == nil {
			continue
		}
		if n > p.cfg.MaxSize {
			f.up.packets.Add(1)
			f.up.oversize.Add(1)
			continue
		}
		p.relay(p.up, &f.up, f, buf[:n], now)
	}
}

// flowFor finds the client's flow or opens one, with its own upstream socket, so that the
// server sees each client apart and its replies go back to the right one. nil: refused.
func (p *Proxy) flowFor(ctx context.Context, from netip.AddrPort, now time.Time, byAddr map[netip.AddrPort]*flow) *flow {
	p.flows.mu.Lock()
	f := byAddr[from]
	full := len(byAddr) >= p.cfg.MaxFlows
	p.flows.mu.Unlock()
	if f != nil {
		return f
	}
	if full {
		p.flows.refused.Add(1)
		return nil
	}
	conn, err := net.DialUDP("udp", nil, p.to)
	if err != nil {
		p.flows.refused.Add(1)
		return nil
	}
	f = &flow{client: from, start: now, conn: conn}
	f.touch(now)
	p.flows.mu.Lock()
	byAddr[from] = f
	p.flows.mu.Unlock()
	p.flows.add(f)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.readReplies(ctx, f)
	}()
	return f
}

// readReplies relays the server's datagrams on a flow's socket back to its client.
func (p *Proxy) readReplies(ctx context.Context, f *flow) {
	buf := make([]byte, p.cfg.MaxSize+1)
	for {
		n, err := f.conn.Read(buf)
		if err != nil {
			if f.closed.Load() || ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED: the server's port was closed when a datagram reached it.
			f.up.errors.Add(1)
			continue
		}
		now := time.Now()
		if n > p.cfg.MaxSize {
			f.down.packets.Add(1)
			f.down.oversize.Add(1)
			continue
		}
		p.relay(p.down, &f.down, f, buf[:n], now)
	}
}

// janitor ends flows idle for Config.Idle.
func (p *Proxy) janitor(ctx context.Context, byAddr map[netip.AddrPort]*flow) {
	every := min(max(p.cfg.Idle/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var idle []*flow
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cut := now.Add(-p.cfg.Idle).UnixNano()
			idle = idle[:0]
			p.flows.mu.Lock()
			for _, f := range byAddr {
				if f.last.Load() < cut {
					idle = append(idle, f)
				}
			}
			p.flows.mu.Unlock()
			for _, f := range idle {
				p.closeFlow(f, byAddr)
			}
		}
	}
}

func (p *Proxy) closeFlow(f *flow, byAddr map[netip.AddrPort]*flow) {
	if f.closed.Swap(true) {
		return
	}
	p.flows.mu.Lock()
	if byAddr[f.client] == f {
		delete(byAddr, f.client)
	}
	p.flows.mu.Unlock()
	f.conn.Close()
	p.flows.retire(f)
}

// bufPool recycles the buffers of datagrams sent at once but changed (corrupted or copied).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 65536); return &b }}

// relay runs one datagram through a direction's netem and sends or queues its copies.
func (p *Proxy) relay(d *direction, c *counters, f *flow, data []byte, now time.Time) {
	c.packets.Add(1)
	f.touch(now)
	send := p.sendUp
	if d == p.down {
		send = p.sendDown
	}
	if d.zero {
		send(f, data)
		return
	}
	cost := len(data) + heldOverhead
	d.mu.Lock()
	d.cost = cost
	v := d.link.decide(now, len(data), d.fitsFn)
	d.mu.Unlock()
	account(c, v)
	for i, pl := range v.plans[:v.n] {
		if pl.due.IsZero() {
			out := data
			if pl.flipBit >= 0 || (v.n == 2 && i == 0) {
				// The second copy must not see the first one's flipped bit.
				bp := bufPool.Get().(*[]byte)
				out = append((*bp)[:0], data...)
				flip(out, pl.flipBit)
				send(f, out)
				*bp = out[:0]
				bufPool.Put(bp)
				continue
			}
			send(f, out)
			continue
		}
		held := make([]byte, len(data))
		copy(held, data)
		flip(held, pl.flipBit)
		d.sched.push(&item{due: pl.due, data: held, cost: cost, f: f})
	}
}

func flip(b []byte, bit int) {
	if bit >= 0 {
		b[bit/8] ^= 1 << (bit % 8)
	}
}

func (p *Proxy) sendUp(f *flow, data []byte) {
	if f.closed.Load() {
		return
	}
	if _, err := f.conn.Write(data); err != nil {
		f.up.errors.Add(1)
		return
	}
	f.up.forwarded.Add(1)
	f.up.bytes.Add(uint64(len(data)))
}

func (p *Proxy) sendDown(f *flow, data []byte) {
	if _, err := p.pc.WriteToUDPAddrPort(data, f.client); err != nil {
		f.down.errors.Add(1)
		return
	}
	f.down.forwarded.Add(1)
	f.down.bytes.Add(uint64(len(data)))
}
