// Package proxy is a user-space impairment relay: a network in the middle for UDP and TCP,
// IPv4 and IPv6, on every system Go runs on and without privileges. It listens on one
// address, relays each client to one upstream address, and on the way does to the traffic
// what Linux's netem qdisc does to packets: loss (Bernoulli with correlation, or a
// Gilbert-Elliott burst model), delay with jitter in netem's distributions, duplication,
// reordering, corruption and a rate limit with a bounded queue. Each direction has its own
// netem, as if one sat on each side of a link, so that 20% loss each way loses 36% of round
// trips. A TCP stream cannot lose, duplicate or reorder bytes; it gets delay, rate, stalls and
// resets instead.
//
// The relay keeps per-flow counts of what it forwarded, dropped, duplicated and delayed, and
// bounds its memory: flows, their buffers and the bytes a queue holds.
package proxy

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pinglab/pinglab/lossy"
)

var (
	errShare     = errors.New("not a share between 0% and 100% (want 20% or 0.2)")
	errGemodel   = errors.New("want P[,R[,1-H[,1-K]]] as netem's loss gemodel takes them")
	errProto     = errors.New("protocol must be udp or tcp")
	errJitter    = errors.New("jitter needs a delay at least as large (netem's uniform jitter spans delay ± jitter)")
	errDelay     = errors.New("out of range (0 to 60s)")
	errDist      = errors.New("distribution must be uniform, normal, pareto or paretonormal")
	errReorder   = errors.New("reorder needs a delay (netem reorders by sending some packets without it)")
	errLossBoth  = errors.New("--loss and --loss-burst exclude each other")
	errStreamOpt = errors.New("a TCP stream loses, duplicates, reorders and corrupts nothing (use --reset or --stall)")
	errDgramOpt  = errors.New("resets and stalls are for TCP streams")
	errStallFor  = errors.New("a stall needs a duration (--stall-for)")
	errNoAddr    = errors.New("missing address")
	errLimit     = errors.New("must be positive")
)

// An Impairment is one direction's netem. Shares are fractions, 0..1.
type Impairment struct {
	// Loss is the share of packets lost; LossCorr correlates each loss draw with the last, as
	// netem's "loss P C".
	Loss, LossCorr float64
	// LossBurst, when set, replaces Loss with the Gilbert-Elliott model.
	LossBurst *GilbertElliott
	// Delay holds every packet back; Jitter varies it by the Distribution (uniform: ± Jitter;
	// the others: Jitter is their scale, as netem's "delay D J distribution X"); DelayCorr
	// correlates each draw with the last.
	Delay, Jitter time.Duration
	DelayCorr     float64
	Distribution  Distribution
	// Duplicate is the share of packets sent twice; the copy meets loss and delay on its own.
	Duplicate, DuplicateCorr float64
	// Reorder is the share of packets sent at once, ahead of the delayed ones; after each such
	// packet the next ReorderGap-1 are delayed (netem's "reorder P C gap N"; 0 is gap 1).
	Reorder, ReorderCorr float64
	ReorderGap           int
	// Corrupt is the share of datagrams with one random bit of their payload flipped.
	Corrupt, CorruptCorr float64
	// Rate limits the direction to this many bytes per second (0: no limit), counting each
	// datagram's payload plus Overhead bytes (netem's packet overhead: 28 for IPv4 and UDP
	// headers); RateBurst bytes may go at once after a pause (0: none, as netem).
	Rate      uint64
	Overhead  int
	RateBurst int
	// Reset is, for TCP, the share of chunks (one read from the sending side) after a random
	// prefix of which the connection is reset on both sides (an RST, through SO_LINGER 0).
	Reset float64
	// Stall is, for TCP, the share of chunks before which the direction stops forwarding for
	// StallFor; what comes meanwhile queues behind it, and then the sender waits.
	Stall    float64
	StallFor time.Duration
}

// zero reports whether im changes nothing, so that the relay forwards without a decision.
func (im Impairment) zero() bool {
	return im.Loss == 0 && im.LossBurst == nil && im.Delay == 0 && im.Jitter == 0 && im.Duplicate == 0 &&
		im.Reorder == 0 && im.Corrupt == 0 && im.Rate == 0 && im.Reset == 0 && im.Stall == 0
}

// Validate reports the first thing wrong with im for the protocol ("udp" or "tcp").
func (im Impairment) Validate(proto string) error {
	for _, s := range []struct {
		name string
		v    float64
	}{
		{"loss", im.Loss}, {"loss correlation", im.LossCorr}, {"delay correlation", im.DelayCorr},
		{"duplicate", im.Duplicate}, {"duplicate correlation", im.DuplicateCorr},
		{"reorder", im.Reorder}, {"reorder correlation", im.ReorderCorr},
		{"corrupt", im.Corrupt}, {"corrupt correlation", im.CorruptCorr},
		{"reset", im.Reset}, {"stall", im.Stall},
	} {
		if math.IsNaN(s.v) || s.v < 0 || s.v > 1 {
			return fmt.Errorf("%s %v: %w", s.name, s.v, errShare)
		}
	}
	if g := im.LossBurst; g != nil {
		for _, v := range []float64{g.P, g.R, g.LossBad, g.LossGood} {
			if math.IsNaN(v) || v < 0 || v > 1 {
				return fmt.Errorf("loss burst %v: %w", v, errShare)
			}
		}
		if im.Loss > 0 {
			return errLossBoth
		}
	}
	if im.Delay < 0 || im.Delay > time.Minute {
		return fmt.Errorf("delay %v: %w", im.Delay, errDelay)
	}
	if im.Jitter < 0 || im.Jitter > time.Minute {
		return fmt.Errorf("jitter %v: %w", im.Jitter, errDelay)
	}
	switch im.Distribution {
	case "", Uniform:
		if im.Jitter > im.Delay {
			return fmt.Errorf("jitter %v with delay %v: %w", im.Jitter, im.Delay, errJitter)
		}
	case Normal, Pareto, ParetoNormal:
	default:
		return fmt.Errorf("%q: %w", im.Distribution, errDist)
	}
	if im.Reorder > 0 && im.Delay == 0 {
		return errReorder
	}
	if im.ReorderGap < 0 || im.Overhead < 0 || im.RateBurst < 0 {
		return fmt.Errorf("reorder gap, overhead and burst: %w", errLimit)
	}
	if im.StallFor < 0 || im.StallFor > time.Hour {
		return fmt.Errorf("stall for %v: %w", im.StallFor, errDelay)
	}
	switch proto {
	case "udp":
		if im.Reset > 0 || im.Stall > 0 {
			return errDgramOpt
		}
	case "tcp":
		if im.Loss > 0 || im.LossBurst != nil || im.Duplicate > 0 || im.Reorder > 0 || im.Corrupt > 0 {
			return errStreamOpt
		}
		if im.Stall > 0 && im.StallFor == 0 {
			return errStallFor
		}
	default:
		return fmt.Errorf("%q: %w", proto, errProto)
	}
	return nil
}

// Words says in plain words what im does, "" when nothing.
func (im Impairment) Words() string {
	var w []string
	if im.Loss > 0 {
		s := "loss " + lossy.Percent(im.Loss)
		if im.LossCorr > 0 {
			s += " (correlation " + lossy.Percent(im.LossCorr) + ")"
		}
		w = append(w, s)
	}
	if g := im.LossBurst; g != nil {
		w = append(w, fmt.Sprintf("loss gemodel p %s r %s 1-h %s 1-k %s (mean %s)", lossy.Percent(g.P), lossy.Percent(g.R), lossy.Percent(g.LossBad), lossy.Percent(g.LossGood), lossy.Percent(g.MeanLoss())))
	}
	if im.Delay > 0 || im.Jitter > 0 {
		s := "delay " + im.Delay.String()
		if im.Jitter > 0 {
			d := im.Distribution
			if d == "" {
				d = Uniform
			}
			s += " jitter " + im.Jitter.String() + " " + string(d)
		}
		w = append(w, s)
	}
	if im.Duplicate > 0 {
		w = append(w, "duplicate "+lossy.Percent(im.Duplicate))
	}
	if im.Reorder > 0 {
		s := "reorder " + lossy.Percent(im.Reorder)
		if im.ReorderGap > 1 {
			s += fmt.Sprintf(" gap %d", im.ReorderGap)
		}
		w = append(w, s)
	}
	if im.Corrupt > 0 {
		w = append(w, "corrupt "+lossy.Percent(im.Corrupt))
	}
	if im.Rate > 0 {
		w = append(w, "rate "+lossy.FormatRate(im.Rate))
	}
	if im.Reset > 0 {
		w = append(w, "reset "+lossy.Percent(im.Reset))
	}
	if im.Stall > 0 {
		w = append(w, "stall "+lossy.Percent(im.Stall)+" for "+im.StallFor.String())
	}
	return strings.Join(w, ", ")
}

// Defaults of the bounds in Config.
const (
	DefaultLimit    = 1 << 20
	DefaultMaxFlows = 10000
	DefaultIdle     = 60 * time.Second
	DefaultMaxSize  = 4096
)

// Config says what a Proxy relays and how it impairs it.
type Config struct {
	// Proto is "udp" (the default) or "tcp".
	Proto string
	// Listen is the address clients reach ("127.0.0.1:12001", "[::1]:12001", ":12001").
	Listen string
	// To is the server's address, resolved once when the proxy starts.
	To string
	// Up impairs what clients send to the server; Down what the server sends back.
	Up, Down Impairment
	// Seed makes every random choice reproducible: the same seed and the same packets in the
	// same order give the same decisions. 0 picks one at random; Proxy.Seed tells which.
	Seed uint64
	// Limit is, per direction, the bytes the queues may hold (delayed or rate-limited data,
	// each packet counted at its buffer's size plus its bookkeeping); past it a datagram is
	// dropped and a TCP sender waits. 0 is DefaultLimit.
	Limit int
	// MaxFlows bounds the UDP flows (client addresses) and TCP connections at once; a new one
	// past it is refused (datagrams dropped, connections reset). 0 is DefaultMaxFlows.
	MaxFlows int
	// Idle is how long a UDP flow lives without traffic either way. 0 is DefaultIdle.
	Idle time.Duration
	// MaxSize is the largest datagram relayed; larger ones are dropped and counted, never cut.
	// Each UDP flow holds a buffer of this size. 0 is DefaultMaxSize.
	MaxSize int
}

func (c *Config) fill() error {
	if c.Proto == "" {
		c.Proto = "udp"
	}
	if c.Proto != "udp" && c.Proto != "tcp" {
		return fmt.Errorf("proxy: %q: %w", c.Proto, errProto)
	}
	if c.Listen == "" || c.To == "" {
		return fmt.Errorf("proxy: listen %q, to %q: %w", c.Listen, c.To, errNoAddr)
	}
	if err := c.Up.Validate(c.Proto); err != nil {
		return fmt.Errorf("proxy: up: %w", err)
	}
	if err := c.Down.Validate(c.Proto); err != nil {
		return fmt.Errorf("proxy: down: %w", err)
	}
	if c.Limit < 0 || c.MaxFlows < 0 || c.Idle < 0 || c.MaxSize < 0 || c.MaxSize > 65535 {
		return fmt.Errorf("proxy: limit, max flows, idle and max size: %w", errLimit)
	}
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	if c.MaxFlows == 0 {
		c.MaxFlows = DefaultMaxFlows
	}
	if c.Idle == 0 {
		c.Idle = DefaultIdle
	}
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	return nil
}

// Validate reports the first thing wrong with c, without opening anything.
func (c Config) Validate() error { return c.fill() }

// Counts is what happened to one direction of a flow. Packets are datagrams for UDP and
// chunks (one read) for TCP.
type Counts struct {
	Packets    uint64 // received from the sending side
	Forwarded  uint64 // sent on, duplicates included
	Bytes      uint64 // bytes sent on
	Lost       uint64 // dropped by the loss model
	QueueDrops uint64 // dropped because the queue was full
	Oversize   uint64 // dropped for being larger than MaxSize
	Duplicated uint64
	Corrupted  uint64
	Reordered  uint64
	Delayed    uint64 // held back (delay, jitter, rate or stall)
	Stalled    uint64
	Resets     uint64
	Errors     uint64 // the send failed (the server's port closed, say)
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Packets += o.Packets
	c.Forwarded += o.Forwarded
	c.Bytes += o.Bytes
	c.Lost += o.Lost
	c.QueueDrops += o.QueueDrops
	c.Oversize += o.Oversize
	c.Duplicated += o.Duplicated
	c.Corrupted += o.Corrupted
	c.Reordered += o.Reordered
	c.Delayed += o.Delayed
	c.Stalled += o.Stalled
	c.Resets += o.Resets
	c.Errors += o.Errors
}

// counters is Counts updated by several goroutines at once.
type counters struct {
	packets, forwarded, bytes, lost, queueDrops, oversize      atomic.Uint64
	duplicated, corrupted, reordered, delayed, stalled, resets atomic.Uint64
	errors                                                     atomic.Uint64
}

func (c *counters) snapshot() Counts {
	return Counts{
		Packets: c.packets.Load(), Forwarded: c.forwarded.Load(), Bytes: c.bytes.Load(),
		Lost: c.lost.Load(), QueueDrops: c.queueDrops.Load(), Oversize: c.oversize.Load(),
		Duplicated: c.duplicated.Load(), Corrupted: c.corrupted.Load(), Reordered: c.reordered.Load(),
		Delayed: c.delayed.Load(), Stalled: c.stalled.Load(), Resets: c.resets.Load(), Errors: c.errors.Load(),
	}
}

// FlowStats is one flow's counts: a UDP client address, or one TCP connection.
type FlowStats struct {
	// Client is the client's address; the zero address stands for the flows merged once the
	// table of finished flows was full.
	Client netip.AddrPort
	// Flows is how many flows the row stands for (1 but for the merged row).
	Flows    int
	Start    time.Time
	Active   bool
	Up, Down Counts
}

// maxRetired bounds the finished flows kept one by one; older ones are merged into one row.
const maxRetired = 1024
