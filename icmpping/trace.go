package icmpping

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
)

// Trace defaults, as classic traceroute has them.
const (
	DefaultMaxTTL  = 30
	DefaultQueries = 3
	DefaultWait    = time.Second
	DefaultPort    = 33434
	// traceData is the probe's payload: 32 bytes, so that IPv4 packets are 60 bytes long.
	traceData = 32
)

var errTraceConfig = errors.New("bad trace option")

// A TraceConfig says where and how to trace.
type TraceConfig struct {
	Target netip.Addr
	// Proto is "udp" (the default: datagrams to ports from Port up) or "icmp" (echo requests).
	Proto string
	// FirstTTL (1), MaxTTL (30) and Queries (3, probes per hop); 0 takes the default.
	FirstTTL, MaxTTL, Queries int
	// Wait is how long to wait for a hop's answers after its probes left; 0 means 1s.
	Wait time.Duration
	// Port is the first UDP destination port (33434); each probe takes the next.
	Port int
	// Lookup looks the name of each hop's address up (traceroute without -n).
	Lookup bool
	// Privileged forces a raw socket for ICMP probes.
	Privileged bool
}

func (c *TraceConfig) check() error {
	if !c.Target.IsValid() {
		return fmt.Errorf("icmpping: trace: %w", errTarget)
	}
	c.Target = c.Target.Unmap()
	if c.Proto == "" {
		c.Proto = "udp"
	}
	if c.FirstTTL == 0 {
		c.FirstTTL = 1
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.Queries == 0 {
		c.Queries = DefaultQueries
	}
	if c.Wait == 0 {
		c.Wait = DefaultWait
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	switch {
	case c.Proto != "udp" && c.Proto != "icmp":
		return fmt.Errorf("icmpping: trace: %w: protocol %q (want udp or icmp)", errTraceConfig, c.Proto)
	case c.MaxTTL < 1 || c.MaxTTL > 255:
		return fmt.Errorf("icmpping: trace: %w: max hops %d (want 1..255)", errTraceConfig, c.MaxTTL)
	case c.FirstTTL < 1 || c.FirstTTL > c.MaxTTL:
		return fmt.Errorf("icmpping: trace: %w: first hop %d (want 1..%d)", errTraceConfig, c.FirstTTL, c.MaxTTL)
	case c.Queries < 1 || c.Queries > 10:
		return fmt.Errorf("icmpping: trace: %w: %d queries per hop (want 1..10)", errTraceConfig, c.Queries)
	case c.Wait < 0:
		return fmt.Errorf("icmpping: trace: %w: negative wait %v", errTraceConfig, c.Wait)
	case c.Port < 1 || c.Port+(c.MaxTTL-c.FirstTTL+1)*c.Queries > 65536:
		return fmt.Errorf("icmpping: trace: %w: port %d (the probes take ports up to %d, past 65535)", errTraceConfig, c.Port, c.Port+(c.MaxTTL-c.FirstTTL+1)*c.Queries-1)
	}
	return nil
}

// CheckOptions reports the first option of c that Trace would refuse, the target aside, so that
// a caller can refuse bad input before it looks a name up or prints anything.
func (c TraceConfig) CheckOptions() error {
	if !c.Target.IsValid() {
		c.Target = netip.IPv4Unspecified()
	}
	return c.check()
}

// PacketLen is the size of a probe's IP packet, as traceroute's header line gives it: 60 bytes
// for IPv4, 80 for IPv6.
func (c TraceConfig) PacketLen() int {
	if c.Target.Unmap().Is4() {
		return 20 + 8 + traceData
	}
	return 40 + 8 + traceData
}

// A Hop is what came back for one TTL.
type Hop struct {
	TTL    int
	Probes []HopProbe
}

// A HopProbe is one probe's answer: From is the zero Addr when none came within the wait.
type HopProbe struct {
	From netip.Addr
	// Name is From's name when the config asked for lookups and one was found.
	Name string
	RTT  time.Duration
	// Err is the ICMP error that answered, nil for an echo reply or no answer.
	Err *icmperr.Error
	// Reached is set when the answer came from the destination itself.
	Reached bool
}

// Annotation is traceroute's mark for the probe's answer ("!H", "!N", "!X" ...), "" for none.
func (p HopProbe) Annotation() string {
	if p.Err == nil {
		return ""
	}
	return p.Err.Annotation()
}

func isPortUnreach(e *icmperr.Error) bool {
	if e.V6 {
		return e.Type == icmperr.Type6DestUnreach && e.Code == icmperr.Code6PortUnreach
	}
	return e.Type == icmperr.TypeDestUnreach && e.Code == icmperr.CodePortUnreach
}

// Final reports whether the trace ends with this hop: the destination answered, or an
// unreachable said that no probe will get further.
func (h Hop) Final() bool {
	for _, p := range h.Probes {
		if p.Reached || (p.Err != nil && p.Err.Final()) {
			return true
		}
	}
	return false
}

// A tracer sends probes with a given TTL and reads what comes back, as a probe.Transport does.
type tracer interface {
	send(ctx context.Context, seq, ttl int) (time.Time, error)
	Receive(ctx context.Context) (probe.Packet, error)
	Close() error
}

// icmpTracer traces with echo requests over a Conn.
type icmpTracer struct{ *Conn }

func (t icmpTracer) send(ctx context.Context, seq, ttl int) (time.Time, error) {
	if err := t.SetTTL(ttl); err != nil {
		return time.Time{}, err
	}
	return t.Send(ctx, seq)
}

// Trace walks the path to cfg.Target: for each TTL from FirstTTL to MaxTTL it sends Queries
// probes, waits up to Wait for their answers and calls fn with the hop. It stops after the hop
// where the destination answered or an unreachable ended the path, and when ctx is done.
func Trace(ctx context.Context, cfg TraceConfig, fn func(Hop)) error {
	if err := cfg.check(); err != nil {
		return err
	}
	var t tracer
	var err error
	if cfg.Proto == "icmp" {
		var c *Conn
		c, err = Dial(ctx, Config{Target: cfg.Target, Size: traceData, Privileged: cfg.Privileged})
		if c != nil {
			t = icmpTracer{c}
		}
	} else {
		t, err = dialUDPTracer(cfg)
	}
	if err != nil {
		return err
	}
	defer t.Close()
	seq := 0
	for ttl := cfg.FirstTTL; ttl <= cfg.MaxTTL; ttl++ {
		hop, err := traceHop(ctx, t, cfg, ttl, &seq)
		if err != nil {
			return err
		}
		if cfg.Lookup {
			lookupNames(ctx, hop.Probes)
		}
		fn(hop)
		if hop.Final() {
			return nil
		}
	}
	return nil
}

func traceHop(ctx context.Context, t tracer, cfg TraceConfig, ttl int, seq *int) (Hop, error) {
	hop := Hop{TTL: ttl, Probes: make([]HopProbe, cfg.Queries)}
	first := *seq + 1
	sent := make([]time.Time, cfg.Queries)
	pending := 0
	for q := range cfg.Queries {
		*seq++
		at, err := t.send(ctx, *seq, ttl)
		var ie *icmperr.Error
		switch {
		case errors.As(err, &ie):
			hop.Probes[q].Err = ie
			continue
		case err != nil:
			return hop, err
		}
		if at.IsZero() {
			at = time.Now()
		}
		sent[q] = at
		pending++
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.Wait)
	defer cancel()
	for pending > 0 {
		pkt, err := t.Receive(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return hop, ctx.Err()
			}
			if wctx.Err() != nil {
				break
			}
			return hop, err
		}
		q := pkt.Seq - first
		if q < 0 || q >= cfg.Queries || sent[q].IsZero() || hop.Probes[q].From.IsValid() {
			continue
		}
		at := pkt.Time
		if at.IsZero() {
			at = time.Now()
		}
		p := HopProbe{RTT: at.Sub(sent[q]), Err: pkt.Err}
		if pkt.Err != nil {
			p.From = pkt.Err.From
		}
		if !p.From.IsValid() {
			p.From, _ = netip.ParseAddr(strings.Trim(pkt.From, "[]"))
		}
		p.From = p.From.Unmap()
		p.Reached = p.From == cfg.Target && (pkt.Kind == probe.KindReply || isPortUnreach(pkt.Err))
		hop.Probes[q] = p
		pending--
	}
	return hop, nil
}

// lookupNames fills in the names of the hop's addresses, each looked up once with a short
// timeout, as a slow resolver must not stall the trace.
func lookupNames(ctx context.Context, ps []HopProbe) {
	names := map[netip.Addr]string{}
	for i, p := range ps {
		if !p.From.IsValid() {
			continue
		}
		name, ok := names[p.From]
		if !ok {
			lctx, cancel := context.WithTimeout(ctx, time.Second)
			if n, err := net.DefaultResolver.LookupAddr(lctx, p.From.String()); err == nil && len(n) > 0 {
				name = strings.TrimSuffix(n[0], ".")
			}
			cancel()
			names[p.From] = name
		}
		ps[i].Name = name
	}
}
