package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pinglab/pinglab/internal/icmperr"
)

// DefaultTimeout is how long a probe waits for its reply when Options.Timeout is 0.
const DefaultTimeout = time.Second

var errNegative = errors.New("negative count, interval, timeout, deadline or window")

// keepFor is how long a probe is remembered after it was resolved, so that a reply arriving
// later still counts as late (or duplicate) rather than as a stranger.
func keepFor(timeout time.Duration) time.Duration { return max(10*timeout, 10*time.Second) }

// state is what the engine knows of one probe.
type state struct {
	sent     time.Time
	deadline time.Time // sent + timeout
	replied  bool
	timedOut bool
	errored  bool
	lost     bool
}

func (s *state) resolved() bool { return s.replied || s.timedOut || s.errored || s.lost }

type received struct {
	p   Packet
	err error
}

// Run sends probes through t as opts say and calls emit, from one goroutine, for every event.
// It returns when the run is over: Count probes resolved (each answered, lost or timed out),
// the Deadline passed, or ctx was cancelled (Ctrl-C), which is a normal end and no error.
// It returns an error when t fails in a way that ends the run.
func Run(ctx context.Context, t Transport, opts Options, emit func(Event)) (Result, error) {
	if opts.Count < 0 || opts.Interval < 0 || opts.Timeout < 0 || opts.Deadline < 0 || opts.Window < 0 {
		return Result{}, fmt.Errorf("probe: %w", errNegative)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	e := &engine{
		t:      t,
		opts:   opts,
		emit:   emit,
		probes: make(map[int]*state),
	}
	return e.run(ctx)
}

type engine struct {
	t    Transport
	opts Options
	emit func(Event)

	probes   map[int]*state
	pending  []int // sent probes in the order their timeouts fall, oldest first
	sent     int   // probes sent so far; the last one's seq
	replies  int
	start    time.Time
	nextSend time.Time
	lastSend time.Time
}

func (e *engine) run(ctx context.Context) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	rx := make(chan received)
	done := make(chan struct{})
	go e.receive(ctx, rx, done)
	defer func() {
		cancel()
		<-done
	}()

	e.start = time.Now()
	e.nextSend = e.start
	var end time.Time
	if e.opts.Deadline > 0 {
		end = e.start.Add(e.opts.Deadline)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		if !end.IsZero() && !now.Before(end) {
			return e.result(), nil
		}
		e.expire(now)
		if e.wantSend(now) {
			if err := e.send(ctx, now); err != nil {
				return e.result(), err
			}
			continue
		}
		if e.finished() {
			return e.result(), nil
		}
		wake, ok := e.nextWake(end)
		var tc <-chan time.Time
		if ok {
			timer.Reset(max(wake.Sub(now), 0))
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return e.result(), nil
		case r := <-rx:
			if r.err != nil {
				if ctx.Err() != nil {
					return e.result(), nil
				}
				return e.result(), fmt.Errorf("probe: receive: %w", r.err)
			}
			e.handle(r.p)
		case <-tc:
		}
		// Since Go 1.23 a stopped timer delivers nothing stale, so Reset above is all it needs.
		timer.Stop()
	}
}

// receive reads from the transport until ctx is done or the transport fails.
func (e *engine) receive(ctx context.Context, rx chan<- received, done chan<- struct{}) {
	defer close(done)
	for {
		p, err := e.t.Receive(ctx)
		select {
		case rx <- received{p, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (e *engine) result() Result {
	return Result{Start: e.start, End: time.Now()}
}

// moreToSend reports whether the run still has probes to send: without a count, always; with
// a count and a deadline, until count replies came (iputils' -c with -w); else count probes.
func (e *engine) moreToSend() bool {
	switch {
	case e.opts.Count == 0:
		return true
	case e.opts.Deadline > 0:
		return e.replies < e.opts.Count
	default:
		return e.sent < e.opts.Count
	}
}

func (e *engine) wantSend(now time.Time) bool {
	if !e.moreToSend() {
		return false
	}
	if e.opts.Interval == 0 {
		if e.opts.Flood && e.opts.Window == 0 {
			// ping -f: the next probe leaves when the last one is resolved, or 10 ms after it.
			last := e.probes[e.sent]
			return last == nil || last.resolved() || !now.Before(e.lastSend.Add(FloodInterval))
		}
		if e.outstanding() < max(e.opts.Window, 1) {
			return true
		}
		return e.opts.Flood && !now.Before(e.lastSend.Add(FloodInterval))
	}
	if e.opts.Window > 0 && e.outstanding() >= e.opts.Window {
		return false
	}
	return !now.Before(e.nextSend)
}

func (e *engine) finished() bool {
	if e.opts.Count == 0 {
		return false
	}
	if e.opts.Deadline > 0 && e.replies >= e.opts.Count {
		return true
	}
	return !e.moreToSend() && e.outstanding() == 0
}

// outstanding counts probes sent and not yet resolved.
func (e *engine) outstanding() int {
	n := 0
	for _, seq := range e.pending {
		if !e.probes[seq].resolved() {
			n++
		}
	}
	return n
}

func (e *engine) nextWake(end time.Time) (time.Time, bool) {
	var wake time.Time
	earlier := func(t time.Time) {
		if wake.IsZero() || t.Before(wake) {
			wake = t
		}
	}
	switch {
	case !e.moreToSend():
	case e.opts.Interval > 0 && (e.opts.Window == 0 || e.outstanding() < e.opts.Window):
		earlier(e.nextSend)
	case e.opts.Interval == 0 && e.opts.Flood:
		earlier(e.lastSend.Add(FloodInterval))
	}
	for _, seq := range e.pending {
		if !e.probes[seq].resolved() {
			earlier(e.probes[seq].deadline)
			break
		}
	}
	if !end.IsZero() {
		earlier(end)
	}
	return wake, !wake.IsZero()
}

func (e *engine) send(ctx context.Context, now time.Time) error {
	e.sent++
	seq := e.sent
	if e.opts.Interval > 0 {
		// The schedule is fixed from the start, so a slow send or reply does not shift it.
		e.nextSend = e.start.Add(time.Duration(seq) * e.opts.Interval)
	}
	at, err := e.t.Send(ctx, seq)
	if at.IsZero() {
		at = now
	}
	var ierr *icmperr.Error
	if err != nil && !errors.As(err, &ierr) {
		e.sent--
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("probe: send %d: %w", seq, err)
	}
	if seq == 1 {
		e.start = at
		if e.opts.Interval > 0 {
			e.nextSend = e.start.Add(e.opts.Interval)
		}
	}
	s := &state{sent: at, deadline: at.Add(e.opts.Timeout)}
	e.probes[seq] = s
	e.pending = append(e.pending, seq)
	e.lastSend = at
	e.emit(Event{Type: EventSent, Seq: seq, Sent: at, At: at})
	if ierr != nil {
		s.errored = true
		from := ""
		if ierr.From.IsValid() {
			from = ierr.From.String()
		}
		e.emit(Event{Type: EventError, Seq: seq, Sent: at, At: at, From: from, Err: ierr})
	}
	return nil
}

// expire times out the probes whose deadline passed and forgets those resolved long ago.
func (e *engine) expire(now time.Time) {
	i := 0
	for ; i < len(e.pending); i++ {
		seq := e.pending[i]
		s := e.probes[seq]
		if now.Before(s.deadline) {
			break
		}
		if !s.resolved() {
			s.timedOut = true
			e.emit(Event{Type: EventTimeout, Seq: seq, Sent: s.sent, At: s.deadline})
		}
	}
	// Resolved probes leave the queue; the map keeps them a while for late replies.
	e.pending = e.pending[i:]
	if len(e.probes) > len(e.pending)+1024 {
		cut := now.Add(-keepFor(e.opts.Timeout))
		for seq, s := range e.probes {
			if s.sent.Before(cut) {
				delete(e.probes, seq)
			}
		}
	}
}

func (e *engine) handle(p Packet) {
	s, ok := e.probes[p.Seq]
	if !ok {
		// Not one of ours, or forgotten long ago: nothing to report.
		return
	}
	at := p.Time
	if at.IsZero() {
		at = time.Now()
	}
	ev := Event{
		Seq: p.Seq, Sent: s.sent, At: at,
		Bytes: p.Bytes, From: p.From, TTL: p.TTL, Data: p.Data,
		Err: p.Err, Connect: p.Connect, Reason: p.Reason,
	}
	switch p.Kind {
	case KindReply:
		ev.RTT = max(at.Sub(s.sent), 0)
		switch {
		case s.replied:
			ev.Type = EventDuplicate
		case s.resolved():
			ev.Type = EventLate
		case !at.Before(s.deadline):
			// It came after its timeout but before the engine noticed: late all the same.
			s.timedOut = true
			ev.Type = EventLate
			e.emit(Event{Type: EventTimeout, Seq: p.Seq, Sent: s.sent, At: s.deadline})
		default:
			s.replied = true
			e.replies++
			ev.Type = EventReply
		}
	case KindError:
		if s.errored || s.replied || s.lost || p.Err == nil {
			return
		}
		// An error after the timeout (a host unreachable after ARP gave up, seconds later) is
		// still reported, as iputils does; the probe was already counted lost.
		s.errored = true
		ev.Type = EventError
		if ev.From == "" && p.Err.From.IsValid() {
			ev.From = p.Err.From.String()
		}
	case KindLost:
		if s.resolved() {
			return
		}
		s.lost = true
		ev.Type = EventLost
	default:
		return
	}
	e.emit(ev)
}
