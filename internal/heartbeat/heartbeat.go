// Package heartbeat is the server's side of the UDP heartbeat, the handout's optional exercise:
// clients send "heartbeat <seq> <timestamp>" at a steady rate and never wait for an answer; a
// Tracker follows each client's sequence numbers and reports, as Events, the heartbeats that went
// missing (by their exact numbers), came out of order or twice, the one-way delay the
// timestamps give, and a client that fell silent for longer than the timeout, or came back.
// It keeps no clock of its own: callers pass the time in, so that tests need not wait.
package heartbeat

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout is how long a client may stay silent before it is reported stopped.
const DefaultTimeout = 3 * time.Second

// maxClients bounds the table, so that forged addresses cannot grow it without end; heartbeats
// from further clients are not followed.
const maxClients = 4096

// maxGaps bounds the missing ranges a client keeps to recognise a reordered heartbeat; past it
// the oldest range is forgotten (still counted lost; one that arrives later is then counted a
// duplicate).
const maxGaps = 1024

// Kind says what an Event reports.
type Kind uint8

// The kinds of Event.
const (
	// Started: the first heartbeat of a client.
	Started Kind = iota + 1
	// Beat: a heartbeat in order.
	Beat
	// Missing: heartbeats Missing were skipped over; they are counted lost until they come.
	Missing
	// Reordered: heartbeat Seq, counted missing, came after a later one.
	Reordered
	// Duplicate: heartbeat Seq came again.
	Duplicate
	// Stopped: no heartbeat for Silence, the timeout or more.
	Stopped
	// Back: a stopped client sends again, after Silence; Prev is the stopped client it takes the
	// place of when it came back from another port (a client restarted), else Client.
	Back
)

// A Range is the heartbeats From to To, both included.
type Range struct{ From, To int }

func (r Range) String() string {
	if r.From == r.To {
		return strconv.Itoa(r.From)
	}
	return strconv.Itoa(r.From) + "-" + strconv.Itoa(r.To)
}

// An Event is one thing the tracker noticed.
type Event struct {
	Kind   Kind
	Client netip.AddrPort
	// Seq is the heartbeat's, for every kind but Missing and Stopped (Stopped: the last one).
	Seq int
	// At is when it was noticed: the heartbeat's arrival, or the check that found the silence.
	At time.Time
	// Delay is the heartbeat's one-way delay: its arrival on the server's clock minus the time
	// written in it on the client's. It holds the offset between the two clocks; its variation
	// does not.
	Delay time.Duration
	// Missing lists the heartbeats skipped, in order, for Missing.
	Missing []Range
	// Silence is how long the client was silent, for Stopped and Back.
	Silence time.Duration
	// Timeout is the tracker's, for Stopped: the silence that makes a client stopped.
	Timeout time.Duration
	// Prev is, for Back, the stopped client this one takes the place of.
	Prev netip.AddrPort
	// PrevSeq is Prev's last heartbeat, for Back.
	PrevSeq int
}

// String is the event as the server prints it.
func (e Event) String() string {
	c := e.Client.String()
	switch e.Kind {
	case Started:
		return fmt.Sprintf("heartbeat client %s started (heartbeat %d, one-way delay %s ms)", c, e.Seq, ms(e.Delay))
	case Beat:
		return fmt.Sprintf("heartbeat %d from %s: one-way delay %s ms", e.Seq, c, ms(e.Delay))
	case Missing:
		n := 0
		parts := make([]string, len(e.Missing))
		for i, r := range e.Missing {
			parts[i] = r.String()
			n += r.To - r.From + 1
		}
		return fmt.Sprintf("heartbeat client %s: missing %s (%d lost)", c, strings.Join(parts, ", "), n)
	case Reordered:
		return fmt.Sprintf("heartbeat %d from %s: came late, after a later one (reordered, no longer lost)", e.Seq, c)
	case Duplicate:
		return fmt.Sprintf("heartbeat %d from %s: duplicate", e.Seq, c)
	case Stopped:
		return fmt.Sprintf("client %s stopped (no heartbeat for %s; last was heartbeat %d)", c, seconds(e.Timeout), e.Seq)
	case Back:
		if e.Prev != e.Client {
			return fmt.Sprintf("client %s came back after %s as %s (heartbeat %d; it had stopped after heartbeat %d)",
				e.Prev, seconds(e.Silence), c, e.Seq, e.PrevSeq)
		}
		return fmt.Sprintf("client %s came back after %s (heartbeat %d)", c, seconds(e.Silence), e.Seq)
	}
	return "unknown heartbeat event"
}

// ms prints a duration in milliseconds with three decimals, as ping does.
func ms(d time.Duration) string {
	us := d.Microseconds()
	sign := ""
	if us < 0 {
		sign, us = "-", -us
	}
	return fmt.Sprintf("%s%d.%03d", sign, us/1000, us%1000)
}

// seconds prints a silence: "3 s", "7.2 s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', -1, 64) + " s"
}

// ClientStats is what the tracker knows of one client.
type ClientStats struct {
	Addr netip.AddrPort
	// Received counts heartbeats that came (duplicates included); Lost those skipped and not
	// come since; Reordered those that came after a later one; Duplicates those that came twice.
	Received, Lost, Reordered, Duplicates int
	// Last is the highest heartbeat received; LastAt when the latest heartbeat came.
	Last   int
	LastAt time.Time
	// Stopped is whether the client is silent past the timeout now.
	Stopped bool
	// MinDelay, AvgDelay and MaxDelay are the one-way delays (clock offset included);
	// Variation is the mean difference between consecutive heartbeats' delays, which the clock
	// offset does not touch. Zero before two heartbeats.
	MinDelay, AvgDelay, MaxDelay, Variation time.Duration
}

// A Tracker follows the heartbeats of every client. Safe for concurrent use.
type Tracker struct {
	timeout time.Duration

	mu      sync.Mutex
	clients map[netip.AddrPort]*client
	order   []*client
}

type client struct {
	addr                            netip.AddrPort
	hi                              int
	lastAt                          time.Time
	stopped                         bool
	replaced                        bool // came back on another port: not matched again
	gaps                            []Range
	received, lost, reordered, dups int

	delays             int
	sumDelay, sumVar   time.Duration
	minDelay, maxDelay time.Duration
	lastDelay          time.Duration
}

// New returns a tracker that reports a client stopped after timeout without a heartbeat; 0
// means DefaultTimeout.
func New(timeout time.Duration) *Tracker {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Tracker{timeout: timeout, clients: make(map[netip.AddrPort]*client)}
}

// Timeout returns the silence after which a client is reported stopped.
func (t *Tracker) Timeout() time.Duration { return t.timeout }

// Beat records heartbeat seq from the client at from, written at sent and read at at, and
// returns what it shows, in order.
func (t *Tracker) Beat(from netip.AddrPort, seq int, sent, at time.Time) []Event {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	t.mu.Lock()
	defer t.mu.Unlock()
	delay := at.Sub(sent)
	c := t.clients[from]
	if c == nil {
		if len(t.clients) >= maxClients {
			return nil
		}
		c = &client{addr: from, hi: seq, lastAt: at, received: 1}
		c.delay(delay)
		t.clients[from] = c
		t.order = append(t.order, c)
		var evs []Event
		if prev := t.stoppedFrom(from.Addr(), c); prev != nil {
			prev.replaced = true
			evs = append(evs, Event{Kind: Back, Client: from, Seq: seq, At: at, Delay: delay,
				Silence: at.Sub(prev.lastAt), Prev: prev.addr, PrevSeq: prev.hi})
		} else {
			evs = append(evs, Event{Kind: Started, Client: from, Seq: seq, At: at, Delay: delay})
		}
		// Heartbeats count from 1: those before the first one seen went missing (or were sent
		// before the server listened, which the server cannot tell apart).
		if seq > 1 {
			evs = append(evs, c.skip(Range{1, seq - 1}, at))
		}
		return evs
	}
	var evs []Event
	back := c.stopped
	if back {
		c.stopped = false
		evs = append(evs, Event{Kind: Back, Client: from, Seq: seq, At: at, Delay: delay,
			Silence: at.Sub(c.lastAt), Prev: from, PrevSeq: c.hi})
	}
	c.lastAt = at
	c.received++
	c.delay(delay)
	switch {
	case seq > c.hi:
		if seq > c.hi+1 {
			evs = append(evs, c.skip(Range{c.hi + 1, seq - 1}, at))
		}
		c.hi = seq
		if !back {
			evs = append(evs, Event{Kind: Beat, Client: from, Seq: seq, At: at, Delay: delay})
		}
	case c.fill(seq):
		c.lost--
		c.reordered++
		evs = append(evs, Event{Kind: Reordered, Client: from, Seq: seq, At: at, Delay: delay})
	default:
		c.dups++
		evs = append(evs, Event{Kind: Duplicate, Client: from, Seq: seq, At: at, Delay: delay})
	}
	return evs
}

// skip counts the heartbeats of gap missing and returns the event that says so.
func (c *client) skip(gap Range, at time.Time) Event {
	c.lost += gap.To - gap.From + 1
	c.gaps = append(c.gaps, gap)
	if len(c.gaps) > maxGaps {
		c.gaps = c.gaps[1:]
	}
	return Event{Kind: Missing, Client: c.addr, At: at, Missing: []Range{gap}}
}

// stoppedFrom returns the client of addr, other than c, that stopped most recently and was not
// yet replaced: the one a client restarted on another port takes the place of.
func (t *Tracker) stoppedFrom(addr netip.Addr, c *client) *client {
	var best *client
	for _, o := range t.order {
		if o != c && o.addr.Addr() == addr && o.stopped && !o.replaced &&
			(best == nil || o.lastAt.After(best.lastAt)) {
			best = o
		}
	}
	return best
}

// fill takes seq out of the client's missing ranges and reports whether it was in one.
func (c *client) fill(seq int) bool {
	for i, g := range c.gaps {
		if seq < g.From || seq > g.To {
			continue
		}
		switch {
		case g.From == g.To:
			c.gaps = append(c.gaps[:i], c.gaps[i+1:]...)
		case seq == g.From:
			c.gaps[i].From++
		case seq == g.To:
			c.gaps[i].To--
		default:
			c.gaps = append(c.gaps[:i+1], c.gaps[i:]...)
			c.gaps[i].To = seq - 1
			c.gaps[i+1].From = seq + 1
		}
		return true
	}
	return false
}

func (c *client) delay(d time.Duration) {
	if c.delays == 0 {
		c.minDelay, c.maxDelay = d, d
	} else {
		diff := d - c.lastDelay
		if diff < 0 {
			diff = -diff
		}
		c.sumVar += diff
	}
	c.delays++
	c.sumDelay += d
	c.minDelay = min(c.minDelay, d)
	c.maxDelay = max(c.maxDelay, d)
	c.lastDelay = d
}

// Check reports the clients silent for the timeout or longer at now, once each.
func (t *Tracker) Check(now time.Time) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var evs []Event
	for _, c := range t.order {
		if silence := now.Sub(c.lastAt); !c.stopped && !c.replaced && silence >= t.timeout {
			c.stopped = true
			evs = append(evs, Event{Kind: Stopped, Client: c.addr, Seq: c.hi, At: now, Silence: silence, Timeout: t.timeout})
		}
	}
	return evs
}

// Stats returns what the tracker knows of each client, in the order they first came.
func (t *Tracker) Stats() []ClientStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ClientStats, len(t.order))
	for i, c := range t.order {
		s := ClientStats{
			Addr: c.addr, Received: c.received, Lost: c.lost, Reordered: c.reordered,
			Duplicates: c.dups, Last: c.hi, LastAt: c.lastAt, Stopped: c.stopped || c.replaced,
			MinDelay: c.minDelay, MaxDelay: c.maxDelay,
		}
		if c.delays > 0 {
			s.AvgDelay = c.sumDelay / time.Duration(c.delays)
		}
		if c.delays > 1 {
			s.Variation = c.sumVar / time.Duration(c.delays-1)
		}
		out[i] = s
	}
	return out
}
