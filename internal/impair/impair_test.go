package impair

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want error
	}{
		{Config{}, nil},
		{Config{Drop: 1, Error: 1, Delay: time.Second, Jitter: time.Second}, nil},
		{Config{Drop: 1.5}, ErrBadDrop},
		{Config{Drop: -0.1}, ErrBadDrop},
		{Config{Error: 2}, ErrBadError},
		{Config{Delay: -1}, ErrBadDelay},
		{Config{Jitter: -1}, ErrBadDelay},
	} {
		if _, err := New(tt.cfg); !errors.Is(err, tt.want) {
			t.Errorf("New(%+v) = %v, want %v", tt.cfg, err, tt.want)
		}
	}
}

// TestDecideShares draws many decisions and checks each share within a few standard
// deviations, and that the delay stays within Delay ± Jitter and never below 0.
func TestDecideShares(t *testing.T) {
	m, err := New(Config{Drop: 0.2, Error: 0.5, Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100000
	count := map[Verdict]int{}
	zero := 0
	for range n {
		d := m.Decide()
		count[d.Verdict]++
		if d.Verdict != Pass && d.Delay != 0 {
			t.Fatalf("%+v: only a passed message is delayed", d)
		}
		if d.Verdict == Pass {
			if d.Delay < 0 || d.Delay > 30*time.Millisecond {
				t.Fatalf("delay %v outside [0, 30ms]", d.Delay)
			}
			if d.Delay == 0 {
				zero++
			}
		}
	}
	for v, want := range map[Verdict]float64{Drop: 0.2, Error: 0.4, Pass: 0.4} {
		if got := float64(count[v]) / n; got < want-0.01 || got > want+0.01 {
			t.Errorf("verdict %d: share %.3f, want %.2f", v, got, want)
		}
	}
	// A quarter of the jitter's range is below zero and clamps to 0.
	if got := float64(zero) / float64(count[Pass]); got < 0.23 || got > 0.27 {
		t.Errorf("share of 0 delays %.3f, want about 0.25", got)
	}
}

// TestSeedReproduces checks that one seed gives one sequence, and that 0 picks a seed that
// reproduces the run too.
func TestSeedReproduces(t *testing.T) {
	cfg := Config{Drop: 0.3, Error: 0.3, Jitter: time.Millisecond}
	a, _ := New(cfg)
	if a.Seed() == 0 {
		t.Fatal("Seed() = 0 for a picked seed")
	}
	cfg.Seed = a.Seed()
	b, _ := New(cfg)
	var da, db []Decision
	for range 1000 {
		da, db = append(da, a.Decide()), append(db, b.Decide())
	}
	if diff := cmp.Diff(da, db); diff != "" {
		t.Errorf("same seed, different decisions (-first +second):\n%s", diff)
	}
}

// TestDecideWithoutRandomness checks that a model without shares or jitter passes everything
// with the fixed delay.
func TestDecideWithoutRandomness(t *testing.T) {
	m, _ := New(Config{Delay: time.Second})
	if got, want := m.Decide(), (Decision{Delay: time.Second}); got != want {
		t.Errorf("Decide() = %+v, want %+v", got, want)
	}
	if got := m.Delay(); got != time.Second {
		t.Errorf("Delay() = %v, want 1s", got)
	}
}

func TestListenError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{syscall.EADDRINUSE, "listen on :1: address already in use (another server runs there; pick another port)"},
		{syscall.EPERM, "listen on :1: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"},
		{errors.New("odd"), "listen on :1: odd"},
	} {
		err := ListenError(":1", tt.err)
		if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
			t.Errorf("ListenError(%v) (-want +got):\n%s", tt.err, diff)
		}
		if !errors.Is(err, tt.err) && !errors.Is(tt.err, syscall.EPERM) {
			t.Errorf("ListenError(%v) does not wrap it", tt.err)
		}
	}
}
