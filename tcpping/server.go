package tcpping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pinglab/pinglab/internal/impair"
	"github.com/pinglab/pinglab/internal/pingmsg"
)

// Server defaults, used where a ServerConfig field is 0.
const (
	// DefaultListen is the server's address when none is given: port 12000 on every address,
	// IPv4 and IPv6.
	DefaultListen = ":12000"
	// DefaultMaxConns bounds the connections served at once; it leaves room for the 10,000
	// clients of the load benchmark.
	DefaultMaxConns = 16384
	// DefaultIdleTimeout closes a connection that sent nothing for this long.
	DefaultIdleTimeout = time.Minute
	// DefaultMaxLineLength bounds one message; it is above MaxSize, the client's largest.
	DefaultMaxLineLength = 1 << 16
	// DefaultMaxConnsPerHost bounds the connections of one client address, so that one host
	// cannot hold every slot: a lab's 30 students each get far more than they need, and the
	// other clients of a host that holds its share are still served.
	DefaultMaxConnsPerHost = 1024
	// DefaultMessageTimeout bounds how long a line may take from its first byte to its
	// newline, so that a client trickling a byte at a time cannot hold a slot for ever (the
	// idle timeout restarts with every byte).
	DefaultMessageTimeout = 30 * time.Second
)

const (
	// readBufSize is each connection's read buffer. It is small on purpose: a ping is a few
	// dozen bytes, and the server must hold 10,000 connections in a few megabytes.
	readBufSize = 512
	// lingerTimeout bounds how long a connection the server closes reads (and discards) what
	// the client still sends, so that the close is a FIN after our last words, not a reset
	// that could destroy them.
	lingerTimeout = time.Second
	// lingerBytes bounds what such a closing read discards.
	lingerBytes = 1 << 16
	// maxRefusing bounds the connections being refused ("server busy") that linger at once;
	// beyond it a refused connection is told at once and closed without the linger.
	maxRefusing = 64
	// spareFiles is what the server keeps of the open-file limit beyond MaxConns: the
	// listener, the refusing connections, standard streams, the metrics server, a log file.
	spareFiles = maxRefusing + 64
	// delayQueueLen is how many delayed replies one connection may hold before its reader
	// waits; TCP's own flow control then holds the client back.
	delayQueueLen = 32
)

// The words the server sends of its own, each on a line of its own.
const (
	lostWord = "LOST"
	// errorWord starts a line telling the client why the server closes its connection.
	errorWord = "ERROR"
)

var (
	errBadDrop     = impair.ErrBadDrop
	errBadDelay    = impair.ErrBadDelay
	errBadLimit    = errors.New("max conns, max conns per host and max line length must not be negative")
	errBadDropMode = errors.New("drop mode must be lost, silent or close")
)

// A DropMode says what the server does with a message it drops.
type DropMode uint8

// The drop modes. The zero value is the handout's.
const (
	// DropLost answers "LOST" and closes the connection, as the handout's server does.
	DropLost DropMode = iota
	// DropSilent swallows the message and keeps the connection, as a lossy network would.
	DropSilent
	// DropClose closes the connection without a word.
	DropClose
)

var dropModeNames = [...]string{DropLost: "lost", DropSilent: "silent", DropClose: "close"}

// String returns the mode's name as --drop-mode takes it.
func (m DropMode) String() string {
	if int(m) < len(dropModeNames) {
		return dropModeNames[m]
	}
	return fmt.Sprintf("DropMode(%d)", m)
}

// ParseDropMode parses "lost", "silent" or "close".
func ParseDropMode(s string) (DropMode, error) {
	for m, name := range dropModeNames {
		if s == name {
			return DropMode(m), nil
		}
	}
	return 0, fmt.Errorf("tcpping: %w, not %q", errBadDropMode, s)
}

// ServerConfig configures a Server. The zero value listens on DefaultListen, echoes every
// message at once, and applies the default limits.
//
// A message, for dropping, delaying and counting, is a line: the bytes up to and including
// "\n". A client that sends no newline (the handout's, which sends one message per connection
// and then waits) is served too: a read that comes back without filling the server's buffer
// means the client paused, and what it sent so far ends the message. A message that arrives in
// pieces because the network split it may therefore count as two; on loopback, and for any
// message shorter than a TCP segment, it does not happen.
type ServerConfig struct {
	// Addr is the address to listen on, host:port; "" means DefaultListen.
	Addr string
	// Network is "tcp" (IPv4 and IPv6 where Addr allows both), "tcp4" or "tcp6"; "" is "tcp".
	Network string
	// Drop is the share of messages dropped at random, 0 to 1; DropMode says how.
	Drop     float64
	DropMode DropMode
	// Delay holds each reply back this long; Jitter varies it uniformly by up to ± Jitter
	// (never below 0). Replies on one connection keep their order, as a TCP stream must; a
	// delayed connection never holds up another.
	Delay, Jitter time.Duration
	// Seed makes drops and jitter reproducible: the same seed and the same messages in the
	// same order give the same decisions. 0 picks a seed at random; Server.Seed tells which.
	Seed uint64
	// MaxConns bounds the connections served at once (0: DefaultMaxConns). Beyond it a new
	// connection is accepted, told "ERROR server busy" and closed, so that the client knows
	// at once rather than waiting in the listen queue.
	MaxConns int
	// IdleTimeout closes a connection that sent nothing (or read none of its echoes) for this
	// long (0: DefaultIdleTimeout; negative: never).
	IdleTimeout time.Duration
	// MaxConnsPerHost bounds the connections from one client address (0:
	// DefaultMaxConnsPerHost); beyond it a connection is refused as beyond MaxConns.
	MaxConnsPerHost int
	// MessageTimeout bounds how long a line may take from its first byte to its newline (0:
	// DefaultMessageTimeout; negative: no bound); past it the client is told "ERROR message
	// not completed in ..." and closed. A client that sends no newline (the handout's) is
	// answered at its pause and closes well before.
	MessageTimeout time.Duration
	// MaxLineLength bounds one message (0: DefaultMaxLineLength). A client that sends more
	// without a newline is told "ERROR line too long" and closed; the server never holds more
	// than its small read buffer of a connection's input.
	MaxLineLength int
	// Log, when set, is called for each thing that happens: connections opened, closed and
	// refused, messages echoed and dropped. It is called from every connection's goroutine,
	// so it must be safe for concurrent use, and quick; Event.Data is valid only during the
	// call.
	Log func(Event)
}

// An EventType says what an Event tells of.
type EventType uint8

// The events a Server logs.
const (
	// Connected: a client connected.
	Connected EventType = iota + 1
	// Message: a message came; Action says what became of it.
	Message
	// Closed: a connection ended; Reason says why when the server closed it.
	Closed
	// Refused: a connection beyond MaxConns was told the server is busy and closed.
	Refused
)

// An Action is what the server did with a message.
type Action uint8

// The actions.
const (
	// Echoed: the message was echoed back (after Event.Delay, when there is one).
	Echoed Action = iota + 1
	// Dropped: the message was dropped, as the DropMode says.
	Dropped
)

func (a Action) String() string {
	switch a {
	case Echoed:
		return "echoed"
	case Dropped:
		return "dropped"
	}
	return "unknown"
}

// An Event is one thing that happened on the server.
type Event struct {
	Type EventType
	// Time is when it happened.
	Time time.Time
	// Client is the client's address.
	Client netip.AddrPort
	// Data is the message as received, without its newline; valid only during the Log call.
	Data []byte
	// Action is what became of a Message.
	Action Action
	// Delay is how long a Message's echo is held back.
	Delay time.Duration
	// Reason says how a message was dropped ("answered LOST", "swallowed", "closed the
	// connection"), why the server closed a connection ("idle for 1m0s", "line too long") or
	// refused one.
	Reason string
}

// ClientStats counts what one client host did. Connections from one address count together,
// since a client that connects per ping comes from a new port each time.
type ClientStats struct {
	// Addr is the client's address; the zero Addr stands for every client beyond the table's
	// bound.
	Addr netip.Addr
	// Conns is how many connections it opened that were served; Refused how many were
	// refused because the server was busy; Closed how many of the served ones ended.
	Conns, Refused, Closed int
	// Received is how many messages came; Echoed how many the server echoed; Dropped how many
	// it dropped.
	Received, Echoed, Dropped int
}

type clientRec struct {
	addr                                              netip.Addr
	conns, refused, closed, received, echoed, dropped atomic.Int64
}

// A Server echoes what each client sends back in upper case (the ASCII letters; other bytes
// unchanged), with a goroutine per connection, dropping and delaying as configured. Create
// one with Listen, run it with Serve.
type Server struct {
	ln      net.Listener
	cfg     ServerConfig
	model   *impair.Model
	serving atomic.Bool
	closed  atomic.Bool

	mu      sync.Mutex
	clients map[netip.Addr]*clientRec
	order   []*clientRec
	conns   map[*conn]struct{}

	// perHost counts the connections served per client address (under mu); an address
	// leaves it with its last connection.
	perHost map[netip.Addr]int
	warning string

	wg       sync.WaitGroup
	refusing chan struct{}

	ledger pingmsg.Ledger // the one-way extension's receipts
}

// Listen opens the server's socket. A failure to bind says why (address in use, permission).
func Listen(ctx context.Context, cfg ServerConfig) (*Server, error) {
	// One model for every connection, drawn in the order messages arrive, so that a seeded
	// run with one client is reproducible.
	model, err := impair.New(impair.Config{Drop: cfg.Drop, Delay: cfg.Delay, Jitter: cfg.Jitter, Seed: cfg.Seed})
	if err != nil {
		return nil, fmt.Errorf("tcpping: %w", err)
	}
	if cfg.MaxConns < 0 || cfg.MaxConnsPerHost < 0 || cfg.MaxLineLength < 0 {
		return nil, fmt.Errorf("tcpping: %w", errBadLimit)
	}
	if int(cfg.DropMode) >= len(dropModeNames) {
		return nil, fmt.Errorf("tcpping: %w, not %d", errBadDropMode, cfg.DropMode)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultListen
	}
	if cfg.Network == "" {
		cfg.Network = "tcp"
	}
	if _, err := pingmsg.Family("tcp", cfg.Network); err != nil {
		return nil, fmt.Errorf("tcpping: %w", err)
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerHost == 0 {
		cfg.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MessageTimeout == 0 {
		cfg.MessageTimeout = DefaultMessageTimeout
	}
	// Every connection holds a file: a limit below MaxConns would leave clients past it
	// hanging in the listen queue, told nothing, while accept fails.
	var warning string
	cfg.MaxConns, warning = fitFileLimit(cfg.MaxConns, spareFiles)
	if cfg.MaxLineLength == 0 {
		cfg.MaxLineLength = DefaultMaxLineLength
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, cfg.Network, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("tcpping: %w", impair.ListenError(cfg.Addr, err))
	}
	return &Server{
		ln:       ln,
		cfg:      cfg,
		warning:  warning,
		perHost:  make(map[netip.Addr]int),
		model:    model,
		clients:  make(map[netip.Addr]*clientRec),
		conns:    make(map[*conn]struct{}),
		refusing: make(chan struct{}, maxRefusing),
	}, nil
}

// Addr returns the address the server listens on, with the port the system picked for port 0.
func (s *Server) Addr() netip.AddrPort {
	return s.ln.Addr().(*net.TCPAddr).AddrPort()
}

// Seed returns the seed of the server's drops and jitter, the one chosen when Config.Seed was 0.
func (s *Server) Seed() uint64 { return s.model.Seed() }

// MaxConns returns the bound on connections served at once: ServerConfig.MaxConns, or less
// when the open-file limit does not allow it (Warning says so).
func (s *Server) MaxConns() int { return s.cfg.MaxConns }

// Warning returns what Listen had to change to run, or "": MaxConns lowered to fit the
// open-file limit, which it could not raise.
func (s *Server) Warning() string { return s.warning }

// Conns returns how many connections are being served.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops the server: it stops accepting, and Serve closes every connection and returns.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.ln.Close()
}

// Serve accepts and serves connections until ctx is done or Close is called; then it closes
// every connection, waits for their goroutines and returns nil. It returns an error only when
// the listening socket fails for good. A Server serves once.
func (s *Server) Serve(ctx context.Context) error {
	if s.serving.Swap(true) {
		return fmt.Errorf("tcpping: %w", impair.ErrServing)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer func() {
		stop()
		cancel()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	}()
	backoff := time.Duration(0)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors, or a connection reset before it was accepted: wait a
			// little and go on, as net/http does, rather than give up on every client.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			return fmt.Errorf("tcpping: accept: %w", err)
		}
		backoff = 0
		s.admit(ctx, c)
	}
}

// admit serves c, or refuses it when MaxConns connections are being served, or
// MaxConnsPerHost from its address.
func (s *Server) admit(ctx context.Context, c net.Conn) {
	addr := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	s.mu.Lock()
	rec := s.client(addr.Addr())
	var reason string
	switch {
	case len(s.conns) >= s.cfg.MaxConns:
		reason = fmt.Sprintf("server busy (%d connections)", s.cfg.MaxConns)
	case s.perHost[addr.Addr()] >= s.cfg.MaxConnsPerHost:
		reason = fmt.Sprintf("server busy (%d connections from %s)", s.cfg.MaxConnsPerHost, addr.Addr())
	}
	if reason != "" {
		s.mu.Unlock()
		rec.refused.Add(1)
		s.refuse(ctx, c, addr, reason)
		return
	}
	cc := &conn{s: s, c: c, addr: addr, rec: rec}
	s.conns[cc] = struct{}{}
	s.perHost[addr.Addr()]++
	s.wg.Add(1)
	s.mu.Unlock()
	rec.conns.Add(1)
	go cc.serve(ctx)
}

// refuse tells c the server is busy and closes it, without holding up the accept loop: up to
// maxRefusing at once linger (lingerClose) so that the line is read before the close; beyond
// that the line is written at once (a new connection's send buffer takes it), what the client
// sent so far discarded, and the connection closed.
func (s *Server) refuse(ctx context.Context, c net.Conn, addr netip.AddrPort, reason string) {
	s.log(Event{Type: Refused, Client: addr, Reason: reason})
	line := errorWord + " " + reason + "\n"
	select {
	case s.refusing <- struct{}{}:
	default:
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		_, _ = io.WriteString(c, line)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		discardQueued(c)
		_ = c.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.refusing }()
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		defer stop()
		_ = c.SetWriteDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.WriteString(c, line)
		lingerClose(c, make([]byte, 128))
	}()
}

// client returns the record of addr, making it if it is new. s.mu must be held.
func (s *Server) client(addr netip.Addr) *clientRec {
	rec := s.clients[addr]
	if rec != nil {
		return rec
	}
	if len(s.clients) >= impair.MaxClients {
		addr = netip.Addr{}
		if rec = s.clients[addr]; rec != nil {
			return rec
		}
	}
	rec = &clientRec{addr: addr}
	s.clients[addr] = rec
	s.order = append(s.order, rec)
	return rec
}

// Stats returns a snapshot of the per-client counters, in the order clients first came.
func (s *Server) Stats() []ClientStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ClientStats, len(s.order))
	for i, r := range s.order {
		out[i] = ClientStats{
			Addr:     r.addr,
			Conns:    int(r.conns.Load()),
			Refused:  int(r.refused.Load()),
			Closed:   int(r.closed.Load()),
			Received: int(r.received.Load()),
			Echoed:   int(r.echoed.Load()),
			Dropped:  int(r.dropped.Load()),
		}
	}
	return out
}

func (s *Server) log(e Event) {
	if s.cfg.Log == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.cfg.Log(e)
}

// A conn is one client's connection and the goroutine that serves it.
type conn struct {
	s    *Server
	c    net.Conn
	addr netip.AddrPort
	rec  *clientRec

	fr  framer
	dec impair.Decision // the current message's
	// refresh is when the idle deadline was last pushed back.
	refresh time.Time
	// lineStart is when the line being read began, zero between lines; lineDue is when it
	// must be complete (MessageTimeout after lineStart), zero for no bound.
	lineStart, lineDue time.Time

	// The delayed replies, when the server delays: a writer goroutine sends them in order.
	out     chan delayed
	outDone chan struct{}
	lastDue time.Time
}

// A delayed reply: data to send at due.
type delayed struct {
	due  time.Time
	data []byte
}

// A framer splits what a connection reads into messages: a message ends at a newline, or at
// the end of a read that did not fill the buffer (the client paused, as one that sends no
// newline does).
type framer struct {
	inMsg bool // the current message continues from an earlier piece
	n     int  // the current message's length so far, without its newline
}

// next returns where the piece of b that belongs to one message ends, whether a newline ends
// it, and whether it starts a new message; it counts the piece into the message's length.
func (f *framer) next(b []byte) (end int, complete, start bool) {
	end = len(b)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		end, complete = i+1, true
	}
	start = !f.inMsg
	if start {
		f.n = 0
	}
	f.n += end
	if complete {
		f.n--
	}
	return end, complete, start
}

// done ends the current message when a newline ended its piece, or when the piece ended a
// read that did not fill the buffer (paused).
func (f *framer) done(complete, paused bool) {
	if complete || paused {
		f.inMsg = false
	}
}

// serve reads the client's messages and answers them until the client or the server ends the
// connection.
func (c *conn) serve(ctx context.Context) {
	s := c.s
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if s.perHost[c.addr.Addr()]--; s.perHost[c.addr.Addr()] <= 0 {
			delete(s.perHost, c.addr.Addr())
		}
		s.mu.Unlock()
		c.rec.closed.Add(1)
		s.wg.Done()
	}()
	s.log(Event{Type: Connected, Client: c.addr})
	reason := c.loop(ctx)
	s.log(Event{Type: Closed, Client: c.addr, Reason: reason})
}

// loop serves the connection and closes it; it returns why the server closed it, or "".
func (c *conn) loop(ctx context.Context) string {
	if c.s.model.Config().Delays() {
		c.out = make(chan delayed, delayQueueLen)
		c.outDone = make(chan struct{})
		go c.writer(ctx)
	}
	buf := make([]byte, readBufSize)
	for {
		c.pushDeadline()
		n, err := c.c.Read(buf)
		if n > 0 {
			c.trackLine(buf[:n])
			if reason, closed := c.consume(ctx, buf, n); closed {
				return reason
			}
		}
		if err != nil {
			return c.readFailed(ctx, err, buf)
		}
	}
}

// pushDeadline pushes the idle deadline back, or sets the line's when that comes first. It
// costs a timer update, so the idle deadline moves at most every IdleTimeout/16, which keeps
// it off the per-message path; a line's is set once, when the line spans reads.
func (c *conn) pushDeadline() {
	idle := c.s.cfg.IdleTimeout
	now := time.Now()
	if !c.lineDue.IsZero() && (idle <= 0 || c.lineDue.Before(now.Add(idle))) {
		if !c.refresh.Equal(c.lineDue) {
			c.refresh = c.lineDue
			_ = c.c.SetDeadline(c.lineDue)
		}
		return
	}
	if idle <= 0 {
		if !c.refresh.IsZero() {
			c.refresh = time.Time{}
			_ = c.c.SetDeadline(time.Time{})
		}
		return
	}
	if now.Sub(c.refresh) > idle/16 {
		c.refresh = now
		_ = c.c.SetDeadline(now.Add(idle))
	}
}

// trackLine follows where lines start and end in what a read brought (before consume changes
// it), for MessageTimeout: a line starts with its first byte and ends at its newline, whatever
// pauses split it into messages.
func (c *conn) trackLine(b []byte) {
	mt := c.s.cfg.MessageTimeout
	if mt <= 0 {
		return
	}
	switch i := bytes.LastIndexByte(b, '\n'); {
	case i == len(b)-1:
		c.lineStart, c.lineDue = time.Time{}, time.Time{}
	case i >= 0 || c.lineStart.IsZero():
		c.lineStart = time.Now()
		c.lineDue = c.lineStart.Add(mt)
	}
}

// consume handles the n bytes one read brought into buf: each message is decided when it
// starts, then echoed or dropped piece by piece. closed reports that the connection was closed,
// and reason why.
func (c *conn) consume(ctx context.Context, buf []byte, n int) (reason string, closed bool) {
	maxLine := c.s.cfg.MaxLineLength
	var arrived time.Time // what delayed replies count from
	if c.out != nil {
		arrived = time.Now()
	}
	// Echoed bytes are gathered at the front of buf (w never passes off), so that one read
	// costs one write.
	w := 0
	for off := 0; off < n; {
		end, complete, start := c.fr.next(buf[off:n])
		end += off
		piece := buf[off:end]
		if start && c.fr.n <= maxLine {
			// A message is counted when it starts; one too long from its first piece is not
			// a message but the reason the connection ends.
			c.fr.inMsg = true
			c.dec = c.s.model.Decide()
			c.message(piece)
		}
		if c.fr.n > maxLine {
			c.flush(buf[:w], arrived, c.dec.Delay)
			reason = fmt.Sprintf("line too long (over %d bytes)", maxLine)
			c.finish(ctx, []byte(errorWord+" "+reason+"\n"), arrived, 0, buf)
			return reason, true
		}
		if c.dec.Verdict == impair.Drop {
			if reason, closed := c.drop(ctx, buf[:w], complete, arrived, buf); closed {
				return reason, true
			}
		} else {
			c.s.answer(piece, start && complete, c.addr.Addr())
			w += copy(buf[w:], piece)
			if c.out != nil {
				// Each message keeps its own delay: send what is gathered now.
				c.flush(buf[:w], arrived, c.dec.Delay)
				w = 0
			}
		}
		c.fr.done(complete, end == n && n < len(buf))
		off = end
	}
	if !c.flush(buf[:w], arrived, c.dec.Delay) {
		c.finish(ctx, nil, time.Time{}, 0, nil)
		return "write failed", true
	}
	return "", false
}

// drop applies the drop mode to a piece of a dropped message, after the echoes gathered before
// it; closed reports that the mode closed the connection (LOST, close), reason why.
func (c *conn) drop(ctx context.Context, gathered []byte, complete bool, arrived time.Time, buf []byte) (reason string, closed bool) {
	switch c.s.cfg.DropMode {
	case DropLost:
		c.flush(gathered, arrived, c.dec.Delay)
		word := []byte(lostWord)
		if complete {
			word = append(word, '\n')
		}
		c.finish(ctx, word, arrived, c.s.cfg.Delay, buf)
		return "answered LOST", true
	case DropClose:
		c.flush(gathered, arrived, c.dec.Delay)
		c.finish(ctx, nil, arrived, 0, buf)
		return "dropped a message", true
	}
	return "", false // DropSilent: the piece is swallowed
}

// readFailed ends the connection after a read error (EOF included) and returns why the server
// closed it, or "".
func (c *conn) readFailed(ctx context.Context, err error, buf []byte) string {
	switch {
	case ctx.Err() != nil:
		c.finish(ctx, nil, time.Time{}, 0, nil)
		return "server shut down"
	case errors.Is(err, io.EOF):
		// The client is done sending; delayed echoes still go out before the close.
		c.finish(ctx, nil, time.Time{}, 0, nil)
		return ""
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason := fmt.Sprintf("idle for %v", c.s.cfg.IdleTimeout)
		if !c.lineDue.IsZero() && !time.Now().Before(c.lineDue) {
			reason = fmt.Sprintf("message not completed in %v", c.s.cfg.MessageTimeout)
		}
		c.finish(ctx, []byte(errorWord+" "+reason+"\n"), time.Now(), 0, buf)
		return reason
	}
	c.finish(ctx, nil, time.Time{}, 0, nil)
	return shortErr(err)
}

// message counts and logs a new message, given its first piece.
func (c *conn) message(piece []byte) {
	c.rec.received.Add(1)
	e := Event{Type: Message, Client: c.addr, Action: Echoed, Delay: c.dec.Delay}
	if c.dec.Verdict == impair.Drop {
		c.rec.dropped.Add(1)
		e.Action, e.Delay = Dropped, 0
		switch c.s.cfg.DropMode {
		case DropLost:
			e.Reason = "answered LOST"
		case DropSilent:
			e.Reason = "swallowed"
		case DropClose:
			e.Reason = "closed the connection"
		}
	} else {
		c.rec.echoed.Add(1)
	}
	if c.s.cfg.Log != nil {
		e.Data = bytes.TrimRight(piece, "\r\n")
		c.s.log(e)
	}
}

// flush sends data now, or hands it to the writer to send delay after arrived. It reports
// false when the connection failed.
func (c *conn) flush(data []byte, arrived time.Time, delay time.Duration) bool {
	if len(data) == 0 {
		return true
	}
	if c.out == nil {
		_, err := c.c.Write(data)
		return err == nil
	}
	due := arrived.Add(delay)
	if due.Before(c.lastDue) {
		// A stream keeps its order: a shorter delay cannot overtake a longer one before it.
		due = c.lastDue
	}
	c.lastDue = due
	select {
	case c.out <- delayed{due: due, data: bytes.Clone(data)}:
		return true
	case <-c.outDone:
		return false
	}
}

// writer sends the delayed replies, each at its time, until out is closed.
func (c *conn) writer(ctx context.Context) {
	defer close(c.outDone)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for d := range c.out {
		if wait := time.Until(d.due); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		// A reply held back longer than the deadline the reader last set must still go out.
		if idle := c.s.cfg.IdleTimeout; idle > 0 {
			_ = c.c.SetWriteDeadline(time.Now().Add(max(idle, lingerTimeout)))
		} else {
			_ = c.c.SetWriteDeadline(time.Time{})
		}
		if _, err := c.c.Write(d.data); err != nil {
			return
		}
	}
}

// finish ends the connection: it sends last (a "LOST" or an "ERROR" line, after delay, behind
// every delayed echo), then closes. With buf it closes gracefully (lingerClose); without, at once.
func (c *conn) finish(ctx context.Context, last []byte, arrived time.Time, delay time.Duration, buf []byte) {
	if len(last) > 0 {
		// The idle deadline may have passed already (it is why we are here); the last words
		// get a moment of their own.
		_ = c.c.SetWriteDeadline(time.Now().Add(lingerTimeout))
		c.flush(last, arrived, delay)
	}
	if c.out != nil {
		close(c.out)
		select {
		case <-c.outDone:
		case <-ctx.Done():
		}
	}
	if buf == nil || ctx.Err() != nil {
		if tc, ok := c.c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_ = c.c.Close()
		return
	}
	lingerClose(c.c, buf)
}

// lingerClose closes c after our last words: it sends a FIN, then reads and discards what the
// client still sends (for up to lingerTimeout and lingerBytes) before it closes. Closing a
// socket with unread input makes the kernel send a reset, which can destroy the "LOST" or
// "ERROR" line before the client reads it.
func lingerClose(c net.Conn, buf []byte) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
	for total := 0; total < lingerBytes; {
		n, err := c.Read(buf)
		total += n
		if err != nil {
			break
		}
	}
	_ = c.Close()
}

// shortErr returns the words of a connection error without the addresses net.OpError adds.
func shortErr(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
