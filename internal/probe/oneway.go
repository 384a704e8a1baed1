package probe

import (
	"context"
	"time"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

// A OneWay is a Transport whose probes ask the server for receipts (pinglab's one-way
// extension, pingmsg): each reply of a server that keeps it says which of the run's requests
// have reached it, so the engine can tell, for each timed-out probe, whether its request or its
// reply was lost. A server that does not keep it echoes the request plainly; the run then has
// round-trip loss only and no EventDirection.
type OneWay interface {
	Transport
	// OneWay reports whether the transport asks for receipts.
	OneWay() bool
	// AskStatus sends a status query, which asks for a receipt without being a probe; its
	// answer comes back from Receive or ReceiveBefore as a Packet of KindReceipt.
	AskStatus(ctx context.Context) error
}

// maxUndecided bounds the timed-out probes waiting for a receipt: past it (a server that
// stopped answering while probes go on), the oldest is given up as Unknown.
const maxUndecided = 1 << 16

// statusTries is how many status queries the engine sends at the end of a run, one per timeout,
// when probes still wait for a direction.
const statusTries = 3

// oneWay is the engine's side of the extension.
type oneWay struct {
	t OneWay
	// answered: a receipt came, so the server keeps the extension.
	answered bool
	// status: the answer to a status query came.
	status bool
	// undecided holds the timed-out probes without a direction yet, in seq order, with when
	// they were sent.
	undecided []undecided
}

type undecided struct {
	seq  int
	sent time.Time
}

func newOneWay(t Transport) *oneWay {
	ow, ok := t.(OneWay)
	if !ok || !ow.OneWay() {
		return nil
	}
	return &oneWay{t: ow}
}

// What the receipts said of a probe (state.srv), before it was resolved.
const (
	serverHas    uint8 = 1 << iota // a receipt's window had it
	serverMissed                   // a receipt of a later request's window lacked it
)

// timedOut notes that probe s timed out: its direction is known at once when a receipt already
// covered it (the usual case: each receipt covers the last WindowBits requests, and a probe
// times out many receipts after it was sent), else it waits for one.
func (e *engine) timedOut(s *state, sent time.Time) {
	ow := e.ow
	if ow == nil {
		return
	}
	switch {
	case s.srv&serverHas != 0:
		e.emit(Event{Type: EventDirection, Seq: s.seq, Sent: sent, At: time.Now(), Dir: Inbound})
		return
	case s.srv&serverMissed != 0:
		e.emit(Event{Type: EventDirection, Seq: s.seq, Sent: sent, At: time.Now(), Dir: Outbound})
		return
	}
	if len(ow.undecided) >= maxUndecided {
		e.decide(0, Unknown)
	}
	// Timeouts come in seq order but for a late reply found before its timeout was: keep order.
	seq := s.seq
	i := len(ow.undecided)
	for i > 0 && ow.undecided[i-1].seq > seq {
		i--
	}
	ow.undecided = append(ow.undecided, undecided{})
	copy(ow.undecided[i+1:], ow.undecided[i:])
	ow.undecided[i] = undecided{seq, sent}
}

// receipt notes what r says of the probes its window covers, and decides the timed-out probes
// waiting for it. A final receipt (a status query's, sent after every probe had timed out)
// decides every probe beyond it too: those never arrived.
func (e *engine) receipt(r *pingmsg.Receipt, final bool) {
	ow := e.ow
	if ow == nil {
		return
	}
	ow.answered = true
	if final {
		ow.status = true
	}
	for seq := max(r.Highest-pingmsg.WindowBits+1, 1); seq <= r.Highest; seq++ {
		s := e.probe(seq)
		if s == nil {
			continue
		}
		if arrived, _ := r.Has(seq); arrived {
			s.srv |= serverHas
		} else if seq < r.Highest {
			s.srv |= serverMissed
		}
	}
	if len(ow.undecided) == 0 {
		return
	}
	kept := ow.undecided[:0]
	var decided []undecided
	var dirs []Direction
	for _, u := range ow.undecided {
		arrived, known := r.Has(u.seq)
		switch {
		case !known:
			// Beyond the window, and windows only move on: no later receipt can tell.
			decided, dirs = append(decided, u), append(dirs, Unknown)
		case arrived:
			decided, dirs = append(decided, u), append(dirs, Inbound)
		case u.seq < r.Highest || final:
			// The server heard a later request (or was asked after the run) and not this one.
			decided, dirs = append(decided, u), append(dirs, Outbound)
		default:
			kept = append(kept, u)
		}
	}
	ow.undecided = kept
	now := time.Now()
	for i, u := range decided {
		e.emit(Event{Type: EventDirection, Seq: u.seq, Sent: u.sent, At: now, Dir: dirs[i]})
	}
}

// decide gives the oldest waiting probe direction d; with seq 0 the oldest, whatever it is.
func (e *engine) decide(seq int, d Direction) {
	ow := e.ow
	if len(ow.undecided) == 0 || (seq != 0 && ow.undecided[0].seq != seq) {
		return
	}
	u := ow.undecided[0]
	ow.undecided = ow.undecided[1:]
	if ow.answered {
		e.emit(Event{Type: EventDirection, Seq: u.seq, Sent: u.sent, At: time.Now(), Dir: d})
	}
}

// wantStatus reports whether a status query would decide anything.
func (e *engine) wantStatus() bool {
	return e.ow != nil && e.ow.answered && !e.ow.status && len(e.ow.undecided) > 0
}

// askStatus sends status queries at the end of a run, one per timeout, until one is answered
// or statusTries went unanswered, and handles what comes meanwhile.
func (e *engine) askStatus(ctx context.Context, dr DeadlineReceiver, rx <-chan received) error {
	for range statusTries {
		if !e.wantStatus() {
			return nil
		}
		if err := e.ow.t.AskStatus(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The run is over: a query that cannot be sent leaves the directions unknown.
			return nil
		}
		until := time.Now().Add(e.opts.Timeout)
		for e.wantStatus() && time.Now().Before(until) {
			if dr != nil {
				p, got, err := dr.ReceiveBefore(ctx, until)
				if ctx.Err() != nil || err != nil {
					return nil
				}
				if got {
					e.handle(p)
				}
				continue
			}
			timer := time.NewTimer(time.Until(until))
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case r := <-rx:
				timer.Stop()
				if r.err != nil {
					return nil
				}
				e.handle(r.p)
			case <-timer.C:
			}
		}
	}
	return nil
}

// endOneWay gives every probe still waiting direction Unknown, when the server answered the
// extension at all.
func (e *engine) endOneWay() {
	if e.ow == nil {
		return
	}
	for len(e.ow.undecided) > 0 {
		e.decide(0, Unknown)
	}
}
