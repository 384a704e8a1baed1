package udpping

import (
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
)

// maxPendingBytes bounds what delayed replies hold in all, counted as they really cost (see
// replyCost); past it, or past a client's fair share of it, a reply is shed, as a full router
// queue drops it. The garbage collector lets the heap grow to about twice what is live, so the
// server's memory under a flood stays near 2 × maxPendingBytes plus its own few megabytes.
const maxPendingBytes = 32 << 20

// entryCost is what a reply costs beyond its buffer: its place in the heap, whose array may be
// up to twice as long as what it holds, and its client's entry in held.
const entryCost = 2*int(unsafe.Sizeof(delayedReply{})) + 16

// bufClasses are the capacities of the delayed replies' buffers: a reply gets the smallest that
// holds it, and costs all of it (a 0-byte datagram holds no buffer). Buffers sent are kept for
// reuse, up to maxFreeBytes in all, so that a steady load allocates nothing.
var bufClasses = [...]int{64, 256, 1024, 4096, 16384, 1 << 16}

// maxFreeBytes bounds the buffers kept for reuse.
const maxFreeBytes = maxPendingBytes / 8

// bufClass returns the index in bufClasses of the buffer for n bytes.
func bufClass(n int) int {
	for i, c := range bufClasses {
		if n <= c {
			return i
		}
	}
	return len(bufClasses) - 1 // never: a datagram is at most 65535 bytes
}

// replyCost is what a delayed reply of n bytes holds: its buffer and entryCost.
func replyCost(n int) int {
	if n == 0 {
		return entryCost
	}
	return bufClasses[bufClass(n)] + entryCost
}

// A delayQueue holds delayed replies and sends each when it is due, from one goroutine, so that
// a delay never holds up the read loop or other clients. Replies come out in the order they
// are due, which with jitter may differ from the order they came in, as on a real network. The
// sender waits on one timer, for the head of the heap, and sends what fell due in batches.
//
// The queue sheds fairly: a client may hold at most maxPendingBytes / (k+1), k the clients
// holding replies (itself included), so that however hard some clients flood there is always
// room for one more, and a flooder's share shrinks as others come.
type delayQueue struct {
	conn  *net.UDPConn
	sent  func(st *ClientStats, n int) // counts n echoes (-1 takes one back)
	wake  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	fifo  bool // replies fall due in the order they come (no jitter): ring, not h
	ring  replyRing
	h     replyHeap
	bytes int                  // what the queued replies cost, in all
	held  map[*ClientStats]int // what each client's queued replies cost
	seq   uint64
	bound int // maxPendingBytes; a field for tests
	free  [len(bufClasses)][][]byte
	freeN int // the bytes in free
}

type delayedReply struct {
	due  time.Time
	seq  uint64 // keeps replies due at the same time in arrival order
	to   netip.AddrPort
	data []byte
	st   *ClientStats
	cost int32
	cls  int8
}

// newDelayQueue returns a queue sending over conn; fifo says that replies fall due in the order
// they are pushed (a fixed delay, no jitter).
func newDelayQueue(conn *net.UDPConn, sent func(*ClientStats, int), fifo bool) *delayQueue {
	return &delayQueue{
		fifo:  fifo,
		conn:  conn,
		sent:  sent,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		held:  make(map[*ClientStats]int),
		bound: maxPendingBytes,
	}
}

// reserve takes room for a reply of n bytes for st's client, and reports false, taking none,
// when it would pass the queue's bound or the client's share of it. Each reserve is followed
// by its push; only the read loop calls them, so the room stays taken in between.
func (q *delayQueue) reserve(st *ClientStats, n int) bool {
	cost := replyCost(n)
	q.mu.Lock()
	defer q.mu.Unlock()
	held, holds := q.held[st]
	clients := len(q.held)
	if !holds {
		clients++
	}
	if q.bytes+cost > q.bound || held+cost > q.bound/(clients+1) {
		return false
	}
	q.bytes += cost
	q.held[st] = held + cost
	return true
}

// push queues a copy of data (the answer, already made) for st's client at to, to be sent at
// due, in the room reserve took for it.
func (q *delayQueue) push(due time.Time, to netip.AddrPort, data []byte, st *ClientStats) {
	r := delayedReply{due: due, to: to, st: st, cost: int32(replyCost(len(data))), cls: -1}
	q.mu.Lock()
	if len(data) > 0 {
		c := bufClass(len(data))
		var b []byte
		if f := q.free[c]; len(f) > 0 {
			b, q.free[c] = f[len(f)-1], f[:len(f)-1]
			q.freeN -= cap(b)
		} else {
			b = make([]byte, 0, bufClasses[c])
		}
		r.data, r.cls = append(b[:0], data...), int8(c)
	}
	q.seq++
	r.seq = q.seq
	first := q.add(r)
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// release takes what r held off the queue's account, and keeps its buffer for reuse while
// there is room. q.mu must be held.
func (q *delayQueue) release(r *delayedReply) {
	if r.cls >= 0 && q.freeN+cap(r.data) <= maxFreeBytes {
		q.free[r.cls] = append(q.free[r.cls], r.data)
		q.freeN += cap(r.data)
	}
	q.bytes -= int(r.cost)
	if left := q.held[r.st] - int(r.cost); left > 0 {
		q.held[r.st] = left
	} else {
		delete(q.held, r.st)
	}
}

func (q *delayQueue) stop() { close(q.done) }

// delayBatch is how many due replies run sends in one sendmmsg.
const delayBatch = 64

// run sends replies as they fall due until stop is called; what is still queued then is dropped.
func (q *delayQueue) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// The replies due are sent together (sendmmsg), up to delayBatch at once: under load a
	// timer's wake-up finds many due, and sending them one by one cost the server a tenth of
	// its throughput (scripts/bench.sh).
	out := newEchoBatch(ipv4.NewPacketConn(q.conn), q.sent, delayBatch)
	due := make([]delayedReply, 0, delayBatch)
	for {
		q.mu.Lock()
		wait := time.Hour
		now := time.Now()
		for q.len() > 0 && len(due) < delayBatch {
			if wait = q.head().due.Sub(now); wait > 0 {
				break
			}
			due = append(due, q.take())
		}
		q.trim()
		q.mu.Unlock()
		if len(due) > 0 {
			for _, next := range due {
				out.add(next.data, next.to, next.st)
			}
			out.flush()
			// Released only once sent, so that the account never shows less than is held.
			q.mu.Lock()
			for i := range due {
				q.release(&due[i])
			}
			q.mu.Unlock()
			clear(due)
			due = due[:0]
			continue
		}
		timer.Reset(wait)
		select {
		case <-q.done:
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// The queue's order: a heap by due time when jitter may reorder replies; without jitter
// replies fall due in the order they came, and a ring does at O(1) what the heap's pop did at
// O(log n) (a tenth of the server's time under a flood, by perf).

// add queues r, and reports whether it is now the first due. q.mu must be held, here and in
// len, head, take and trim.
func (q *delayQueue) add(r delayedReply) bool {
	if q.fifo {
		q.ring.push(r)
		return q.ring.n == 1
	}
	q.h.push(r)
	return q.h[0].seq == r.seq
}

func (q *delayQueue) len() int {
	if q.fifo {
		return q.ring.n
	}
	return len(q.h)
}

// head returns the reply due first; the queue must not be empty.
func (q *delayQueue) head() *delayedReply {
	if q.fifo {
		return &q.ring.buf[q.ring.head]
	}
	return &q.h[0]
}

// take removes and returns the reply due first; the queue must not be empty.
func (q *delayQueue) take() delayedReply {
	if q.fifo {
		return q.ring.pop()
	}
	return q.h.pop()
}

// trim gives back the queue's array when it has shrunk to a quarter of it, so that a flood's
// peak is not held for ever.
func (q *delayQueue) trim() {
	if q.fifo {
		q.ring.trim()
		return
	}
	if c := cap(q.h); c > 1024 && len(q.h) < c/4 {
		q.h = append(make(replyHeap, 0, 2*len(q.h)), q.h...)
	}
}

// A replyRing is a FIFO of replies in a ring that grows by doubling.
type replyRing struct {
	buf     []delayedReply
	head, n int
}

func (r *replyRing) push(x delayedReply) {
	if r.n == len(r.buf) {
		r.resize(max(2*len(r.buf), 64))
	}
	r.buf[(r.head+r.n)%len(r.buf)] = x
	r.n++
}

func (r *replyRing) pop() delayedReply {
	x := r.buf[r.head]
	r.buf[r.head] = delayedReply{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return x
}

func (r *replyRing) trim() {
	if len(r.buf) > 1024 && r.n < len(r.buf)/4 {
		r.resize(2 * r.n)
	}
}

// resize moves the ring into an array of size (at least r.n), oldest first.
func (r *replyRing) resize(size int) {
	b := make([]delayedReply, size)
	for i := range r.n {
		b[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = b, 0
}

// replyHeap is a min-heap of replies by due time (then arrival), held by value so that a
// delayed reply costs no allocation of its own (container/heap would box each one).
type replyHeap []delayedReply

func (h replyHeap) less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}

func (h *replyHeap) push(r delayedReply) {
	*h = append(*h, r)
	a := *h
	for i := len(a) - 1; i > 0; {
		parent := (i - 1) / 2
		if !a.less(i, parent) {
			break
		}
		a[i], a[parent] = a[parent], a[i]
		i = parent
	}
}

// pop removes and returns the reply due first; the heap must not be empty.
func (h *replyHeap) pop() delayedReply {
	a := *h
	n := len(a) - 1
	a[0], a[n] = a[n], a[0]
	for i := 0; ; {
		child := 2*i + 1
		if child >= n {
			break
		}
		if child+1 < n && a.less(child+1, child) {
			child++
		}
		if !a.less(child, i) {
			break
		}
		a[i], a[child] = a[child], a[i]
		i = child
	}
	r := a[n]
	a[n] = delayedReply{}
	*h = a[:n]
	return r
}
