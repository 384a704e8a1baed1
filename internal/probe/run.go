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

// The engine keeps its probes in a ring indexed by seq, so that a probe costs no allocation
// and no map entry: a flood of 100k probes a second is the engine's hot path.
const (
	// minRing is the ring's first size, enough for 10 s of probes at 10 ms.
	minRing = 1 << 10
	// maxRemember caps how many resolved probes the ring grows to keep for late replies; past
	// it (a flood), the oldest resolved probe is forgotten before keepFor. Probes still in
	// flight are never forgotten: the ring grows for them.
	maxRemember = 1 << 17
)

// Flags of a state.
const (
	replied uint8 = 1 << iota
	timedOut
	errored
	lost
	// lateReplied: a reply came after the timeout (EventLate); further copies of it are
	// duplicates, not more late replies.
	lateReplied
)

// state is what the engine knows of one probe. It holds no pointer, so the ring costs the
// garbage collector nothing to scan.
type state struct {
	seq   int           // the probe in this slot of the ring; 0: none yet
	sent  time.Duration // when it left, from the engine's base time
	flags uint8
	srv   uint8 // what the one-way receipts said of it: serverHas, serverMissed
}

func (s *state) resolved() bool { return s.flags != 0 }

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
	e := &engine{t: t, opts: opts, emit: emit, ow: newOneWay(t)}
	res, err := e.run(ctx)
	e.endOneWay()
	return res, err
}

type engine struct {
	t    Transport
	opts Options
	emit func(Event)
	ow   *oneWay // nil unless t asks for one-way receipts

	// ring holds probe seq at ring[seq&(len(ring)-1)]; its length is a power of two.
	ring []state
	base time.Time // state.sent counts from here
	// Probes leave in seq order with one timeout, so their deadlines fall in seq order too:
	// every probe up to expired has had its deadline handled, and none below open is unresolved.
	expired  int
	open     int
	inFlight int // probes sent and not yet resolved
	sent     int // probes sent so far; the last one's seq
	replies  int
	start    time.Time
	nextSend time.Time
	lastSend time.Time
}

func (e *engine) run(ctx context.Context) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	// One probe in flight at a time: the engine reads too, when the transport can give up at a
	// deadline. Otherwise a goroutine reads while this one sends.
	dr, sync := e.t.(DeadlineReceiver)
	sync = sync && e.opts.Interval == 0 && e.opts.Window <= 1
	rx := make(chan received)
	done := make(chan struct{})
	if sync {
		close(done)
	} else {
		go e.receive(ctx, rx, done)
	}
	defer func() {
		cancel()
		<-done
	}()

	e.start = time.Now()
	e.base = e.start
	e.nextSend = e.start
	e.ring = make([]state, minRing)
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
			res := e.result()
			var q DeadlineReceiver
			if sync {
				q = dr
			}
			e.askStatus(ctx, q, rx)
			return res, nil
		}
		wake, ok := e.nextWake(end)
		if sync {
			// wake is the zero Time when there is nothing to wake for: ReceiveBefore waits.
			p, got, err := dr.ReceiveBefore(ctx, wake)
			switch {
			case ctx.Err() != nil:
				return e.result(), nil
			case err != nil:
				return e.result(), fmt.Errorf("probe: receive: %w", err)
			case got:
				e.handle(p)
			}
			continue
		}
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
			last := e.probe(e.sent)
			return last == nil || last.resolved() || !now.Before(e.lastSend.Add(FloodInterval))
		}
		if e.inFlight < max(e.opts.Window, 1) {
			return true
		}
		return e.opts.Flood && !now.Before(e.lastSend.Add(FloodInterval))
	}
	if e.opts.Window > 0 && e.inFlight >= e.opts.Window {
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
	return !e.moreToSend() && e.inFlight == 0
}

// probe returns the state of probe seq, or nil when it was never sent or is forgotten.
func (e *engine) probe(seq int) *state {
	if seq < 1 || seq > e.sent {
		return nil
	}
	s := &e.ring[seq&(len(e.ring)-1)]
	if s.seq != seq {
		return nil
	}
	return s
}

func (e *engine) sentAt(s *state) time.Time { return e.base.Add(s.sent) }

func (e *engine) deadline(s *state) time.Time { return e.base.Add(s.sent + e.opts.Timeout) }

// resolve marks s with flag and counts it out of flight if it was in flight.
func (e *engine) resolve(s *state, flag uint8) {
	if !s.resolved() {
		e.inFlight--
	}
	s.flags |= flag
}

// slot returns the ring slot for probe seq, about to be sent. The ring doubles when the slot
// still holds a probe in flight, or a resolved one young enough to get a late reply (up to
// maxRemember of them).
func (e *engine) slot(seq int, now time.Time) *state {
	for {
		s := &e.ring[seq&(len(e.ring)-1)]
		if s.seq == 0 || (s.resolved() && (len(e.ring) >= maxRemember ||
			now.Sub(e.sentAt(s)) >= keepFor(e.opts.Timeout))) {
			return s
		}
		e.grow()
	}
}

func (e *engine) grow() {
	ring := make([]state, 2*len(e.ring))
	for _, s := range e.ring {
		if s.seq != 0 {
			ring[s.seq&(len(ring)-1)] = s
		}
	}
	e.ring = ring
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
	case e.opts.Interval > 0 && (e.opts.Window == 0 || e.inFlight < e.opts.Window):
		earlier(e.nextSend)
	case e.opts.Interval == 0 && e.opts.Flood:
		earlier(e.lastSend.Add(FloodInterval))
	}
	for e.open < e.sent {
		if s := e.probe(e.open + 1); s != nil && !s.resolved() {
			earlier(e.deadline(s))
			break
		}
		e.open++
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
	if err != nil {
		ierr = probeError(err)
	}
	if err != nil && ierr == nil {
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
	s := e.slot(seq, at)
	*s = state{seq: seq, sent: at.Sub(e.base)}
	e.inFlight++
	e.lastSend = at
	e.emit(Event{Type: EventSent, Seq: seq, Sent: at, At: at})
	if ierr != nil {
		e.resolve(s, errored)
		from := ""
		if ierr.From.IsValid() {
			from = ierr.From.String()
		}
		e.emit(Event{Type: EventError, Seq: seq, Sent: at, At: at, From: from, Err: ierr})
	}
	return nil
}

// probeError returns the *icmperr.Error that err is or wraps, or nil: the failure of one probe
// rather than of the transport. It is apart from send so that its errors.As target is
// allocated only when a send failed.
func probeError(err error) *icmperr.Error {
	var ierr *icmperr.Error
	if errors.As(err, &ierr) {
		return ierr
	}
	return nil
}

// expire times out the probes whose deadline passed, oldest first.
func (e *engine) expire(now time.Time) {
	for e.expired < e.sent {
		s := e.probe(e.expired + 1)
		if s == nil {
			// Resolved and already forgotten in a flood: nothing left to time out.
			e.expired++
			continue
		}
		deadline := e.deadline(s)
		if now.Before(deadline) {
			return
		}
		e.expired++
		if !s.resolved() {
			e.resolve(s, timedOut)
			e.emit(Event{Type: EventTimeout, Seq: s.seq, Sent: e.sentAt(s), At: deadline})
			e.timedOut(s, e.sentAt(s))
		}
	}
}

func (e *engine) handle(p Packet) {
	if p.Kind == KindReceipt {
		if p.Receipt != nil {
			e.receipt(p.Receipt, true)
		}
		return
	}
	s := e.probe(p.Seq)
	if s == nil {
		// Not one of ours, or forgotten long ago: nothing to report.
		return
	}
	at := p.Time
	if at.IsZero() {
		at = time.Now()
	}
	sent := e.sentAt(s)
	ev := Event{
		Seq: p.Seq, Sent: sent, At: at,
		Bytes: p.Bytes, From: p.From, TTL: p.TTL, Data: p.Data,
		Err: p.Err, Connect: p.Connect, Reason: p.Reason, Receipt: p.Receipt,
	}
	switch p.Kind {
	case KindReply:
		ev.RTT = max(at.Sub(sent), 0)
		switch {
		case s.flags&(replied|lateReplied) != 0:
			ev.Type = EventDuplicate
		case s.resolved():
			s.flags |= lateReplied
			ev.Type = EventLate
		case !at.Before(e.deadline(s)):
			// It came after its timeout but before the engine noticed: late all the same.
			e.resolve(s, timedOut)
			s.flags |= lateReplied
			ev.Type = EventLate
			e.emit(Event{Type: EventTimeout, Seq: p.Seq, Sent: sent, At: e.deadline(s)})
			e.timedOut(s, sent)
		default:
			e.resolve(s, replied)
			e.replies++
			ev.Type = EventReply
		}
	case KindError:
		if s.flags&(errored|replied|lost) != 0 || p.Err == nil {
			return
		}
		// An error after the timeout (a host unreachable after ARP gave up, seconds later) is
		// still reported, as iputils does; the probe was already counted lost.
		e.resolve(s, errored)
		ev.Type = EventError
		if ev.From == "" && p.Err.From.IsValid() {
			ev.From = p.Err.From.String()
		}
	case KindLost:
		if s.resolved() {
			return
		}
		e.resolve(s, lost)
		ev.Type = EventLost
	default:
		return
	}
	e.emit(ev)
	if p.Receipt != nil {
		e.receipt(p.Receipt, false)
	}
}
