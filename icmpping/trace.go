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
	"github.com/pinglab/pinglab/internal/sock"
)

// Trace defaults, as Linux traceroute (2.1) has them.
const (
	DefaultMaxTTL  = 30
	DefaultQueries = 3
	// DefaultWait, DefaultHere and DefaultNear are traceroute's -w 5.0,3.0,10.0: a probe waits
	// up to 5 s, but no more than 3 times the round trip of an answer from its own hop, nor 10
	// times that of an answer from a hop further on.
	DefaultWait = 5 * time.Second
	DefaultHere = 3.0
	DefaultNear = 10.0
	// DefaultSimultaneous is traceroute's -N: probes in flight at once, so that a trace to a
	// host that never answers takes a few waits, not one per hop.
	DefaultSimultaneous = 16
	DefaultPort         = 33434
	// DefaultUDPPort and DefaultTCPPort are the fixed ports of traceroute -U and -T.
	DefaultUDPPort = 53
	DefaultTCPPort = 80
	// traceData is the probe's payload by default: 32 bytes, so that IPv4 packets are 60 bytes.
	traceData = 32
)

var errTraceConfig = errors.New("bad trace option")

// A TraceConfig says where and how to trace.
type TraceConfig struct {
	Target netip.Addr
	// Proto is "udp" (the default: datagrams to ports from Port up), "udp-port" (datagrams to
	// the one port Port, 53 by default: traceroute -U), "icmp" (echo requests: -I) or "tcp"
	// (connection attempts to Port, 80 by default, through connecting sockets: -T, as
	// traceroute's tcpconn method).
	Proto string
	// FirstTTL (1), MaxTTL (30) and Queries (3, probes per hop); 0 takes the default.
	FirstTTL, MaxTTL, Queries int
	// Wait is the longest a probe waits for its answer (5 s); Here and Near cut it to that many
	// times the round trip of an answer from the probe's own hop, or from a later hop (3 and
	// 10; negative: not at all), as traceroute's -w MAX,HERE,NEAR.
	Wait       time.Duration
	Here, Near float64
	// Simultaneous is how many probes may be in flight at once (16), SendWait the pause
	// between two probes (traceroute -z; 0: none).
	Simultaneous int
	SendWait     time.Duration
	// Port is the first UDP destination port (33434), each probe taking the next; or the one
	// port of "udp-port" and "tcp".
	Port int
	// Length is the size of a probe's IP packet (traceroute's packet length argument); 0 is
	// 60 bytes for IPv4, 80 for IPv6.
	Length int
	// Source and Socket (interface, TOS) are -s, -i and -t; DontFragment is -F.
	Source       netip.Addr
	Socket       sock.Options
	DontFragment bool
	// Lookup looks the name of each hop's address up (traceroute without -n).
	Lookup bool
	// Privileged forces a raw socket for ICMP probes.
	Privileged bool
}

// headerLen is the IP and transport headers' size of a probe.
func (c *TraceConfig) headerLen() int {
	ip := 20
	if c.Target.Is6() {
		ip = 40
	}
	if c.Proto == "tcp" {
		return ip + 20
	}
	return ip + 8
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
	if c.Here == 0 {
		c.Here = DefaultHere
	}
	if c.Near == 0 {
		c.Near = DefaultNear
	}
	if c.Simultaneous == 0 {
		c.Simultaneous = DefaultSimultaneous
	}
	if c.Port == 0 {
		c.Port = map[string]int{"udp-port": DefaultUDPPort, "tcp": DefaultTCPPort}[c.Proto]
		if c.Port == 0 {
			c.Port = DefaultPort
		}
	}
	probes := (c.MaxTTL - c.FirstTTL + 1) * c.Queries
	switch {
	case c.Proto != "udp" && c.Proto != "icmp" && c.Proto != "udp-port" && c.Proto != "tcp":
		return fmt.Errorf("icmpping: trace: %w: protocol %q (want udp, udp-port, icmp or tcp)", errTraceConfig, c.Proto)
	case c.MaxTTL < 1 || c.MaxTTL > 255:
		return fmt.Errorf("icmpping: trace: %w: max hops %d (want 1..255)", errTraceConfig, c.MaxTTL)
	case c.FirstTTL < 1 || c.FirstTTL > c.MaxTTL:
		return fmt.Errorf("icmpping: trace: %w: first hop %d (want 1..%d)", errTraceConfig, c.FirstTTL, c.MaxTTL)
	case c.Queries < 1 || c.Queries > 10:
		return fmt.Errorf("icmpping: trace: %w: %d queries per hop (want 1..10)", errTraceConfig, c.Queries)
	case c.Wait < 0 || c.SendWait < 0:
		return fmt.Errorf("icmpping: trace: %w: negative wait", errTraceConfig)
	case c.Simultaneous < 1:
		return fmt.Errorf("icmpping: trace: %w: %d simultaneous probes (want 1 and up)", errTraceConfig, c.Simultaneous)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("icmpping: trace: %w: port %d", errTraceConfig, c.Port)
	case c.Proto == "udp" && c.Port+probes > 65536:
		return fmt.Errorf("icmpping: trace: %w: port %d (the probes take ports up to %d, past 65535)", errTraceConfig, c.Port, c.Port+probes-1)
	case c.Length != 0 && (c.Length < c.headerLen() || c.Length > 65000):
		return fmt.Errorf("icmpping: trace: %w: packet length %d (want %d..65000)", errTraceConfig, c.Length, c.headerLen())
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

// payload is the size of a probe's payload: what Length leaves after the headers.
func (c TraceConfig) payload() int {
	if c.Length == 0 {
		return traceData
	}
	return c.Length - c.headerLen()
}

// PacketLen is the size of a probe's IP packet, as traceroute's header line gives it: Length,
// else 60 bytes for IPv4, 80 for IPv6.
func (c TraceConfig) PacketLen() int {
	if c.Length != 0 {
		return c.Length
	}
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

// Trace walks the path to cfg.Target as Linux traceroute does: probes for TTL FirstTTL,
// FirstTTL+1 ... leave in order, up to Simultaneous of them in flight at once, each waiting for
// its answer as Wait, Here and Near say; fn is called with each hop, in TTL order, once every
// probe of it is answered or has waited out. The trace ends with the hop where the destination
// answered or an unreachable said no probe gets further (no probe is sent past it once that is
// known), at MaxTTL, or when ctx is done.
//
// Trace runs its own loop rather than the probe engine (internal/probe) that every ping uses:
// the engine gives each probe one fixed timeout and sends on a schedule up to a count, while a
// traceroute probe's wait shrinks with the answers of other probes (its own hop's, HERE; later
// hops', NEAR), the probes leave as slots in the window free up, and where the trace ends is
// learnt from the answers. Those are traceroute's semantics, which the engine does not have and
// no ping needs.
func Trace(ctx context.Context, cfg TraceConfig, fn func(Hop)) error {
	if err := cfg.check(); err != nil {
		return err
	}
	var t tracer
	var err error
	switch cfg.Proto {
	case "icmp":
		var c *Conn
		c, err = Dial(ctx, Config{Target: cfg.Target, Size: max(cfg.payload(), 0), Privileged: cfg.Privileged,
			Socket: cfg.Socket, Source: cfg.Source, PMTU: map[bool]string{true: "do"}[cfg.DontFragment]})
		if c != nil {
			t = icmpTracer{c}
		}
	case "udp":
		t, err = dialUDPTracer(cfg)
	default:
		t, err = newSocketTracer(cfg)
	}
	if err != nil {
		return err
	}
	defer t.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rx := make(chan received)
	go func() {
		for {
			p, err := t.Receive(ctx)
			select {
			case rx <- received{p, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	r := newTraceRun(cfg)
	// Hops are handed to fn, their names looked up first, by a goroutine of their own: a slow
	// resolver must not hold up this loop, whose clock decides which probes waited out.
	hops := make(chan Hop, r.hops)
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for hop := range hops {
			if cfg.Lookup {
				lookupNames(ctx, hop.Probes)
			}
			fn(hop)
		}
	}()
	defer func() {
		close(hops)
		<-printed
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		r.expire(now)
		for r.printed < r.hops && r.hopDone(r.printed) {
			hop := r.hop(r.printed)
			// Read before the hop is handed over: the printer then writes its probes' names.
			final := hop.Final()
			hops <- hop
			r.printed++
			if final {
				return nil
			}
		}
		if r.printed >= r.hops || (r.final >= 0 && r.printed > r.final) {
			return nil
		}
		if wait := r.sendWait(now); r.canSend() && wait <= 0 {
			if err := r.send(ctx, t, now); err != nil {
				return err
			}
			continue
		}
		timer.Reset(max(r.nextWake(now).Sub(now), 0))
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case got := <-rx:
			if got.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return got.err
			}
			r.answer(got.p)
		case <-timer.C:
		}
		timer.Stop()
	}
}

type received struct {
	p   probe.Packet
	err error
}

// A traceRun is the state of one trace: every probe it may send, in order (probe i is seq
// i+1, of hop i/Queries).
type traceRun struct {
	cfg      TraceConfig
	hops     int
	probes   []traceProbe
	next     int // the next probe to send
	inFlight int
	printed  int // hops handed to fn
	final    int // the hop that ends the trace, -1 while none is known
	lastSend time.Time
}

type traceProbe struct {
	sent time.Time
	done bool
	p    HopProbe
}

func newTraceRun(cfg TraceConfig) *traceRun {
	hops := cfg.MaxTTL - cfg.FirstTTL + 1
	return &traceRun{cfg: cfg, hops: hops, probes: make([]traceProbe, hops*cfg.Queries), final: -1}
}

func (r *traceRun) canSend() bool {
	if r.next >= len(r.probes) || r.inFlight >= r.cfg.Simultaneous {
		return false
	}
	return r.final < 0 || r.next/r.cfg.Queries <= r.final
}

// sendWait is how long until -z lets the next probe leave.
func (r *traceRun) sendWait(now time.Time) time.Duration {
	if r.lastSend.IsZero() {
		return 0
	}
	return r.lastSend.Add(r.cfg.SendWait).Sub(now)
}

func (r *traceRun) send(ctx context.Context, t tracer, now time.Time) error {
	i := r.next
	r.next++
	ttl := r.cfg.FirstTTL + i/r.cfg.Queries
	at, err := t.send(ctx, i+1, ttl)
	var ie *icmperr.Error
	switch {
	case errors.As(err, &ie):
		r.probes[i] = traceProbe{sent: now, done: true, p: HopProbe{Err: ie}}
		return nil
	case err != nil:
		return err
	}
	if at.IsZero() {
		at = now
	}
	r.lastSend = at
	r.probes[i] = traceProbe{sent: at}
	r.inFlight++
	return nil
}

// deadline is when probe i gives up: Wait after it left, or sooner by Here and Near.
func (r *traceRun) deadline(i int) time.Time {
	pr := &r.probes[i]
	wait := r.cfg.Wait
	hop := i / r.cfg.Queries
	for j := range r.probes[:r.next] {
		q := &r.probes[j]
		if !q.done || !q.p.From.IsValid() || q.p.RTT <= 0 {
			continue
		}
		// traceroute adds 1 ms to the round trip it multiplies (DEF_WAIT_PREC), so that a
		// fast hop does not cut its neighbours' waits to nothing.
		rtt := float64(q.p.RTT + time.Millisecond)
		switch h := j / r.cfg.Queries; {
		case h == hop && r.cfg.Here > 0:
			wait = min(wait, time.Duration(r.cfg.Here*rtt))
		case h > hop && r.cfg.Near > 0:
			wait = min(wait, time.Duration(r.cfg.Near*rtt))
		}
	}
	return pr.sent.Add(wait)
}

// expireGrace is how long past its deadline a probe is kept open for an answer that arrived
// in time (by the kernel's receive timestamp) but is not read yet: on a busy machine this
// loop may run late, and what decides is when the answer came, not when it was read.
const expireGrace = 50 * time.Millisecond

func (r *traceRun) expire(now time.Time) {
	for i := range r.probes[:r.next] {
		if pr := &r.probes[i]; !pr.done && !now.Before(r.deadline(i).Add(expireGrace)) {
			pr.done = true
			r.inFlight--
		}
	}
}

func (r *traceRun) nextWake(now time.Time) time.Time {
	wake := now.Add(time.Hour)
	for i := range r.probes[:r.next] {
		if !r.probes[i].done {
			if d := r.deadline(i).Add(expireGrace); d.Before(wake) {
				wake = d
			}
		}
	}
	if r.canSend() {
		if at := now.Add(r.sendWait(now)); at.Before(wake) {
			wake = at
		}
	}
	return wake
}

func (r *traceRun) answer(pkt probe.Packet) {
	i := pkt.Seq - 1
	if i < 0 || i >= r.next || r.probes[i].done {
		return
	}
	pr := &r.probes[i]
	at := pkt.Time
	if at.IsZero() {
		at = time.Now()
	}
	if at.After(r.deadline(i)) {
		// Came after the probe gave up (read within expireGrace): as traceroute, too late.
		return
	}
	p := HopProbe{RTT: at.Sub(pr.sent), Err: pkt.Err}
	if pkt.Err != nil {
		p.From = pkt.Err.From
	}
	if !p.From.IsValid() {
		p.From, _ = netip.ParseAddr(strings.Trim(pkt.From, "[]"))
	}
	p.From = p.From.Unmap()
	p.Reached = p.From == r.cfg.Target && (pkt.Kind == probe.KindReply || isPortUnreach(pkt.Err))
	pr.p, pr.done = p, true
	r.inFlight--
	if hop := i / r.cfg.Queries; (p.Reached || (p.Err != nil && p.Err.Final())) && (r.final < 0 || hop < r.final) {
		r.final = hop
	}
}

// hopDone reports whether every probe of hop h is answered, waited out, or will not be sent.
func (r *traceRun) hopDone(h int) bool {
	for i := h * r.cfg.Queries; i < (h+1)*r.cfg.Queries; i++ {
		if i >= r.next || !r.probes[i].done {
			return false
		}
	}
	return true
}

func (r *traceRun) hop(h int) Hop {
	hop := Hop{TTL: r.cfg.FirstTTL + h, Probes: make([]HopProbe, r.cfg.Queries)}
	for q := range r.cfg.Queries {
		hop.Probes[q] = r.probes[h*r.cfg.Queries+q].p
	}
	return hop
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
