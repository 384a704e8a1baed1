package udpping

import (
	"container/heap"
	"net"
	"net/netip"
	"sync"
	"time"
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
	heap.Push(&q.h, &delayedReply{due: due, seq: q.seq, to: to, data: *bp, buf: bp, st: st})
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

// run sends replies as they fall due until stop is called; what is still queued then is dropped.
func (q *delayQueue) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		var next *delayedReply
		wait := time.Hour
		if len(q.h) > 0 {
			if wait = time.Until(q.h[0].due); wait <= 0 {
				next = heap.Pop(&q.h).(*delayedReply)
				q.bytes -= len(next.data)
			}
		}
		q.mu.Unlock()
		if next != nil {
			// Counted before it is sent, so that the count never trails what the client saw.
			q.sent(next.st, 1)
			if _, err := q.conn.WriteToUDPAddrPort(next.data, next.to); err != nil {
				q.sent(next.st, -1)
			}
			q.pool.Put(next.buf)
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

type replyHeap []*delayedReply

func (h replyHeap) Len() int { return len(h) }
func (h replyHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h replyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *replyHeap) Push(x any)   { *h = append(*h, x.(*delayedReply)) }
func (h *replyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}
