package udpping

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// A delayQueue holds delayed replies and sends each when it is due, from one goroutine, so that
// a delay never holds up the read loop or other clients. Replies come out in the order they
// are due, which with jitter may differ from the order they came in, as on a real network.
type delayQueue struct {
	conn  *net.UDPConn
	sent  func(st *ClientStats, n int) // counts n echoes (-1 takes one back)
	wake  chan struct{}
	done  chan struct{}
	pool  sync.Pool
	mu    sync.Mutex
	h     replyHeap
	bytes int
	seq   uint64
}

type delayedReply struct {
	due  time.Time
	seq  uint64 // keeps replies due at the same time in arrival order
	to   netip.AddrPort
	data []byte
	buf  *[]byte
	st   *ClientStats
}

func newDelayQueue(conn *net.UDPConn, sent func(*ClientStats, int)) *delayQueue {
	return &delayQueue{
		conn: conn,
		sent: sent,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
}

// fits reports whether a reply of n bytes fits within maxPendingBytes.
func (q *delayQueue) fits(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes+n <= maxPendingBytes
}

// push queues a copy of data for to, to be sent at due.
func (q *delayQueue) push(due time.Time, to netip.AddrPort, data []byte, st *ClientStats) {
	bp, _ := q.pool.Get().(*[]byte)
	if bp == nil || cap(*bp) < len(data) {
		b := make([]byte, 0, max(len(data), 2048))
		bp = &b
	}
	*bp = append((*bp)[:0], data...)
	q.mu.Lock()
	q.seq++
	q.h.push(delayedReply{due: due, seq: q.seq, to: to, data: *bp, buf: bp, st: st})
	q.bytes += len(data)
	first := q.h[0].seq == q.seq
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
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
	// its throughput (issue 8).
	out := newEchoBatch(ipv4.NewPacketConn(q.conn), q.sent, delayBatch)
	due := make([]delayedReply, 0, delayBatch)
	for {
		q.mu.Lock()
		wait := time.Hour
		now := time.Now()
		for len(q.h) > 0 && len(due) < delayBatch {
			if wait = q.h[0].due.Sub(now); wait > 0 {
				break
			}
			next := q.h.pop()
			q.bytes -= len(next.data)
			due = append(due, next)
		}
		q.mu.Unlock()
		if len(due) > 0 {
			for _, next := range due {
				out.add(next.data, next.to, next.st)
			}
			out.flush()
			for i, next := range due {
				q.pool.Put(next.buf)
				due[i] = delayedReply{}
			}
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
