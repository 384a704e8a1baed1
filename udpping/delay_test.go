package udpping

import (
	"net/netip"
	"testing"
	"time"
)

// TestDelayQueueCost checks that a reply costs what it holds: a 0-byte datagram its entry, a
// 40-byte one a 64-byte buffer, a 2 KB one a 4 KiB buffer, the largest 64 KiB.
func TestDelayQueueCost(t *testing.T) {
	for _, tt := range []struct{ n, buf int }{{0, 0}, {1, 64}, {40, 64}, {64, 64}, {65, 256}, {2048, 4096}, {MaxSize, 1 << 16}} {
		if got, want := replyCost(tt.n), tt.buf+entryCost; got != want {
			t.Errorf("replyCost(%d) = %d, want %d", tt.n, got, want)
		}
	}
	if entryCost < 100 {
		t.Errorf("entryCost = %d: an entry alone is larger", entryCost)
	}
}

// TestDelayQueueFair fills the queue from one client and checks the bound holds what is really
// held, that the flooder keeps only its share, and that newcomers always find room.
func TestDelayQueueFair(t *testing.T) {
	for _, fifo := range []bool{false, true} {
		t.Run(map[bool]string{false: "heap", true: "ring"}[fifo], func(t *testing.T) { testDelayQueueFair(t, fifo) })
	}
}

func testDelayQueueFair(t *testing.T, fifo bool) {
	q := newDelayQueue(nil, nil, fifo)
	q.bound = 1000 * replyCost(0)
	due := time.Now().Add(time.Hour)
	flood, polite := &ClientStats{}, &ClientStats{}
	to := netip.MustParseAddrPort("127.0.0.1:9")
	accepted := 0
	push := func(data []byte, st *ClientStats) bool {
		if !q.reserve(st, len(data)) {
			return false
		}
		q.push(due, to, data, st)
		return true
	}
	for push(nil, flood) {
		accepted++
	}
	// Alone, a client holds half the queue: the rest is room for others.
	if want := q.bound / 2 / replyCost(0); accepted != want {
		t.Errorf("a flooder alone queued %d 0-byte replies, want %d", accepted, want)
	}
	if q.bytes != accepted*replyCost(0) || q.held[flood] != q.bytes {
		t.Errorf("account %d (flooder %d), want %d", q.bytes, q.held[flood], accepted*replyCost(0))
	}
	for i := range 10 {
		if !push([]byte("ping 1 x"), polite) {
			t.Fatalf("polite reply %d refused beside a flooder", i)
		}
	}
	if push(nil, flood) {
		t.Error("the flooder queued more though over its share")
	}
	// Many clients at once (forged sources): the whole never passes the bound.
	for i := range 5000 {
		push(make([]byte, i%2000), &ClientStats{})
		if q.bytes > q.bound {
			t.Fatalf("after client %d the queue holds %d, over its bound %d", i, q.bytes, q.bound)
		}
	}
	// What is popped and released gives its room back.
	for q.len() > 0 {
		r := q.take()
		q.release(&r)
	}
	if q.bytes != 0 || len(q.held) != 0 {
		t.Errorf("empty queue: account %d, %d clients held", q.bytes, len(q.held))
	}
}

// TestReplyRing pushes and pops across the ring's growth and trim and checks FIFO order.
func TestReplyRing(t *testing.T) {
	var r replyRing
	next, want := uint64(1), uint64(1)
	for round := range 6 {
		for range 3000 * (round%3 + 1) {
			r.push(delayedReply{seq: next})
			next++
		}
		for r.n > 100*round {
			if got := r.pop().seq; got != want {
				t.Fatalf("pop = %d, want %d", got, want)
			}
			want++
		}
		r.trim()
	}
	if len(r.buf) > 4096 {
		t.Errorf("ring of %d holds %d after trims", len(r.buf), r.n)
	}
}
