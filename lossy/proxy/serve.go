package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// A Proxy relays clients on one address to a server on another, impairing the traffic.
type Proxy struct {
	cfg      Config
	seed     uint64
	up, down *direction
	flows    table

	pc  *net.UDPConn // UDP
	ln  net.Listener // TCP
	to  *net.UDPAddr
	toT string

	wg sync.WaitGroup
}

// downSeed derives the down direction's seed, so that one seed makes both directions.
const downSeed = 0xd1b54a32d192ed03

// Listen opens the proxy's listening socket and resolves the server's address. It sends
// nothing; Serve relays.
func Listen(ctx context.Context, cfg Config) (*Proxy, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, seed: cfg.Seed}
	if p.seed == 0 {
		p.seed = rand.Uint64() | 1
	}
	p.up = newDirection(cfg.Up, p.seed, cfg.Limit)
	p.down = newDirection(cfg.Down, p.seed^downSeed, cfg.Limit)
	p.flows.live = make(map[*flow]struct{})
	p.flows.byIP = make(map[netip.Addr]int)
	var lc net.ListenConfig
	switch cfg.Proto {
	case "udp":
		to, err := resolveUDP(ctx, cfg.To)
		if err != nil {
			return nil, err
		}
		p.to = to
		c, err := lc.ListenPacket(ctx, "udp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		p.pc = c.(*net.UDPConn)
		p.up.sched = newScheduler(p.up.budget, p.sendUp)
		p.down.sched = newScheduler(p.down.budget, p.sendDown)
	case "tcp":
		to, err := resolveUDP(ctx, cfg.To) // the same host:port form, resolved once
		if err != nil {
			return nil, err
		}
		p.toT = to.String()
		ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		p.ln = ln
	}
	return p, nil
}

func resolveUDP(ctx context.Context, hostport string) (*net.UDPAddr, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("proxy: to %q: %w", hostport, err)
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return nil, fmt.Errorf("proxy: to %q: %w", hostport, err)
	}
	if host == "" {
		host = "localhost"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("proxy: to %q: %w", hostport, err)
	}
	return &net.UDPAddr{IP: ips[0].Unmap().AsSlice(), Port: pn, Zone: ips[0].Zone()}, nil
}

// Addr is the address clients reach the proxy on.
func (p *Proxy) Addr() net.Addr {
	if p.pc != nil {
		return p.pc.LocalAddr()
	}
	return p.ln.Addr()
}

// To is the server's address, as resolved.
func (p *Proxy) To() string {
	if p.to != nil {
		return p.to.String()
	}
	return p.toT
}

// Seed is the seed of the proxy's random choices, the one chosen when Config.Seed was 0.
func (p *Proxy) Seed() uint64 { return p.seed }

// Config is the configuration the proxy runs with, defaults filled in.
func (p *Proxy) Config() Config { return p.cfg }

// Flows returns every flow's counts so far, in the order they started; finished flows past the
// first 1024 are merged into one last row.
func (p *Proxy) Flows() []FlowStats { return p.flows.snapshot() }

// Clients returns the counts summed per client address (the port zero), the flows that ended
// and the live ones, in the order the addresses came; addresses past the first 1024 are summed
// in a last row with the zero address. A client's counts only ever rise, as a counter's must.
func (p *Proxy) Clients() []FlowStats { return p.flows.clients() }

// Open is how many flows are live.
func (p *Proxy) Open() int { return p.flows.count() }

// Refused counts the flows refused because MaxFlows were open.
func (p *Proxy) Refused() uint64 { return p.flows.refused.Load() }

// Held is the bytes the up and down queues hold now.
func (p *Proxy) Held() (up, down int) { return p.up.budget.held(), p.down.budget.held() }

// Serve relays until ctx is done, then closes the proxy and every flow. It returns nil when
// ctx ended it.
func (p *Proxy) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if p.pc != nil {
			p.pc.Close()
		} else {
			p.ln.Close()
		}
	})
	defer stop()
	var err error
	if p.pc != nil {
		err = p.serveUDP(ctx)
	} else {
		err = p.serveTCP(ctx)
	}
	cancel()
	p.wg.Wait()
	if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// sleepUntil waits until t or ctx ends, and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
