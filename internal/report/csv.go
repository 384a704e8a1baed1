package report

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// csvColumns is pinglab's CSV header, exactly; ReadCSV takes it as the mark of a pinglab file.
// proto and target repeat on every row so that a row keeps its meaning when files are joined.
var csvColumns = []string{
	"seq", "sent_unix", "status", "rtt_ms", "ttl", "from", "icmp_type", "icmp_code", "proto", "target", "error",
	"direction",
}

// oldColumns is the header before the direction column; ReadCSV still reads such files.
var oldColumns = csvColumns[:len(csvColumns)-1]

const (
	colSeq = iota
	colSent
	colStatus
	colRTT
	colTTL
	colFrom
	colICMPType
	colICMPCode
	colProto
	colTarget
	colError
	// colDirection is where a timed-out probe was lost: "outbound", "inbound" or "unknown",
	// with pinglab's one-way extension; empty otherwise.
	colDirection
)

// A Status is what a CSV row records about its probe.
type Status string

// The statuses of CSV rows. A probe has one row with its outcome (reply, timeout, lost, error, or
// unanswered when the run ended first); duplicate and late replies get rows of their own.
const (
	StatusReply      Status = "reply"
	StatusDuplicate  Status = "duplicate"
	StatusLate       Status = "late"
	StatusTimeout    Status = "timeout"
	StatusLost       Status = "lost"
	StatusError      Status = "error"
	StatusUnanswered Status = "unanswered"
)

var statuses = []Status{StatusReply, StatusDuplicate, StatusLate, StatusTimeout, StatusLost, StatusError, StatusUnanswered}

// timed reports whether rows of status s carry an RTT.
func (s Status) timed() bool {
	return s == StatusReply || s == StatusDuplicate || s == StatusLate
}

// A CSV writes one row per probe outcome as it happens (--csv FILE). Each row is flushed to the
// writer at once, so that a file being written can be watched and an interrupted run keeps
// every row written so far. Safe for concurrent use.
type CSV struct {
	mu      sync.Mutex
	w       *csv.Writer
	h       Header
	pending map[int]time.Time // sent, no outcome yet
	err     error
	// With one-way receipts asked for, a timeout row waits in held for the probe's direction,
	// which the engine tells a few probes later. Replies without a receipt (a plain server)
	// end the waiting: plain is then set and rows go out at once.
	held   map[int][]string
	noRcpt int
	plain  bool
}

// maxHeld bounds the timeout rows waiting for their direction; past it the oldest is written
// without one.
const maxHeld = 4096

// plainAfter is how many replies without a receipt show a server that does not keep the
// extension.
const plainAfter = 3

// NewCSV writes the header row to w and returns the writer of the rows.
func NewCSV(w io.Writer, h Header) *CSV {
	c := &CSV{w: csv.NewWriter(w), h: h, pending: map[int]time.Time{}, held: map[int][]string{}}
	c.write(csvColumns)
	return c
}

// Event writes the row of one event; EventSent writes none (its time goes in the outcome's row).
func (c *CSV) Event(ev probe.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Type == probe.EventSent {
		c.pending[ev.Seq] = ev.Sent
		return
	}
	if ev.Type == probe.EventDirection {
		if row, ok := c.held[ev.Seq]; ok {
			delete(c.held, ev.Seq)
			row[colDirection] = ev.Dir.String()
			c.row(row)
		}
		return
	}
	if ev.Type == probe.EventReply && ev.Receipt == nil && c.h.OneWay && !c.plain {
		if c.noRcpt++; c.noRcpt >= plainAfter {
			c.plain = true
			c.writeHeld()
		}
	}
	row := make([]string, len(csvColumns))
	row[colSeq] = strconv.Itoa(ev.Seq)
	if !ev.Sent.IsZero() {
		row[colSent] = unixMicros(ev.Sent)
	}
	row[colFrom] = ev.From
	switch ev.Type {
	case probe.EventReply, probe.EventDuplicate, probe.EventLate:
		row[colStatus] = ev.Type.String()
		row[colRTT] = msec6(max(ev.RTT, 0))
		if ev.TTL > 0 {
			row[colTTL] = strconv.Itoa(ev.TTL)
		}
	case probe.EventTimeout:
		row[colStatus] = string(StatusTimeout)
	case probe.EventLost:
		row[colStatus] = string(StatusLost)
		row[colError] = ev.Reason
	case probe.EventError:
		row[colStatus] = string(StatusError)
		row[colFrom] = errFrom(ev, c.h)
		row[colError] = errWords(ev)
		if ev.Err != nil && ev.Err.Type != icmperr.NoICMP {
			row[colICMPType] = strconv.Itoa(ev.Err.Type)
			row[colICMPCode] = strconv.Itoa(ev.Err.Code)
		}
	default:
		return
	}
	if ev.Type != probe.EventDuplicate && ev.Type != probe.EventLate {
		delete(c.pending, ev.Seq)
	}
	if ev.Type == probe.EventTimeout && c.h.OneWay && !c.plain {
		if len(c.held) >= maxHeld {
			oldest := slices.Min(slices.Collect(maps.Keys(c.held)))
			c.row(c.held[oldest])
			delete(c.held, oldest)
		}
		c.held[ev.Seq] = row
		return
	}
	c.row(row)
}

// writeHeld writes the timeout rows still waiting for a direction, in seq order, without one.
func (c *CSV) writeHeld() {
	for _, seq := range slices.Sorted(maps.Keys(c.held)) {
		c.row(c.held[seq])
	}
	clear(c.held)
}

func (c *CSV) row(row []string) {
	row[colProto] = c.h.Proto
	row[colTarget] = c.h.Target
	c.write(row)
}

func (c *CSV) write(row []string) {
	if c.err != nil {
		return
	}
	if err := c.w.Write(row); err != nil {
		c.err = fmt.Errorf("report: csv: %w", err)
		return
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		c.err = fmt.Errorf("report: csv: %w", err)
	}
}

// Flush ends the file: it writes an "unanswered" row for each probe that was sent and had no
// outcome (a run interrupted while it waited), so that the file counts every probe sent, and
// returns the first write error. Call it once, after the run.
func (c *CSV) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeHeld()
	for _, seq := range slices.Sorted(maps.Keys(c.pending)) {
		row := make([]string, len(csvColumns))
		row[colSeq] = strconv.Itoa(seq)
		if sent := c.pending[seq]; !sent.IsZero() {
			row[colSent] = unixMicros(sent)
		}
		row[colStatus] = string(StatusUnanswered)
		c.row(row)
	}
	clear(c.pending)
	return c.err
}

// A Run is a pinglab CSV read back.
type Run struct {
	// Name is the name ReadCSV was given (the file's), to label the run.
	Name string
	// Proto and Target are the rows'; empty when the file has no rows.
	Proto, Target string
	Rows          []Row
}

// Label names the run in a figure or a table: its file name without the directory and ".csv".
func (run Run) Label() string {
	return strings.TrimSuffix(filepath.Base(run.Name), ".csv")
}

// A Row is one row of a pinglab CSV.
type Row struct {
	Seq int
	// Sent is when the probe left, to the microsecond; zero when the cell is empty.
	Sent   time.Time
	Status Status
	// RTT is set for reply, duplicate and late rows, to the nanosecond.
	RTT time.Duration
	// TTL is 0 when unknown.
	TTL  int
	From string
	// ICMPType and ICMPCode are the ICMP error's, -1 when the row has none.
	ICMPType, ICMPCode int
	// Error is the error's words or the loss's reason.
	Error string
	// Direction is where a timed-out probe was lost (pinglab's one-way extension), or 0.
	Direction probe.Direction
}

var errNotPinglab = errors.New("not a pinglab CSV")

// The bounds of what ReadCSV reads: a row of pinglab's is a few hundred bytes, and a day of a
// ping a second some 10 MB; past either bound the file is not a run pinglab wrote, and reading
// on would only hold memory.
// Variables, so that a test can lower them.
var (
	// maxCSVLine bounds one line of a CSV.
	maxCSVLine = 16 << 10
	// maxCSVBytes bounds a whole CSV.
	maxCSVBytes = 32 << 20
)

var (
	errLineTooLong = errors.New("line too long")
	errFileTooLong = errors.New("file too long")
)

// A boundedReader passes its reader's bytes on until a line passes maxCSVLine or the whole
// maxCSVBytes, and then fails, naming the line.
type boundedReader struct {
	r     io.Reader
	total int
	line  int // the line being read, from 1
	n     int // its bytes so far
	err   error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// Reading at most what is left of the file's bound keeps the check exact.
	p = p[:min(len(p), maxCSVBytes+1-b.total)]
	n, err := b.r.Read(p)
	for i, c := range p[:n] {
		if c == '\n' {
			b.line++
			b.n = 0
			continue
		}
		if b.n++; b.n > maxCSVLine {
			b.err = &lineError{b.line + 1, fmt.Errorf("%w: over %d bytes (a pinglab CSV row is a few hundred)", errLineTooLong, maxCSVLine)}
			return i, b.err
		}
	}
	if b.total += n; b.total > maxCSVBytes {
		b.err = &lineError{b.line + 1, fmt.Errorf("%w: over %d MiB, more than pinglab reads back", errFileTooLong, maxCSVBytes>>20)}
		return n, b.err
	}
	return n, err
}

// A lineError is a bound passed on a line of the file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("%d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// ReadCSV reads a CSV written by NewCSV. name is used in errors ("run.csv:7: ...") and as the
// run's Name. Anything that is not pinglab's, or is broken, is an error naming the line.
func ReadCSV(r io.Reader, name string) (Run, error) {
	run := Run{Name: name}
	cr := csv.NewReader(&boundedReader{r: r})
	cr.FieldsPerRecord = -1 // counted here, for a clearer message
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return run, fmt.Errorf("%s: empty file: %w", name, errNotPinglab)
	}
	if err != nil {
		return run, csvError(name, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a spreadsheet's byte order mark
	}
	columns := len(csvColumns)
	if slices.Equal(header, oldColumns) {
		columns = len(oldColumns)
	} else if !slices.Equal(header, csvColumns) {
		return run, fmt.Errorf("%s:1: %w: header is %q, want %q", name, errNotPinglab,
			truncate(strings.Join(header, ","), 120), strings.Join(csvColumns, ","))
	}
	firstLine := 0
	replied := map[int]int{} // seq -> line of its reply row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return run, nil
		}
		if err != nil {
			return run, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != columns {
			return run, fmt.Errorf("%s:%d: %d fields, want %d (%s)", name, line, len(rec), columns,
				strings.Join(csvColumns[:columns], ","))
		}
		if columns < len(csvColumns) {
			rec = append(rec, "")
		}
		row, err := parseRow(rec)
		if err != nil {
			return run, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		proto, target := rec[colProto], rec[colTarget]
		if firstLine == 0 {
			run.Proto, run.Target, firstLine = proto, target, line
		} else if proto != run.Proto || target != run.Target {
			return run, fmt.Errorf("%s:%d: proto %q target %q differ from line %d's (%q %q): one run per file",
				name, line, proto, truncate(target, 80), firstLine, run.Proto, truncate(run.Target, 80))
		}
		if row.Status == StatusReply {
			if first, ok := replied[row.Seq]; ok {
				return run, fmt.Errorf("%s:%d: seq %d has a second reply row (the first is on line %d); "+
					"a second reply is a duplicate", name, line, row.Seq, first)
			}
			replied[row.Seq] = line
		}
		run.Rows = append(run.Rows, row)
	}
}

func csvError(name string, err error) error {
	var le *lineError
	if errors.As(err, &le) {
		return fmt.Errorf("%s:%d: %w", name, le.line, le.err)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %w", name, pe.Line, pe.Err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func parseRow(rec []string) (Row, error) {
	row := Row{From: rec[colFrom], Error: rec[colError], ICMPType: -1, ICMPCode: -1}
	seq, err := strconv.Atoi(rec[colSeq])
	if err != nil || seq < 1 {
		return row, fmt.Errorf("seq %q is not a positive integer", truncate(rec[colSeq], 40))
	}
	row.Seq = seq
	if s := rec[colSent]; s != "" {
		ns, ok := parseDecimal(s, 9)
		if !ok {
			return row, fmt.Errorf("sent_unix %q is not a Unix time in seconds", truncate(s, 40))
		}
		row.Sent = time.Unix(0, ns)
	}
	row.Status = Status(rec[colStatus])
	if !slices.Contains(statuses, row.Status) {
		return row, fmt.Errorf("status %q is not one of %s", truncate(rec[colStatus], 40), statusList())
	}
	switch s := rec[colRTT]; {
	case s == "" && row.Status.timed():
		return row, fmt.Errorf("rtt_ms is empty on a %s row", row.Status)
	case s != "" && !row.Status.timed():
		return row, fmt.Errorf("rtt_ms %q on a %s row, which has none", truncate(s, 40), row.Status)
	case s != "":
		ns, ok := parseDecimal(s, 6)
		if !ok {
			return row, fmt.Errorf("rtt_ms %q is not a number", truncate(s, 40))
		}
		row.RTT = time.Duration(ns)
	}
	if s := rec[colTTL]; s != "" {
		ttl, err := strconv.Atoi(s)
		if err != nil || ttl < 0 || ttl > 255 {
			return row, fmt.Errorf("ttl %q is not a number from 0 to 255", truncate(s, 40))
		}
		row.TTL = ttl
	}
	typ, code := rec[colICMPType], rec[colICMPCode]
	if (typ == "") != (code == "") {
		return row, fmt.Errorf("icmp_type %q and icmp_code %q: give both or neither", truncate(typ, 40), truncate(code, 40))
	}
	if typ != "" {
		for _, f := range []struct {
			name, s string
			v       *int
		}{{"icmp_type", typ, &row.ICMPType}, {"icmp_code", code, &row.ICMPCode}} {
			n, err := strconv.Atoi(f.s)
			if err != nil || n < 0 || n > 255 {
				return row, fmt.Errorf("%s %q is not a number from 0 to 255", f.name, truncate(f.s, 40))
			}
			*f.v = n
		}
	}
	switch rec[colDirection] {
	case "":
	case "outbound":
		row.Direction = probe.Outbound
	case "inbound":
		row.Direction = probe.Inbound
	case "unknown":
		row.Direction = probe.Unknown
	default:
		return row, fmt.Errorf("direction %q is not outbound, inbound or unknown", truncate(rec[colDirection], 40))
	}
	if row.Direction != 0 && row.Status != StatusTimeout {
		return row, fmt.Errorf("direction %s on a %s row: only a timed-out probe has one", rec[colDirection], row.Status)
	}
	switch rec[colProto] {
	case "udp", "tcp", "icmp":
	default:
		return row, fmt.Errorf("proto %q is not udp, tcp or icmp", truncate(rec[colProto], 40))
	}
	if rec[colTarget] == "" {
		return row, errors.New("target is empty")
	}
	return row, nil
}

func statusList() string {
	names := make([]string, len(statuses))
	for i, s := range statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// parseDecimal reads a non-negative decimal "123" or "123.456" as an integer count of 10^-scale
// units, dropping digits beyond scale; ok is false for anything else or a value past int64.
func parseDecimal(s string, scale int) (int64, bool) {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") || !digits(whole) || !digits(frac) {
		return 0, false
	}
	if len(frac) > scale {
		frac = frac[:scale]
	}
	frac += strings.Repeat("0", scale-len(frac))
	var v int64
	for _, c := range whole + frac {
		d := int64(c - '0')
		if v > (1<<63-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// EventType returns the engine's event that a row of this status records; ok is false for
// StatusUnanswered, which records that no event came.
func (s Status) EventType() (t probe.EventType, ok bool) {
	switch s {
	case StatusReply:
		return probe.EventReply, true
	case StatusDuplicate:
		return probe.EventDuplicate, true
	case StatusLate:
		return probe.EventLate, true
	case StatusTimeout:
		return probe.EventTimeout, true
	case StatusLost:
		return probe.EventLost, true
	case StatusError:
		return probe.EventError, true
	}
	return 0, false
}

// Events replays the run as the engine's events: one EventSent per probe (at its first row) and
// one event per row but "unanswered". An error row's ICMP type and code come back; its address
// family is taken from its from address, and Words gives the row's words where the row has no
// ICMP type.
func (run Run) Events() []probe.Event {
	var evs []probe.Event
	seen := map[int]bool{}
	for _, row := range run.Rows {
		if !seen[row.Seq] {
			seen[row.Seq] = true
			evs = append(evs, probe.Event{Type: probe.EventSent, Seq: row.Seq, Sent: row.Sent, At: row.Sent})
		}
		typ, ok := row.Status.EventType()
		if !ok {
			continue
		}
		ev := probe.Event{Type: typ, Seq: row.Seq, Sent: row.Sent, From: row.From, TTL: row.TTL}
		switch typ {
		case probe.EventLost:
			ev.Reason = row.Error
		case probe.EventError:
			ev.Err = &icmperr.Error{Type: icmperr.NoICMP, Reason: row.Error}
			if row.ICMPType >= 0 {
				ev.Err.Type, ev.Err.Code = row.ICMPType, row.ICMPCode
				if a, ok := parseAddr(row.From); ok {
					ev.Err.From = a
					ev.Err.V6 = a.Is6() && !a.Is4In6()
				}
			}
		}
		if row.Status.timed() {
			ev.RTT = row.RTT
			ev.At = row.Sent.Add(row.RTT)
		}
		evs = append(evs, ev)
		if row.Direction != 0 {
			evs = append(evs, probe.Event{Type: probe.EventDirection, Seq: row.Seq, Sent: row.Sent, Dir: row.Direction})
		}
	}
	return evs
}

// parseAddr reads "10.0.0.1", "::1" or "[::1]:12000".
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

// Summary computes the run's statistics from its rows, as the live run computed them (RTTs are
// kept to the nanosecond and the statistics use whole microseconds, so nothing is lost).
func (run Run) Summary() stats.Summary {
	s := stats.New()
	for _, ev := range run.Events() {
		s.Add(ev)
	}
	return s.Summary()
}
