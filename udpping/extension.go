package udpping

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/pinglab/pinglab/internal/heartbeat"
	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
)

// The server's side of pinglab's two extensions of the assignment: the one-way receipt in the
// echo of a ping that asks for it, and the heartbeat, which it takes in without answering.

// answer makes the echo of data in place: the assignment's upper-cased copy, with the server's
// receipt written over the padding when the ping asks for one (pingmsg's one-way extension).
func (s *Server) answer(data []byte, from netip.AddrPort) {
	req, ok := pingmsg.ParseOneWayRequest(data)
	if !ok {
		pingmsg.Upper(data)
		return
	}
	// The receipt is taken before any delay, so that a delayed reply shows on the way back.
	pingmsg.AnswerOneWay(data, req, s.ledger.Record(from.Addr(), req, time.Now()))
}

// heartbeat takes in a heartbeat that was not dropped. A datagram that starts as one but does
// not parse is still not echoed: it is counted and logged, and the tracker ignores it.
func (s *Server) heartbeat(data []byte, from netip.AddrPort, m Message) {
	at := time.Now()
	m.Action, m.Delay = Heartbeat, 0
	s.count(from, Heartbeat)
	s.log(m, data)
	seq, sent, ok := pingmsg.ParseHeartbeat(data, time.Local)
	if !ok {
		return
	}
	s.notify(s.beats.Beat(from, seq, sent, at))
}

func (s *Server) notify(evs []heartbeat.Event) {
	if s.cfg.Heartbeat == nil || len(evs) == 0 {
		return
	}
	s.beatMu.Lock()
	defer s.beatMu.Unlock()
	for _, e := range evs {
		s.cfg.Heartbeat(e)
	}
}

// checkHeartbeats looks for silent heartbeat clients a few times per timeout until the returned
// stop is called, so that a stop is reported within a tenth of the timeout of when it is due.
func (s *Server) checkHeartbeats() (stop func()) {
	every := min(max(s.beats.Timeout()/10, 10*time.Millisecond), 500*time.Millisecond)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				s.notify(s.beats.Check(now))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// Heartbeats returns what the server knows of each heartbeat client, in the order they came.
func (s *Server) Heartbeats() []heartbeat.ClientStats { return s.beats.Stats() }

var _ probe.OneWay = (*Conn)(nil)

// message is ping seq's text, sent at now, with the one-way request when the run asks for it.
func (c *Conn) message(seq int, now time.Time) []byte {
	if c.oneWay {
		return pingmsg.AppendOneWay(c.sbuf[:0], seq, now, c.id, c.size)
	}
	return pingmsg.Append(c.sbuf[:0], seq, now, c.size)
}

// OneWay reports whether the pings ask for one-way receipts (Config.OneWay).
func (c *Conn) OneWay() bool { return c.oneWay }

// AskStatus sends a status query of the one-way extension: its receipt comes back from
// Receive as a Packet of kind probe.KindReceipt.
func (c *Conn) AskStatus(ctx context.Context) error {
	if !c.oneWay {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.sbuf = pingmsg.AppendOneWay(c.sbuf[:0], 0, time.Now(), c.id, c.size)
	if _, err := c.conn.Write(c.sbuf); err != nil {
		return fmt.Errorf("udpping: send status query: %w", err)
	}
	return nil
}

// receipt returns the one-way receipt of this run in a reply, or nil.
func (c *Conn) receipt(data []byte) *pingmsg.Receipt {
	if !c.oneWay {
		return nil
	}
	r, ok := pingmsg.ParseReceipt(data)
	if !ok || r.ID != c.id {
		return nil
	}
	return &r
}

// status makes the Packet of the answer to a status query, or reports false for anything else.
func (c *Conn) status(data []byte, at time.Time) (probe.Packet, bool) {
	if !c.oneWay || !pingmsg.ParseStatusSeq(data) {
		return probe.Packet{}, false
	}
	r := c.receipt(data)
	if r == nil {
		return probe.Packet{}, false
	}
	return probe.Packet{Kind: probe.KindReceipt, Time: at, From: c.from, Receipt: r}, true
}
