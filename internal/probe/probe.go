// Package probe is the one probe engine behind every pinglab client. Given a Transport that knows
// how to send probe seq and read what comes back, Run owns time: it sends on a fixed schedule,
// gives each probe its own timeout, matches what comes back to its probe, tells duplicates and
// late replies apart, and emits one Event per thing that happened. Statistics and renderers
// consume those events and nothing else, so every client counts and prints the same way.
package probe

import (
	"context"
	"time"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/pingmsg"
)

// A Transport sends probes of one protocol and reads what comes back. Run calls Send from one
// goroutine and Receive from another, so the two must be safe to call at the same time.
type Transport interface {
	// Send sends probe seq (1, 2, 3 ...). It returns when the probe left; the zero Time lets the
	// engine read its own clock. An error that is or wraps an *icmperr.Error is that probe's
	// error: the engine reports it and goes on. Any other error ends the run.
	Send(ctx context.Context, seq int) (time.Time, error)
	// Receive blocks until a reply, an error or a loss notice for some probe arrives. It returns
	// soon after ctx is done, with ctx.Err(). Any other error ends the run.
	Receive(ctx context.Context) (Packet, error)
}

// A DeadlineReceiver is a Transport that can also be read from the engine's own goroutine until
// a deadline. When one probe at a time is in flight (stop-and-wait, ping -f), Run then sends and
// reads from one goroutine, as iputils ping does, and a reply that is already there (on loopback
// it always is) costs no hand-off between goroutines: that is what floods fast. Run never calls
// Receive and ReceiveBefore on the same run.
type DeadlineReceiver interface {
	Transport
	// ReceiveBefore is Receive that gives up at deadline (the zero Time: never) and returns
	// got false then. It returns soon after ctx is done, with ctx.Err().
	ReceiveBefore(ctx context.Context, deadline time.Time) (p Packet, got bool, err error)
}

// Kind says what a Packet is.
type Kind uint8

// The kinds of Packet.
const (
	// KindReply is an echo of a probe.
	KindReply Kind = iota + 1
	// KindError is an ICMP error (or socket error standing for one) quoting a probe.
	KindError
	// KindLost is a notice that a probe is lost, such as the assignment's TCP server's "LOST".
	KindLost
	// KindReceipt is the answer to a OneWay transport's status query.
	KindReceipt
)

// A Packet is what a Transport read: a reply, an error or a loss notice for probe Seq.
type Packet struct {
	Seq  int
	Kind Kind
	// Time is when it arrived, from the kernel's receive timestamp where there is one. The zero
	// Time lets the engine read its own clock.
	Time time.Time
	// Bytes is the size iputils would print in "N bytes from".
	Bytes int
	// From is who answered, as it is printed: "127.0.0.1:12000", "::1", "10.0.0.1".
	From string
	// TTL is the reply's TTL or hop limit, 0 when unknown.
	TTL int
	// Data is the reply's payload as received (the echoed text of UDP and TCP pings), or nil.
	Data []byte
	// Err is set for KindError.
	Err *icmperr.Error
	// Connect is how long the connection for this probe took to set up (TCP, one per ping).
	Connect time.Duration
	// Reason says why, for KindLost ("server answered LOST").
	Reason string
	// Receipt is the server's answer to pinglab's one-way extension, or nil. A Packet of
	// KindReceipt (Seq 0) carries only this: the answer to a status query.
	Receipt *pingmsg.Receipt
}

// EventType says what happened.
type EventType uint8

// The events Run emits.
const (
	// EventSent: probe Seq left.
	EventSent EventType = iota + 1
	// EventReply: the first reply to probe Seq, within its timeout.
	EventReply
	// EventDuplicate: another reply to a probe that already had one.
	EventDuplicate
	// EventLate: a reply to a probe whose timeout had already passed. It is not counted received.
	EventLate
	// EventTimeout: probe Seq got nothing within its timeout and is lost.
	EventTimeout
	// EventLost: the transport said probe Seq is lost (the TCP server's "LOST", a closed connection).
	EventLost
	// EventError: an ICMP error (or socket error standing for one) came back for probe Seq.
	EventError
	// EventDirection: probe Seq, timed out before, was lost in direction Dir, as the server's
	// receipts tell (pinglab's one-way extension). It comes once per timed-out probe, when the
	// server answered the extension at all.
	EventDirection
)

var eventNames = [...]string{
	EventSent:      "sent",
	EventReply:     "reply",
	EventDuplicate: "duplicate",
	EventLate:      "late",
	EventTimeout:   "timeout",
	EventLost:      "lost",
	EventError:     "error",
	EventDirection: "direction",
}

// String returns the event's name as it appears in JSON and CSV: "reply", "timeout" ...
func (t EventType) String() string {
	if int(t) < len(eventNames) && eventNames[t] != "" {
		return eventNames[t]
	}
	return "unknown"
}

// An Event is one thing that happened to one probe.
type Event struct {
	Type EventType
	Seq  int
	// Sent is when the probe left.
	Sent time.Time
	// At is when this happened: the reply's arrival, the moment the timeout passed.
	At time.Time
	// RTT is At - Sent for replies, duplicates and late replies.
	RTT time.Duration
	// The rest is the Packet's, for events that come from one.
	Bytes   int
	From    string
	TTL     int
	Data    []byte
	Err     *icmperr.Error
	Connect time.Duration
	Reason  string
	Receipt *pingmsg.Receipt
	// Dir is the direction a probe was lost in, for EventDirection.
	Dir Direction
}

// Direction is which way a lost probe was lost.
type Direction uint8

// The directions.
const (
	// Outbound: the request never reached the server.
	Outbound Direction = iota + 1
	// Inbound: the server received the request; its reply was lost on the way back.
	Inbound
	// Unknown: no receipt told (the run ended first, or the receipts skipped past the probe).
	Unknown
)

// String returns "outbound", "inbound" or "unknown".
func (d Direction) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	case Unknown:
		return "unknown"
	}
	return ""
}

// Options control a run.
type Options struct {
	// Count is how many probes to send; 0 sends until ctx is done or Deadline passes.
	Count int
	// Interval is the time between probe starts. The schedule is fixed (probe k leaves at
	// start + (k-1)*Interval), so it does not drift by the RTT. 0 is stop-and-wait: the next
	// probe leaves as soon as the last is answered, lost or timed out.
	Interval time.Duration
	// Timeout is how long each probe waits for its reply before it is lost. Default 1s.
	Timeout time.Duration
	// Deadline ends the whole run this long after it started, whatever is outstanding; 0: none.
	// With a Count too, as in iputils ping, probes go on until Count replies came or the
	// deadline passed.
	Deadline time.Duration
	// Window caps the probes in flight (sent and not yet answered, lost or timed out). With an
	// Interval, a probe whose turn comes while Window are in flight waits for one to resolve;
	// with Interval 0, Window probes are kept in flight. 0 means no cap with an Interval, and
	// one probe in flight (stop-and-wait) without.
	Window int
	// Flood is ping -f: with Interval 0, the next probe also leaves FloodInterval after the
	// last when no answer came by then, so a lossy path still sees 100 probes a second.
	Flood bool
}

// FloodInterval is the longest a flood waits between two probes, as iputils ping -f.
const FloodInterval = 10 * time.Millisecond

// Result says when a run started (the first probe left) and ended.
type Result struct {
	Start, End time.Time
}
