// Package impair is the impairment model pinglab's servers (and its relay) share: for each
// message, drawn from one seeded generator, whether it is dropped, answered with an error, or
// passed on, and how long it is held back. A seeded run is reproducible: the same seed and the
// same messages in the same order give the same decisions.
package impair

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"
)

// MaxClients bounds a server's per-client table, so that a flood from forged addresses cannot
// grow it without end; further clients are counted together under the zero address.
const MaxClients = 4096

// ErrServing is what a second call to a server's Serve wraps: a server serves once.
var ErrServing = errors.New("server is already serving")

// The errors of Validate, for callers that branch on them.
var (
	ErrBadDrop  = errors.New("drop must be between 0 and 1")
	ErrBadError = errors.New("ICMP error share must be between 0 and 1")
	ErrBadDelay = errors.New("delay and jitter must not be negative")
)

// Config is what a Model does to messages. The zero value passes every message at once.
type Config struct {
	// Drop is the share of messages dropped at random, 0 to 1.
	Drop float64
	// Error is the share of messages answered with an error instead, 0 to 1, drawn among
	// those not dropped: Drop 0.2 and Error 0.5 drop 20%, answer 40% (half the other 80%)
	// with an error and pass 40%.
	Error float64
	// Delay holds each passed message back this long; Jitter varies it uniformly by up to
	// ± Jitter (never below 0), as netem's delay does.
	Delay, Jitter time.Duration
	// Seed seeds the generator; 0 picks one at random (Model.Seed tells which).
	Seed uint64
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	switch {
	case !(c.Drop >= 0 && c.Drop <= 1):
		return fmt.Errorf("%w, not %g", ErrBadDrop, c.Drop)
	case !(c.Error >= 0 && c.Error <= 1):
		return fmt.Errorf("%w, not %g", ErrBadError, c.Error)
	case c.Delay < 0 || c.Jitter < 0:
		return ErrBadDelay
	}
	return nil
}

// Delays reports whether passed messages are held back at all.
func (c Config) Delays() bool { return c.Delay > 0 || c.Jitter > 0 }

// A Verdict is what becomes of one message.
type Verdict uint8

// The verdicts.
const (
	// Pass: the message goes on (echoed, relayed), after Decision.Delay.
	Pass Verdict = iota
	// Drop: the message is dropped.
	Drop
	// Error: the message is answered with an error instead.
	Error
)

// A Decision is the verdict on one message and, for Pass, how long it is held back.
type Decision struct {
	Verdict Verdict
	Delay   time.Duration
}

// A Model decides, message by message, what becomes of each. It is safe for concurrent use;
// decisions are drawn in the order Decide is called.
type Model struct {
	cfg  Config
	seed uint64
	// random: some decision draws on rng; when false, Decide takes no lock.
	random bool
	mu     sync.Mutex
	rng    *rand.Rand
}

// New returns the Model of cfg, or the error of Validate.
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := PickSeed(cfg.Seed)
	return &Model{
		cfg:    cfg,
		seed:   seed,
		random: cfg.Drop > 0 || cfg.Error > 0 || cfg.Jitter > 0,
		rng:    NewRand(seed),
	}, nil
}

// PickSeed returns seed, or a random non-zero seed for 0.
func PickSeed(seed uint64) uint64 {
	for seed == 0 {
		seed = rand.Uint64()
	}
	return seed
}

// NewRand returns the generator pinglab seeds its impairments with: PCG, its stream derived
// from the seed, so that one number (what --seed takes and the servers print) is the whole state.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Seed returns the model's seed, the one picked when Config.Seed was 0.
func (m *Model) Seed() uint64 { return m.seed }

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Decide draws the fate of the next message: drop (when Drop > 0); if not dropped, error (when
// Error > 0); if neither, the jitter (when Jitter > 0). A draw is taken only where its share or
// jitter is set, so that adding an impairment does not shift the others' sequence.
func (m *Model) Decide() Decision {
	if !m.random {
		return Decision{Delay: m.cfg.Delay}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.Drop > 0 && m.rng.Float64() < m.cfg.Drop {
		return Decision{Verdict: Drop}
	}
	if m.cfg.Error > 0 && m.rng.Float64() < m.cfg.Error {
		return Decision{Verdict: Error}
	}
	return Decision{Delay: m.delay()}
}

// Delay draws a delay alone, for a message drawn for an error that cannot be answered with one
// and passes instead: the draws then follow as if Decide had said Pass.
func (m *Model) Delay() time.Duration {
	if m.cfg.Jitter == 0 {
		return m.cfg.Delay
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.delay()
}

// delay draws the jitter; m.mu must be held.
func (m *Model) delay() time.Duration {
	d := m.cfg.Delay
	if j := m.cfg.Jitter; j > 0 {
		d += time.Duration(m.rng.Int64N(int64(2*j)+1)) - j
	}
	return max(d, 0)
}

// ListenError words a failure to bind addr: the two common causes say what to do about them,
// and the cause stays in the chain for errors.Is.
func ListenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("listen on %s: %w (another server runs there; pick another port)", addr, syscall.EADDRINUSE)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("listen on %s: %w (ports below 1024 need root or CAP_NET_BIND_SERVICE)", addr, syscall.EACCES)
	}
	return fmt.Errorf("listen on %s: %w", addr, err)
}
