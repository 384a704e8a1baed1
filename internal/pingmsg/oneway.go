package pingmsg

import (
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// pinglab's one-way extension lets a client tell a request lost on the way out from a reply lost
// on the way back, and time each direction. It lives inside the assignment's message, in the
// padding after the timestamp, so that every server still echoes it as an ordinary ping:
//
//	request:             ping 7 2026-11-22 16:02:43.123456 owd? 9f3a5c7e1b2d4f60 abcdef...
//	the handout's echo:  PING 7 2026-11-22 16:02:43.123456 OWD? 9F3A5C7E1B2D4F60 ABCDEF...
//	pinglab's answer:    PING 7 2026-11-22 16:02:43.123456 OWD= 9F3A5C7E1B2D4F60 RX=1763823763123987654 N=7 HI=7 W=000000000000007F ABC...
//
// A plain echo (upper-cased or not) still holds "owd?", never "owd=", so the client takes it as
// a reply with round-trip information only. pinglab's server writes its answer over the request's
// own padding and never makes a reply longer than the request, so the extension amplifies
// nothing; a request with no room for the answer is echoed plainly. The answer says when the
// server read the request (RX, Unix nanoseconds on the server's clock), how many requests of this
// run it has received (N), the highest sequence number among them (HI), and a window W of 64
// bits in hexadecimal: bit i set means request HI-i arrived. A client that lost a reply learns
// from any later answer whether its request got there. Sequence number 0 is a status query: the
// server answers it without counting it, so that a client can ask at the end of a run about its
// last probes; the assignment's servers echo it, and ParseSeq rejects 0, so no plain client
// mistakes it for a ping.

const (
	oneWayAsk    = "owd?"
	oneWayAnswer = "owd="
	// idLen is the run identifier's length in hexadecimal digits.
	idLen = 16
	// WindowBits is how many sequence numbers an answer's window covers.
	WindowBits = 64
	// OneWaySize is the smallest request that leaves room for the server's answer up to
	// sequence number and count 99,999,999, and the size of a one-way ping when none is given.
	OneWaySize = len("ping 99999999 ") + len(timeLayout) + len(" owd= ") + idLen +
		len(" rx=1763823763123987654 n=99999999 hi=99999999 w=") + 16
)

// AppendOneWay appends probe seq's message with the one-way request for run id: the
// assignment's message, " owd? <id>", then the pattern up to size. seq 0 makes a status query.
func AppendOneWay(b []byte, seq int, t time.Time, id uint64, size int) []byte {
	start := len(b)
	b = append(b, "ping "...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	b = t.AppendFormat(b, timeLayout)
	b = append(b, ' ')
	b = append(b, oneWayAsk...)
	b = append(b, ' ')
	b = appendHex(b, id)
	return pad(b, start, size)
}

// pad fills b (whose message started at start) up to size with one space and the pattern.
func pad(b []byte, start, size int) []byte {
	if n := len(b) - start; n < size {
		b = append(b, ' ')
		for i := n + 1; i < size; i++ {
			b = append(b, pattern[(i-n-1)%len(pattern)])
		}
	}
	return b
}

func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[(v>>uint(shift))&0xf])
	}
	return b
}

// A OneWayRequest is what a one-way request asks.
type OneWayRequest struct {
	// Seq is the probe's sequence number; 0 for a status query.
	Seq int
	// ID names the client's run.
	ID uint64
	// at is where " owd?" starts in the message: the server's answer goes there.
	at int
}

// ParseOneWayRequest reads a one-way request, in any case: "ping <seq> <date> <time> owd? <id>".
func ParseOneWayRequest(b []byte) (OneWayRequest, bool) {
	if !HasPrefixFold(b, "ping ") {
		return OneWayRequest{}, false
	}
	i := len("ping ")
	seq, i, ok := readUint(b, i)
	if !ok || i >= len(b) || b[i] != ' ' {
		return OneWayRequest{}, false
	}
	at := i + 1 + len(timeLayout)
	if at+1+len(oneWayAsk)+1+idLen > len(b) || b[at] != ' ' || !HasPrefixFold(b[at+1:], oneWayAsk) ||
		b[at+1+len(oneWayAsk)] != ' ' {
		return OneWayRequest{}, false
	}
	idAt := at + 1 + len(oneWayAsk) + 1
	id, ok := parseHex(b[idAt : idAt+idLen])
	if !ok || (idAt+idLen < len(b) && b[idAt+idLen] != ' ') {
		return OneWayRequest{}, false
	}
	return OneWayRequest{Seq: seq, ID: id, at: at}, true
}

// readUint reads decimal digits at b[i:], up to 18 of them; ok is false when there are none.
func readUint(b []byte, i int) (v, end int, ok bool) {
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start >= 18 {
			return 0, i, false
		}
		v = v*10 + int(b[i]-'0')
	}
	return v, i, i > start
}

func parseHex(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// A Receipt is the server's answer to a one-way request: what it knew of the client's run when
// the request arrived.
type Receipt struct {
	// ID is the run's.
	ID uint64
	// Received is when the server read the request, on the server's clock.
	Received time.Time
	// Count is how many requests of the run the server has received, this one included (a
	// status query is not counted).
	Count int
	// Highest is the highest sequence number received; Window has bit i set when request
	// Highest-i was received.
	Highest int
	Window  uint64
}

// Has reports whether the receipt says that request seq arrived; known is false when seq is
// beyond what the window covers.
func (r Receipt) Has(seq int) (arrived, known bool) {
	if seq > r.Highest {
		return false, true
	}
	d := r.Highest - seq
	if d >= WindowBits {
		return false, false
	}
	return r.Window&(1<<uint(d)) != 0, true
}

// AnswerOneWay writes the receipt over the padding of the one-way request req in msg, keeping
// msg's length, and upper-cases msg as the server's echo does. It reports false, and leaves msg
// only upper-cased, when the answer does not fit.
func AnswerOneWay(msg []byte, req OneWayRequest, r Receipt) bool {
	Upper(msg)
	var a [128]byte
	b := append(a[:0], ' ')
	b = append(b, oneWayAnswer...)
	b = append(b, ' ')
	b = appendHex(b, r.ID)
	b = append(b, " rx="...)
	b = strconv.AppendInt(b, r.Received.UnixNano(), 10)
	b = append(b, " n="...)
	b = strconv.AppendInt(b, int64(r.Count), 10)
	b = append(b, " hi="...)
	b = strconv.AppendInt(b, int64(r.Highest), 10)
	b = append(b, " w="...)
	b = appendHex(b, r.Window)
	if req.at+len(b) > len(msg) {
		return false
	}
	n := copy(msg[req.at:], b)
	rest := msg[req.at+n:]
	for i := range rest {
		if i == 0 {
			rest[i] = ' '
			continue
		}
		rest[i] = pattern[(i-1)%len(pattern)]
	}
	Upper(msg)
	return true
}

// ParseReceipt reads the server's answer from the echo of a one-way request, in any case. ok is
// false for a plain echo (the request echoed as it was, or upper-cased).
func ParseReceipt(b []byte) (r Receipt, ok bool) {
	req, ok := parseAt(b)
	if !ok {
		return Receipt{}, false
	}
	i := req
	if i+1+len(oneWayAnswer)+1+idLen > len(b) || !HasPrefixFold(b[i+1:], oneWayAnswer) {
		return Receipt{}, false
	}
	i += 1 + len(oneWayAnswer) + 1
	if b[i-1] != ' ' {
		return Receipt{}, false
	}
	if r.ID, ok = parseHex(b[i : i+idLen]); !ok {
		return Receipt{}, false
	}
	i += idLen
	field := func(name string) (string, bool) {
		if !HasPrefixFold(b[i:], " "+name+"=") {
			return "", false
		}
		i += len(name) + 2
		start := i
		for i < len(b) && b[i] != ' ' {
			i++
		}
		return string(b[start:i]), i > start
	}
	var rx, n, hi, w string
	if rx, ok = field("rx"); !ok {
		return Receipt{}, false
	}
	if n, ok = field("n"); !ok {
		return Receipt{}, false
	}
	if hi, ok = field("hi"); !ok {
		return Receipt{}, false
	}
	if w, ok = field("w"); !ok || len(w) != 16 {
		return Receipt{}, false
	}
	ns, err1 := strconv.ParseInt(rx, 10, 64)
	cnt, err2 := strconv.Atoi(n)
	high, err3 := strconv.Atoi(hi)
	win, ok := parseHex([]byte(w))
	if err1 != nil || err2 != nil || err3 != nil || !ok || cnt < 0 || high < 0 {
		return Receipt{}, false
	}
	r.Received, r.Count, r.Highest, r.Window = time.Unix(0, ns), cnt, high, win
	return r, true
}

// parseAt returns where the text after the timestamp starts in a message "ping <seq> <ts> ...".
func parseAt(b []byte) (int, bool) {
	if !HasPrefixFold(b, "ping ") {
		return 0, false
	}
	_, i, ok := readUint(b, len("ping "))
	if !ok || i >= len(b) || b[i] != ' ' {
		return 0, false
	}
	at := i + 1 + len(timeLayout)
	if at >= len(b) || b[at] != ' ' {
		return 0, false
	}
	return at, true
}

// ParseStatusSeq reports whether b is the echo or answer of a status query (sequence number 0).
func ParseStatusSeq(b []byte) bool {
	return HasPrefixFold(b, "ping 0 ")
}

// A Ledger is the server's side of the one-way extension: for each client run, what has arrived.
// It is bounded: past maxRuns runs, the one heard from longest ago is forgotten. Safe for
// concurrent use.
type Ledger struct {
	mu   sync.Mutex
	runs map[ledgerKey]*ledgerRun
	// tick orders the runs by when they were last heard from, for eviction.
	tick uint64
}

// maxRuns bounds a Ledger: a run costs about 64 bytes, so 4096 of them cost a few hundred KB
// whatever a flood of forged addresses and identifiers sends.
const maxRuns = 4096

// ledgerKey names a run by the client's address without its port, so that a TCP client that
// connects afresh for each ping keeps one run.
type ledgerKey struct {
	addr netip.Addr
	id   uint64
}

type ledgerRun struct {
	count, hi int
	window    uint64
	last      uint64
}

// Record notes request req from addr, read at t, and returns the receipt to answer it with. A
// status query (seq 0) is answered without being counted.
func (l *Ledger) Record(addr netip.Addr, req OneWayRequest, t time.Time) Receipt {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runs == nil {
		l.runs = make(map[ledgerKey]*ledgerRun)
	}
	k := ledgerKey{addr.Unmap(), req.ID}
	r := l.runs[k]
	if r == nil {
		if len(l.runs) >= maxRuns {
			l.evict()
		}
		r = &ledgerRun{}
		l.runs[k] = r
	}
	l.tick++
	r.last = l.tick
	if s := req.Seq; s > 0 {
		r.count++
		switch {
		case s > r.hi:
			if d := s - r.hi; d >= WindowBits {
				r.window = 0
			} else {
				r.window <<= uint(d)
			}
			r.window |= 1
			r.hi = s
		case r.hi-s < WindowBits:
			r.window |= 1 << uint(r.hi-s)
		}
	}
	return Receipt{ID: req.ID, Received: t, Count: r.count, Highest: r.hi, Window: r.window}
}

// evict forgets the run heard from longest ago. A scan is enough: it runs only when the table
// is full, once per new run.
func (l *Ledger) evict() {
	var oldest ledgerKey
	min := ^uint64(0)
	for k, r := range l.runs {
		if r.last < min {
			oldest, min = k, r.last
		}
	}
	delete(l.runs, oldest)
}

// Len returns how many runs the ledger holds.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.runs)
}
