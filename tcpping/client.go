package tcpping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/sock"
)

// DefaultTimeout bounds a connect (and a per-ping connection's wait) when Config.Timeout is 0.
const DefaultTimeout = time.Second

// A ConnectMode says how the client uses connections.
type ConnectMode uint8

// The connect modes. The zero value is pinglab's default.
const (
	// ConnectKeep sends every ping over one connection, and connects again after the server
	// answered LOST or closed it.
	ConnectKeep ConnectMode = iota
	// ConnectPerPing opens a new connection for each ping, as the handout's client does, and
	// reports how long each connect took.
	ConnectPerPing
)

var connectModeNames = [...]string{ConnectKeep: "keep", ConnectPerPing: "per-ping"}

// String returns the mode's name as --connect takes it.
func (m ConnectMode) String() string {
	if int(m) < len(connectModeNames) {
		return connectModeNames[m]
	}
	return fmt.Sprintf("ConnectMode(%d)", m)
}

// ParseConnectMode parses "keep" or "per-ping".
func ParseConnectMode(s string) (ConnectMode, error) {
	for m, name := range connectModeNames {
		if s == name {
			return ConnectMode(m), nil
		}
	}
	return 0, fmt.Errorf("tcpping: %w, not %q", errBadConnectMode, s)
}

var (
	errBadConnectMode = errors.New("connect mode must be keep or per-ping")
	errSizeSmall      = pingmsg.ErrSizeSmall
	errSizeLarge      = fmt.Errorf("size above %d", MaxSize)
	errBadSeq         = errors.New("sequence number must be positive")
	errBadTimeout     = errors.New("timeout must not be negative")
)

// Config configures a Client.
type Config struct {
	// Addr is what to ping: "host", "host:port", "[v6]:port" or a bare IPv6 address. The port
	// defaults to DefaultPort.
	Addr string
	// Network is "tcp" (either family), "tcp4" (-4) or "tcp6" (-6); "" is "tcp".
	Network string
	// Size is the message of each ping in bytes, padded with a pattern, without the newline
	// that ends it: from MinSize to MaxSize; 0 means DefaultSize. As over UDP, the message is
	// never cut: a probe whose message is longer than Size sends it whole.
	Size int
	// Connect says whether pings share one connection or each opens its own.
	Connect ConnectMode
	// Timeout bounds each connect; a connect that takes longer is the probe's error,
	// "Connection timed out". A per-ping connection also waits twice as long for its echo
	// before the client closes it. Give it the probe timeout (-W); 0 means DefaultTimeout.
	Timeout time.Duration
	// LocalAddr, when valid, is the address the client's connections come from.
	LocalAddr netip.Addr
	// Socket holds the connections' TTL, TOS and interface; the zero value keeps the system's.
	Socket sock.Options
	// OneWay asks the server for one-way receipts (pinglab's extension, as over UDP): it needs
	// a Size of at least OneWaySize, the default then.
	OneWay bool
}

// A Client sends pings over TCP and reads their echoes, the server's "LOST" and the errors of
// its connections. It implements probe.Transport: Send and Receive may be called at the same
// time, from one goroutine each.
//
// Replies are timed with the client's clock right after the read that brought them returns
// (a TCP socket's kernel receive timestamps would need recvmsg on the raw descriptor, beside
// the runtime's poller; the difference on loopback is a few microseconds).
//
// In per-ping mode Send connects before it sends, so a probe's time is the echo's round trip,
// as in keep mode, and Packet.Connect says how long the connect took; Send waits for the
// connect for up to Config.Timeout, which holds the schedule back only when the target does
// not answer at all.
type Client struct {
	cfg    Config
	remote netip.AddrPort
	from   string
	v6     bool
	size   int
	sbuf   []byte // Send's
	id     uint64 // the run's, in one-way requests

	life   context.Context // ends with Close
	cancel context.CancelFunc
	rx     chan probe.Packet
	wg     sync.WaitGroup

	mu      sync.Mutex
	cur     *stream // keep mode: the connection pings go over, nil when there is none
	streams map[*stream]struct{}
}

var _ probe.Transport = (*Client)(nil)

// A stream is one connection and what was sent over it that has no answer yet.
type stream struct {
	c           net.Conn
	connect     time.Duration // per-ping: how long the connect took
	outstanding []int         // seqs sent and not answered, oldest first; guarded by Client.mu
	answered    bool          // per-ping: its ping had its answer; guarded by Client.mu
}

// Dial resolves cfg.Addr and returns a Client for it. It does not connect yet: each probe
// connects when it needs to, so that a server that is down (or comes up later) is reported
// probe by probe.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	size, err := pingmsg.ClientSize(cfg.Size, MaxSize, cfg.OneWay, errSizeLarge)
	if err != nil {
		return nil, fmt.Errorf("tcpping: %w", err)
	}
	if int(cfg.Connect) >= len(connectModeNames) {
		return nil, fmt.Errorf("tcpping: %w, not %d", errBadConnectMode, cfg.Connect)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("tcpping: %w", errBadTimeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	remote, err := Resolve(ctx, cfg.Network, cfg.Addr)
	if err != nil {
		return nil, err
	}
	life, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg:     cfg,
		remote:  remote,
		from:    remote.String(),
		v6:      remote.Addr().Is6(),
		size:    size,
		sbuf:    make([]byte, 0, size+32),
		id:      rand.Uint64(),
		life:    life,
		cancel:  cancel,
		rx:      make(chan probe.Packet, 64),
		streams: make(map[*stream]struct{}),
	}, nil
}

// RemoteAddr returns the address pinged.
func (c *Client) RemoteAddr() netip.AddrPort { return c.remote }

// Size returns the message size of a ping, without its newline.
func (c *Client) Size() int { return c.size }

// Close closes every connection and stops the client's readers.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	for st := range c.streams {
		_ = st.c.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// Send sends ping seq and returns the time it left, the time written in it. A failure to
// connect or to send is the probe's *icmperr.Error ("Connection refused" ...).
func (c *Client) Send(ctx context.Context, seq int) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	if seq <= 0 {
		return time.Time{}, fmt.Errorf("tcpping: %w, not %d", errBadSeq, seq)
	}
	if c.cfg.Connect == ConnectPerPing {
		st, err := c.dial(ctx)
		if err != nil {
			return time.Time{}, err
		}
		at, _, err := c.write(st, seq)
		return at, err
	}
	// A kept connection may have died while it was idle (the server's idle timeout, a
	// restart); a write that finds it so goes once more over a new one.
	for try := 0; ; try++ {
		c.mu.Lock()
		st := c.cur
		c.mu.Unlock()
		fresh := st == nil
		if fresh {
			var err error
			if st, err = c.dial(ctx); err != nil {
				return time.Time{}, err
			}
			c.mu.Lock()
			c.cur = st
			c.mu.Unlock()
		}
		at, retry, err := c.write(st, seq)
		if err == nil || !retry || fresh || try > 0 {
			return at, err
		}
	}
}

// dial connects a new stream and starts its reader.
func (c *Client) dial(ctx context.Context) (*stream, error) {
	d := net.Dialer{Timeout: c.cfg.Timeout, Control: c.cfg.Socket.Control(nil)}
	if c.cfg.LocalAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: c.cfg.LocalAddr.AsSlice(), Zone: c.cfg.LocalAddr.Zone()}
	}
	network := "tcp4"
	if c.v6 {
		network = "tcp6"
	}
	start := time.Now()
	nc, err := d.DialContext(ctx, network, c.from)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("tcpping: connect to %s: %w", c.from, c.connErr(err))
	}
	st := &stream{c: nc}
	if c.cfg.Connect == ConnectPerPing {
		st.connect = time.Since(start)
		// A per-ping connection lives for one echo; it need not outlast twice the timeout.
		_ = nc.SetReadDeadline(start.Add(2 * c.cfg.Timeout))
	}
	c.mu.Lock()
	if c.life.Err() != nil {
		c.mu.Unlock()
		_ = nc.Close()
		return nil, net.ErrClosed
	}
	c.streams[st] = struct{}{}
	c.wg.Add(1)
	c.mu.Unlock()
	go c.read(st)
	return st, nil
}

// write sends ping seq over st. When it fails it reports whether the ping may go again over a
// new connection: it may when st's reader has not yet reported it lost.
func (c *Client) write(st *stream, seq int) (time.Time, bool, error) {
	c.mu.Lock()
	st.outstanding = append(st.outstanding, seq)
	c.mu.Unlock()
	now := time.Now()
	c.sbuf = c.message(seq, now)
	_ = st.c.SetWriteDeadline(now.Add(c.cfg.Timeout))
	_, err := st.c.Write(c.sbuf)
	if err == nil {
		return now, false, nil
	}
	c.mu.Lock()
	i := slices.Index(st.outstanding, seq)
	if i >= 0 {
		st.outstanding = slices.Delete(st.outstanding, i, i+1)
	}
	if c.cur == st {
		c.cur = nil
	}
	c.mu.Unlock()
	_ = st.c.Close()
	if i < 0 {
		// The reader already reported the ping lost with its connection: that is its answer.
		return now, false, nil
	}
	return now, true, fmt.Errorf("tcpping: send ping %d: %w", seq, c.connErr(err))
}

// Receive returns the next echo, "LOST" or connection error for some probe.
func (c *Client) Receive(ctx context.Context) (probe.Packet, error) {
	select {
	case p := <-c.rx:
		return p, nil
	case <-ctx.Done():
		return probe.Packet{}, ctx.Err()
	case <-c.life.Done():
		return probe.Packet{}, fmt.Errorf("tcpping: %w", net.ErrClosed)
	}
}

func (c *Client) deliver(p probe.Packet) {
	select {
	case c.rx <- p:
	case <-c.life.Done():
	}
}

// read reads st's replies line by line until the connection ends, and then reports what was
// left unanswered on it.
func (c *Client) read(st *stream) {
	defer c.wg.Done()
	// Room for the longest echo of our own pings; a longer line is judged by its start.
	buf := make([]byte, max(c.size+64, 256))
	start, end := 0, 0
	skip := false // the rest of an overlong line is being skipped
	for {
		n, err := st.c.Read(buf[end:])
		at := time.Now()
		end += n
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			if !skip {
				c.line(st, buf[start:start+i], at)
			}
			skip = false
			start += i + 1
		}
		switch {
		case start == end:
			start, end = 0, 0
		case end == len(buf) && start > 0:
			end = copy(buf, buf[start:end])
			start = 0
		case end == len(buf):
			if !skip {
				c.line(st, buf[:end], at)
			}
			skip = true
			start, end = 0, 0
		}
		if err != nil {
			if end > start && !skip {
				// The handout's server sends "LOST" with no newline before it closes.
				c.line(st, buf[start:end], at)
			}
			c.ended(st, err)
			return
		}
		c.mu.Lock()
		done := st.answered && len(st.outstanding) == 0
		c.mu.Unlock()
		if done {
			c.ended(st, nil)
			return
		}
	}
}

// line handles one line from the server: an echo, "LOST" or "ERROR ...".
func (c *Client) line(st *stream, line []byte, at time.Time) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if seq, ok := pingmsg.ParseSeq(line); ok {
		c.mu.Lock()
		if i := slices.Index(st.outstanding, seq); i >= 0 {
			st.outstanding = slices.Delete(st.outstanding, i, i+1)
			st.answered = c.cfg.Connect == ConnectPerPing
		}
		c.mu.Unlock()
		c.deliver(probe.Packet{
			Seq: seq, Kind: probe.KindReply, Time: at, Bytes: len(line), From: c.from,
			Data: bytes.Clone(line), Connect: st.connect, Receipt: c.receipt(line),
		})
		return
	}
	if p, ok := c.status(line, at); ok {
		c.deliver(p)
		return
	}
	lost := isWord(line, lostWord)
	serverErr := isWord(line, errorWord)
	if !lost && !serverErr {
		return // not an echo of ours, nor a word of the server's
	}
	// The server answers in order, so its word is about the oldest ping it has not answered;
	// and it closes the connection after it, so no more pings go over this one.
	c.mu.Lock()
	seq := 0
	if len(st.outstanding) > 0 {
		seq = st.outstanding[0]
		st.outstanding = st.outstanding[1:]
		st.answered = true
	}
	if c.cur == st {
		c.cur = nil
	}
	c.mu.Unlock()
	if seq == 0 {
		return // an idle connection told why it is closed
	}
	p := probe.Packet{Seq: seq, Time: at, From: c.from, Connect: st.connect}
	if lost {
		p.Kind, p.Reason = probe.KindLost, "server answered LOST"
	} else {
		p.Kind = probe.KindError
		p.Err = &icmperr.Error{V6: c.v6, Type: icmperr.NoICMP, From: c.remote.Addr(),
			Reason: "Server: " + serverText(bytes.TrimSpace(line[len(errorWord):]))}
	}
	c.deliver(p)
}

// maxServerText bounds what of a server's words a Reason carries.
const maxServerText = 200

// serverText is what a server said, fit for a terminal, a log or a CSV cell: printable ASCII
// as it is, anything else (control characters, escape sequences, invalid UTF-8) quoted as
// strconv.Quote does, as the UDP server's log shows a datagram; past maxServerText bytes it is
// cut and ends in "...".
func serverText(b []byte) string {
	cut := len(b) > maxServerText
	if cut {
		b = b[:maxServerText]
	}
	s := string(b)
	for _, ch := range b {
		if ch < ' ' || ch > '~' {
			s = strconv.Quote(s)
			break
		}
	}
	if cut {
		s += " ..."
	}
	return s
}

// isWord reports whether line is word (in any case), alone or followed by a space.
func isWord(line []byte, word string) bool {
	return len(line) >= len(word) && bytes.EqualFold(line[:len(word)], []byte(word)) &&
		(len(line) == len(word) || line[len(word)] == ' ')
}

// ended closes st and reports every ping still unanswered on it: lost when the server closed
// the connection, the connection's error when it failed. err nil means the client is done.
func (c *Client) ended(st *stream, err error) {
	c.mu.Lock()
	left := st.outstanding
	st.outstanding = nil
	if c.cur == st {
		c.cur = nil
	}
	delete(c.streams, st)
	c.mu.Unlock()
	_ = st.c.Close()
	if err == nil || c.life.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		// Done, closing, or a per-ping connection that waited long enough: the engine has
		// timed its probe out already.
		return
	}
	for _, seq := range left {
		p := probe.Packet{Seq: seq, From: c.from, Connect: st.connect}
		if errors.Is(err, io.EOF) {
			p.Kind, p.Reason = probe.KindLost, "connection closed by server"
		} else {
			p.Kind, p.Err = probe.KindError, c.connErr(err)
		}
		c.deliver(p)
	}
}

// connErr maps a connection's error onto the ICMP vocabulary: refused, reset and timed out
// keep their words and name the target; host and net unreachable become the ICMP errors that
// cause them, from a sender a TCP socket does not tell.
func (c *Client) connErr(err error) *icmperr.Error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &icmperr.Error{V6: c.v6, Type: icmperr.NoICMP, From: c.remote.Addr(),
			Errno: syscall.ETIMEDOUT, Reason: "Connection timed out"}
	}
	if e := icmperr.FromErrno(err, c.v6, c.remote.Addr()); e != nil {
		if e.Type != icmperr.NoICMP {
			e.From = netip.Addr{}
		}
		return e
	}
	if errors.Is(err, syscall.EPIPE) {
		return &icmperr.Error{V6: c.v6, Type: icmperr.NoICMP, From: c.remote.Addr(),
			Errno: syscall.EPIPE, Reason: "Connection closed by server"}
	}
	return &icmperr.Error{V6: c.v6, Type: icmperr.NoICMP, From: c.remote.Addr(), Reason: sock.Capitalize(shortErr(err))}
}
