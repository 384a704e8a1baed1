package proxy

import (
	"container/heap"
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// heldOverhead is what a held packet costs beyond its buffer: its queue entry and slice header,
// so that a flood of empty datagrams still fills the queue.
const heldOverhead = 96

// budget bounds the bytes one direction's queues hold.
type budget struct {
	mu      sync.Mutex
	used    int
	limit   int
	changed chan struct{} // closed and replaced when bytes are given back
}

func newBudget(limit int) *budget {
	return &budget{limit: limit, changed: make(chan struct{})}
}

// tryTake takes n bytes if they fit.
func (b *budget) tryTake(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// take waits until n bytes fit (or nothing is held, so that one chunk larger than the whole
// limit still passes) and takes them.
func (b *budget) take(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.limit || b.used == 0 {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) give(n int) {
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

func (b *budget) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// direction is one way through the proxy: its netem and the bytes its queues hold.
type direction struct {
	mu     sync.Mutex // guards link and cost
	link   *link
	cost   int // of the packet being decided, for fits
	fitsFn func(bool) bool
	zero   bool
	budget *budget
	sched  *scheduler // UDP only
}

func newDirection(imp Impairment, seed uint64, limit int) *direction {
	d := &direction{link: newLink(imp, seed), zero: imp.zero(), budget: newBudget(limit)}
	d.fitsFn = d.fits
	return d
}

// fits takes the budget for a copy that will be held.
func (d *direction) fits(held bool) bool {
	return !held || d.budget.tryTake(d.cost)
}

// An item is a datagram waiting in a scheduler.
type item struct {
	due  time.Time
	seq  uint64
	data []byte
	cost int
	f    *flow
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if c := h[i].due.Compare(h[j].due); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}

// A scheduler sends one direction's held datagrams when they are due, in order of due time
// and, among equals, of arrival: netem's tfifo.
type scheduler struct {
	mu   sync.Mutex
	h    itemHeap
	seq  uint64
	wake chan struct{}
	send func(f *flow, data []byte)
	b    *budget
}

func newScheduler(b *budget, send func(*flow, []byte)) *scheduler {
	return &scheduler{wake: make(chan struct{}, 1), send: send, b: b}
}

func (s *scheduler) push(it *item) {
	s.mu.Lock()
	s.seq++
	it.seq = s.seq
	heap.Push(&s.h, it)
	first := s.h[0] == it
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// run sends datagrams as they fall due until ctx is done; what is left is dropped.
func (s *scheduler) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []*item
	for {
		s.mu.Lock()
		now := time.Now()
		batch = batch[:0]
		for len(s.h) > 0 && !s.h[0].due.After(now) {
			batch = append(batch, heap.Pop(&s.h).(*item))
		}
		var next time.Duration = time.Hour
		if len(s.h) > 0 {
			next = s.h[0].due.Sub(now)
		}
		s.mu.Unlock()
		for i, it := range batch {
			s.send(it.f, it.data)
			s.b.give(it.cost)
			batch[i] = nil
		}
		if len(batch) > 0 {
			continue
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, it := range s.h {
				s.b.give(it.cost)
			}
			s.h = nil
			s.mu.Unlock()
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// A flow is one UDP client address, or one TCP connection.
type flow struct {
	client   netip.AddrPort
	start    time.Time
	last     atomic.Int64 // unix nanoseconds of the last packet either way
	up, down counters
	conn     *net.UDPConn // UDP: the upstream socket, one per client
	closed   atomic.Bool
}

func (f *flow) touch(now time.Time) { f.last.Store(now.UnixNano()) }

func (f *flow) stats(active bool) FlowStats {
	return FlowStats{Client: f.client, Flows: 1, Start: f.start, Active: active, Up: f.up.snapshot(), Down: f.down.snapshot()}
}

// table keeps the flows for Proxy.Flows: the live ones and those that ended; and, for
// Proxy.Clients, every ended flow's counts summed per client address.
type table struct {
	mu      sync.Mutex
	live    map[*flow]struct{}
	retired []FlowStats
	merged  FlowStats // the finished flows past maxRetired
	refused atomic.Uint64
	// byIP indexes ips by client address, in the order addresses came; an address past
	// maxClients is summed in other. A flow's address is placed when the flow starts, so
	// that its counts stay in one row for its whole life.
	byIP  map[netip.Addr]int
	ips   []FlowStats
	other FlowStats
}

// maxClients bounds the client addresses Proxy.Clients keeps apart.
const maxClients = 1024

func (t *table) add(f *flow) {
	t.mu.Lock()
	t.live[f] = struct{}{}
	a := f.client.Addr().Unmap()
	if _, ok := t.byIP[a]; !ok && len(t.ips) < maxClients {
		t.byIP[a] = len(t.ips)
		t.ips = append(t.ips, FlowStats{Client: netip.AddrPortFrom(a, 0), Start: f.start})
	}
	t.mu.Unlock()
}

// ipRow is the row of f's address in ips, or other; t.mu held.
func (t *table) ipRow(f *flow) *FlowStats {
	if i, ok := t.byIP[f.client.Addr().Unmap()]; ok {
		return &t.ips[i]
	}
	return &t.other
}

// clients lists the counts per client address, live flows included, in the order the
// addresses came, the addresses past maxClients summed in a last row with the zero address.
func (t *table) clients() []FlowStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.ips)
	other := t.other
	for f := range t.live {
		row := &other
		if i, ok := t.byIP[f.client.Addr().Unmap()]; ok {
			row = &out[i]
		}
		st := f.stats(true)
		row.Flows++
		row.Active = true
		row.Up.Add(st.Up)
		row.Down.Add(st.Down)
	}
	if other.Flows > 0 {
		out = append(out, other)
	}
	return out
}

func (t *table) retire(f *flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.live[f]; !ok {
		return
	}
	delete(t.live, f)
	st := f.stats(false)
	row := t.ipRow(f)
	row.Flows++
	row.Up.Add(st.Up)
	row.Down.Add(st.Down)
	if len(t.retired) < maxRetired {
		t.retired = append(t.retired, st)
		return
	}
	if t.merged.Flows == 0 {
		t.merged.Start = st.Start
	}
	t.merged.Flows++
	t.merged.Up.Add(st.Up)
	t.merged.Down.Add(st.Down)
}

func (t *table) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}

// snapshot lists every flow by the time it started, the merged row last.
func (t *table) snapshot() []FlowStats {
	t.mu.Lock()
	out := slices.Clone(t.retired)
	for f := range t.live {
		out = append(out, f.stats(true))
	}
	merged := t.merged
	t.mu.Unlock()
	slices.SortStableFunc(out, func(a, b FlowStats) int { return a.Start.Compare(b.Start) })
	if merged.Flows > 0 {
		out = append(out, merged)
	}
	return out
}

// account counts a verdict's outcome on c.
func account(c *counters, v verdict) {
	if v.lost {
		c.lost.Add(1)
	}
	if v.duplicated {
		c.duplicated.Add(1)
	}
	if v.queueFull {
		c.queueDrops.Add(1)
	}
	for _, p := range v.plans[:v.n] {
		if p.flipBit >= 0 {
			c.corrupted.Add(1)
		}
		if p.reordered {
			c.reordered.Add(1)
		}
		if !p.due.IsZero() {
			c.delayed.Add(1)
		}
	}
}
