package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pinglab/pinglab/internal/stats"
)

// TestCSVRoundTrip: a run written as CSV and read back gives the statistics of the live run.
func TestCSVRoundTrip(t *testing.T) {
	for name, sc := range scenarios {
		t.Run(name, func(t *testing.T) {
			run, err := ReadCSV(bytes.NewReader(renderCSV(t, sc)), name+".csv")
			if err != nil {
				t.Fatal(err)
			}
			if run.Name != name+".csv" || run.Proto != sc.h.Proto || run.Target != sc.h.Target {
				t.Errorf("run is %q %q %q, want %q %q %q", run.Name, run.Proto, run.Target,
					name+".csv", sc.h.Proto, sc.h.Target)
			}
			if diff := cmp.Diff(summary(sc.events), run.Summary()); diff != "" {
				t.Errorf("Summary() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadCSVRows(t *testing.T) {
	run, err := ReadCSV(strings.NewReader(
		"\ufeffseq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error\n"+
			"1,1767323045.000123,reply,0.123456789,64,10.0.0.2,,,icmp,server.lab,\n"+
			"2,,error,,,10.0.0.1,3,1,icmp,server.lab,Destination Host Unreachable\n"+
			"3,1767323047,lost,,,,,,icmp,server.lab,\"server said \"\"LOST\"\", then closed\"\n"), "run.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := Run{Name: "run.csv", Proto: "icmp", Target: "server.lab", Rows: []Row{
		{Seq: 1, Sent: time.Unix(1767323045, 123000), Status: StatusReply, RTT: 123456 * time.Nanosecond,
			TTL: 64, From: "10.0.0.2", ICMPType: -1, ICMPCode: -1},
		{Seq: 2, Status: StatusError, From: "10.0.0.1", ICMPType: 3, ICMPCode: 1, Error: "Destination Host Unreachable"},
		{Seq: 3, Sent: time.Unix(1767323047, 0), Status: StatusLost, ICMPType: -1, ICMPCode: -1,
			Error: `server said "LOST", then closed`},
	}}
	if diff := cmp.Diff(want, run, cmpopts.EquateComparable(time.Time{})); diff != "" {
		t.Errorf("ReadCSV (-want +got):\n%s", diff)
	}
	evs := run.Events()
	if len(evs) != 6 || evs[3].Err == nil || evs[3].Err.Words() != "Destination Host Unreachable" {
		t.Errorf("Events() = %+v, want sent+reply, sent+error (host unreachable), sent+lost", evs)
	}
	if got := run.Summary(); got.Transmitted != 3 || got.Received != 1 || got.Errors != 1 || got.Lost != 1 {
		t.Errorf("Summary() = %+v, want 3 sent, 1 received, 1 error, 1 lost", got)
	}
}

func TestReadCSVErrors(t *testing.T) {
	const header = "seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error\n"
	const ok = "1,1767323045.000000,reply,0.500000,,127.0.0.1:12000,,,udp,127.0.0.1,\n"
	tests := []struct{ name, in, want string }{
		{"empty", "", "run.csv: empty file: not a pinglab CSV"},
		{"other csv", "a,b,c\n1,2,3\n", `run.csv:1: not a pinglab CSV: header is "a,b,c", want "seq,sent_unix,`},
		{"missing column", "seq,sent_unix,status\n", `run.csv:1: not a pinglab CSV: header is "seq,sent_unix,status"`},
		{"binary", "\x00\x01\x02", `run.csv:1: not a pinglab CSV: header is "\x00\x01\x02"`},
		{"few fields", header + ok + "2,1,reply\n", "run.csv:3: 3 fields, want 11"},
		{"bad quote", header + ok + "2,\"1767323045,reply\n", "run.csv:3: extraneous or missing \" in quoted-field"},
		{"bad rtt", header + ok + "2,1767323046.000000,reply,abc,,,,,udp,127.0.0.1,\n", `run.csv:3: rtt_ms "abc" is not a number`},
		{"negative rtt", header + "1,1,reply,-1,,,,,udp,127.0.0.1,\n", `run.csv:2: rtt_ms "-1" is not a number`},
		{"huge rtt", header + "1,1,reply,99999999999999999,,,,,udp,127.0.0.1,\n", `run.csv:2: rtt_ms "99999999999999999" is not a number`},
		{"reply without rtt", header + "1,1,reply,,,,,,udp,127.0.0.1,\n", "run.csv:2: rtt_ms is empty on a reply row"},
		{"timeout with rtt", header + "1,1,timeout,3,,,,,udp,127.0.0.1,\n", `run.csv:2: rtt_ms "3" on a timeout row, which has none`},
		{"bad seq", header + "0,1,timeout,,,,,,udp,127.0.0.1,\n", `run.csv:2: seq "0" is not a positive integer`},
		{"bad sent", header + "1,yesterday,timeout,,,,,,udp,127.0.0.1,\n", `run.csv:2: sent_unix "yesterday" is not a Unix time in seconds`},
		{"bad status", header + "1,1,pong,,,,,,udp,127.0.0.1,\n", `run.csv:2: status "pong" is not one of reply, duplicate, late, timeout, lost, error, unanswered`},
		{"bad ttl", header + "1,1,reply,1,300,,,,udp,127.0.0.1,\n", `run.csv:2: ttl "300" is not a number from 0 to 255`},
		{"half icmp", header + "1,1,error,,,,3,,udp,127.0.0.1,x\n", `run.csv:2: icmp_type "3" and icmp_code "": give both or neither`},
		{"bad icmp", header + "1,1,error,,,,3,x,udp,127.0.0.1,x\n", `run.csv:2: icmp_code "x" is not a number from 0 to 255`},
		{"bad proto", header + "1,1,timeout,,,,,,sctp,127.0.0.1,\n", `run.csv:2: proto "sctp" is not udp, tcp or icmp`},
		{"no target", header + "1,1,timeout,,,,,,udp,,\n", "run.csv:2: target is empty"},
		{"two replies", header + ok + ok, "run.csv:3: seq 1 has a second reply row (the first is on line 2)"},
		{"two runs", header + ok + "2,1,timeout,,,,,,tcp,127.0.0.1,\n", `run.csv:3: proto "tcp" target "127.0.0.1" differ from line 2's ("udp" "127.0.0.1"): one run per file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tt.in), "run.csv")
			if err == nil {
				t.Fatalf("ReadCSV succeeded, want an error starting %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ReadCSV error:\n%s\nwant it to start with\n%s", err, tt.want)
			}
		})
	}
}

func TestReadCSVHeaderOnly(t *testing.T) {
	var b bytes.Buffer
	if err := NewCSV(&b, Header{Proto: "udp", Target: "h"}).Flush(); err != nil {
		t.Fatal(err)
	}
	run, err := ReadCSV(&b, "empty.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Rows) != 0 || run.Summary() != (stats.Summary{}) {
		t.Errorf("run of a header only = %+v, want no rows and empty statistics", run)
	}
}

func TestParseDecimal(t *testing.T) {
	for _, tt := range []struct {
		s     string
		scale int
		want  int64
		ok    bool
	}{
		{"0", 6, 0, true}, {"1.5", 6, 1500000, true}, {"0.1234567", 6, 123456, true}, {"12", 0, 12, true},
		{"9223372036854.775807", 6, 1<<63 - 1, true}, {"9223372036854.775808", 6, 0, false},
		{"", 6, 0, false}, {".5", 6, 0, false}, {"5.", 6, 0, false}, {"1e3", 6, 0, false}, {"+1", 6, 0, false},
		{"1.2.3", 6, 0, false}, {" 1", 6, 0, false}, {"NaN", 6, 0, false},
	} {
		got, ok := parseDecimal(tt.s, tt.scale)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseDecimal(%q, %d) = %d, %v, want %d, %v", tt.s, tt.scale, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzReadCSV: no input makes ReadCSV panic, and what it accepts is well formed and replays.
func FuzzReadCSV(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join(goldenDir, "*.csv"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no CSV seeds in %s (%v)", goldenDir, err)
	}
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(""))
	f.Add([]byte("seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error\n\"unterminated"))
	f.Fuzz(func(t *testing.T, data []byte) {
		run, err := ReadCSV(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		for _, row := range run.Rows {
			if row.Seq < 1 || row.RTT < 0 || row.TTL < 0 || row.TTL > 255 || row.ICMPType > 255 || row.ICMPCode > 255 {
				t.Errorf("accepted a bad row %+v", row)
			}
		}
		s := run.Summary()
		if s.Received > s.Transmitted || s.Loss < 0 || s.Loss > 100 {
			t.Errorf("summary %+v of an accepted file is inconsistent", s)
		}
	})
}

// zeros is an endless stream of NUL bytes, as /dev/zero is.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// rows is an endless stream of a header and valid rows.
type rows struct{ buf []byte }

func (r *rows) Read(p []byte) (int, error) {
	if r.buf == nil {
		r.buf = []byte("seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error,direction\n")
	}
	for len(r.buf) < len(p) {
		r.buf = append(r.buf, "1,1,timeout,,,,,,udp,127.0.0.1,,\n"...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// TestReadCSVBounds checks the line and file bounds: a long line, an endless line (/dev/zero)
// and an endless file each fail naming the file and the line, having read little more than
// the bound.
func TestReadCSVBounds(t *testing.T) {
	defer func(l, b int) { maxCSVLine, maxCSVBytes = l, b }(maxCSVLine, maxCSVBytes)
	maxCSVBytes = 1 << 20
	const header = "seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error\n"
	tests := []struct {
		name string
		in   io.Reader
		want string
		is   error
	}{
		{"long line", strings.NewReader(header + "1,1,timeout,,,,,,udp," + strings.Repeat("x", 20000) + ",\n"),
			"run.csv:2: line too long: over 16384 bytes (a pinglab CSV row is a few hundred)", errLineTooLong},
		{"endless line", zeros{}, "run.csv:1: line too long: over 16384 bytes", errLineTooLong},
		{"endless file", &rows{}, "run.csv:", errFileTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadCSV(io.LimitReader(tt.in, 64<<20), "run.csv")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, tt.is) {
				t.Fatalf("ReadCSV error %v, want %v starting %q", err, tt.is, tt.want)
			}
		})
	}
	// The endless file fails on the line that passes the bound, after maxCSVBytes.
	_, err := ReadCSV(&rows{}, "run.csv")
	var line int
	if _, serr := fmt.Sscanf(err.Error(), "run.csv:%d:", &line); serr != nil || line < maxCSVBytes/40 || line > maxCSVBytes/30 {
		t.Errorf("endless file: %v, want the line near the %d MiB bound", err, maxCSVBytes>>20)
	}
}

// FuzzReadCSVBounded reads any input under small bounds: what ReadCSV accepts has no line and
// no total past them, and every error names the file.
func FuzzReadCSVBounded(f *testing.F) {
	defer func(l, b int) { maxCSVLine, maxCSVBytes = l, b }(maxCSVLine, maxCSVBytes)
	maxCSVLine, maxCSVBytes = 200, 2000
	seeds, _ := filepath.Glob(filepath.Join(goldenDir, "*.csv"))
	for _, path := range seeds {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error\n1,1,timeout,,,,,,udp,\"a\nb\",\n"))
	f.Add(bytes.Repeat([]byte{0}, 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ReadCSV(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if len(data) > maxCSVBytes {
			t.Errorf("accepted %d bytes, over the bound %d", len(data), maxCSVBytes)
		}
		for i, l := range bytes.Split(data, []byte("\n")) {
			if len(l) > maxCSVLine {
				t.Errorf("accepted line %d of %d bytes, over the bound %d", i+1, len(l), maxCSVLine)
			}
		}
	})
}

// TestMarkdownCell checks that what a CSV's target may hold (a quoted newline, a pipe, an
// escape sequence, invalid UTF-8) stays inside its cell of the Markdown table.
func TestMarkdownCell(t *testing.T) {
	var b strings.Builder
	if err := writeMarkdown(&b, [][]string{{"run", "udp", "a\nb|c\r\x1b[2J\xffé\uFFFD"}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table of one row has %d lines:\n%s", len(lines), b.String())
	}
	if want := `| run | udp | a\nb\|c\r\x1b[2J\xffé` + "\uFFFD" + ` |`; lines[2] != want {
		t.Errorf("row %q, want %q", lines[2], want)
	}
}
