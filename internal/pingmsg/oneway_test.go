package pingmsg

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOneWayRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 2, 43, 123456789, time.Local)
	const id = 0x9f3a5c7e1b2d4f60
	req := AppendOneWay(nil, 7, at, id, OneWaySize)
	if got, want := string(req[:59]), "ping 7 2026-11-22 16:02:43.123456 owd? 9f3a5c7e1b2d4f60 abc"; got != want {
		t.Fatalf("request starts %q, want %q", got, want)
	}
	if len(req) != OneWaySize {
		t.Fatalf("request is %d bytes, want %d", len(req), OneWaySize)
	}
	if seq, ok := ParseSeq(req); !ok || seq != 7 {
		t.Fatalf("ParseSeq(request) = %d, %v: an extended request must still be an ordinary ping", seq, ok)
	}
	r, ok := ParseOneWayRequest(req)
	if !ok || r.Seq != 7 || r.ID != id {
		t.Fatalf("ParseOneWayRequest = %+v, %v", r, ok)
	}

	// The handout's server upper-cases and echoes: still a reply, but no receipt.
	plain := bytes.Clone(req)
	Upper(plain)
	if _, ok := ParseReceipt(plain); ok {
		t.Error("ParseReceipt took the handout's upper-cased echo for an answer")
	}
	if _, ok := ParseReceipt(req); ok {
		t.Error("ParseReceipt took a plain echo (socat) for an answer")
	}
	if seq, ok := ParseSeq(plain); !ok || seq != 7 {
		t.Errorf("ParseSeq(upper-cased echo) = %d, %v", seq, ok)
	}

	want := Receipt{ID: id, Received: time.Unix(0, 1763823763123987654), Count: 99999999,
		Highest: 99999999, Window: 0xfffffffffffffffe}
	ans := bytes.Clone(AppendOneWay(nil, 99999999, at, id, OneWaySize))
	q, _ := ParseOneWayRequest(ans)
	if !AnswerOneWay(ans, q, want) {
		t.Fatalf("AnswerOneWay: the largest answer does not fit in OneWaySize %d", OneWaySize)
	}
	if len(ans) != OneWaySize {
		t.Errorf("answer is %d bytes, want the request's %d", len(ans), OneWaySize)
	}
	if !bytes.Equal(ans, bytes.ToUpper(ans)) {
		t.Errorf("answer %q is not upper case", ans)
	}
	if seq, ok := ParseSeq(ans); !ok || seq != 99999999 {
		t.Errorf("ParseSeq(answer) = %d, %v", seq, ok)
	}
	got, ok := ParseReceipt(ans)
	if !ok {
		t.Fatalf("ParseReceipt(%q) failed", ans)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("receipt (-want +got):\n%s", diff)
	}

	// One byte short: echoed plainly, never longer than the request.
	short := AppendOneWay(nil, 99999999, at, id, OneWaySize)[:OneWaySize-1]
	q, _ = ParseOneWayRequest(short)
	if AnswerOneWay(short, q, want) {
		t.Error("AnswerOneWay wrote an answer longer than the request")
	}
	if _, ok := ParseReceipt(short); ok {
		t.Error("a request with no room got a receipt")
	}
}

func TestParseOneWayRequestRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"ping 1 2026-11-22 16:02:43.123456",
		"ping 1 2026-11-22 16:02:43.123456 abcdefghijklmnopqrstuvwxyz",
		"ping 1 2026-11-22 16:02:43.123456 owd? 12",
		"ping 1 2026-11-22 16:02:43.123456 owd? 9f3a5c7e1b2d4f6x",
		"ping 1 2026-11-22 16:02:43.123456 owd? 9f3a5c7e1b2d4f601",
		"ping x 2026-11-22 16:02:43.123456 owd? 9f3a5c7e1b2d4f60",
		"heartbeat 1 2026-11-22 16:02:43.123456 owd? 9f3a5c7e1b2d4f60",
	} {
		if r, ok := ParseOneWayRequest([]byte(in)); ok {
			t.Errorf("ParseOneWayRequest(%q) = %+v, want not a request", in, r)
		}
		if r, ok := ParseReceipt([]byte(in)); ok {
			t.Errorf("ParseReceipt(%q) = %+v, want not a receipt", in, r)
		}
	}
}

func TestStatusQuery(t *testing.T) {
	at := time.Now()
	q := AppendOneWay(nil, 0, at, 1, OneWaySize)
	if _, ok := ParseSeq(q); ok {
		t.Error("a status query parses as a ping: plain clients would take its echo for a reply")
	}
	r, ok := ParseOneWayRequest(q)
	if !ok || r.Seq != 0 {
		t.Fatalf("ParseOneWayRequest(status) = %+v, %v", r, ok)
	}
	if !ParseStatusSeq(q) {
		t.Error("ParseStatusSeq(status query) = false")
	}
	var l Ledger
	a := netip.MustParseAddr("10.0.0.1")
	l.Record(a, OneWayRequest{Seq: 1, ID: 1}, at)
	got := l.Record(a, r, at)
	if got.Count != 1 || got.Highest != 1 || got.Window != 1 {
		t.Errorf("status receipt = %+v, want the one request counted and the query not", got)
	}
}

func TestLedgerWindow(t *testing.T) {
	var l Ledger
	a := netip.MustParseAddr("::ffff:10.0.0.1")
	b := netip.MustParseAddr("10.0.0.1")
	now := time.Unix(1, 0)
	var last Receipt
	// 1..10 with 4 and 7 lost on the way, 9 arriving after 10.
	for _, seq := range []int{1, 2, 3, 5, 6, 8, 10, 9} {
		last = l.Record(a, OneWayRequest{Seq: seq, ID: 5}, now)
	}
	if last.Count != 8 || last.Highest != 10 {
		t.Fatalf("receipt %+v: want count 8, highest 10", last)
	}
	for seq := 1; seq <= 11; seq++ {
		arrived, known := last.Has(seq)
		want := seq != 4 && seq != 7 && seq != 11
		if !known || arrived != want {
			t.Errorf("Has(%d) = %v, %v; want %v, true", seq, arrived, known, want)
		}
	}
	// The mapped and the plain address are one client; another run id is another run.
	if r := l.Record(b, OneWayRequest{Seq: 11, ID: 5}, now); r.Count != 9 {
		t.Errorf("IPv4-mapped address made a second run: %+v", r)
	}
	if r := l.Record(b, OneWayRequest{Seq: 1, ID: 6}, now); r.Count != 1 {
		t.Errorf("a new run id shares a run: %+v", r)
	}
	// A jump beyond the window clears it.
	r := l.Record(b, OneWayRequest{Seq: 200, ID: 6}, now)
	if r.Window != 1 {
		t.Errorf("window after a jump of 199 = %x, want 1", r.Window)
	}
	if _, known := r.Has(200 - WindowBits); known {
		t.Errorf("Has(%d) known beyond the window", 200-WindowBits)
	}
}

func TestLedgerBound(t *testing.T) {
	var l Ledger
	a := netip.MustParseAddr("10.0.0.1")
	for id := range uint64(maxRuns + 10) {
		l.Record(a, OneWayRequest{Seq: 1, ID: id}, time.Time{})
	}
	if l.Len() != maxRuns {
		t.Errorf("ledger holds %d runs, want the bound %d", l.Len(), maxRuns)
	}
	// The newest survive, the oldest went.
	if r := l.Record(a, OneWayRequest{Seq: 2, ID: maxRuns + 9}, time.Time{}); r.Count != 2 {
		t.Errorf("newest run forgotten: %+v", r)
	}
	if r := l.Record(a, OneWayRequest{Seq: 2, ID: 0}, time.Time{}); r.Count != 1 {
		t.Errorf("oldest run kept: %+v", r)
	}
}

func TestHeartbeat(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	at := time.Date(2026, 11, 22, 16, 2, 43, 123456000, loc)
	msg := AppendHeartbeat(nil, 17, at)
	if got, want := string(msg), "heartbeat 17 2026-11-22 16:02:43.123456"; got != want {
		t.Fatalf("AppendHeartbeat = %q, want %q", got, want)
	}
	tests := []struct {
		in     string
		seq    int
		sent   time.Time
		wantOK bool
	}{
		{string(msg), 17, at, true},
		{"HEARTBEAT 17 2026-11-22 16:02:43.123456", 17, at, true},
		{"heartbeat 3 2026-11-22 16:02:43.123456 extra", 3, at, true},
		{"heartbeat 2 1763823763.5", 2, time.Unix(1763823763, 5e8), true},
		{"heartbeat 2 1763823763", 2, time.Unix(1763823763, 0), true},
		{"heartbeat 2 1763823763.123456789123", 2, time.Unix(1763823763, 123456789), true},
		{"heartbeat 0 1763823763", 0, time.Time{}, false},
		{"heartbeat 2", 0, time.Time{}, false},
		{"heartbeat 2 ", 0, time.Time{}, false},
		{"heartbeat 2 1763823763.", 0, time.Time{}, false},
		{"heartbeat 2 17638x", 0, time.Time{}, false},
		{"heartbeat x 1763823763", 0, time.Time{}, false},
		{"ping 2 1763823763", 0, time.Time{}, false},
	}
	for _, tt := range tests {
		seq, sent, ok := ParseHeartbeat([]byte(tt.in), loc)
		if ok != tt.wantOK || seq != tt.seq || !sent.Equal(tt.sent) {
			t.Errorf("ParseHeartbeat(%q) = %d, %v, %v; want %d, %v, %v", tt.in, seq, sent, ok, tt.seq, tt.sent, tt.wantOK)
		}
	}
}

func FuzzOneWay(f *testing.F) {
	at := time.Date(2026, 11, 22, 16, 2, 43, 0, time.UTC)
	f.Add(AppendOneWay(nil, 3, at, 42, OneWaySize))
	ans := AppendOneWay(nil, 3, at, 42, OneWaySize)
	q, _ := ParseOneWayRequest(ans)
	AnswerOneWay(ans, q, Receipt{ID: 42, Received: at, Count: 3, Highest: 3, Window: 7})
	f.Add(ans)
	f.Add([]byte("heartbeat 1 1763823763.5"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, ok := ParseOneWayRequest(b); ok {
			m := bytes.Clone(b)
			if AnswerOneWay(m, r, Receipt{ID: r.ID, Count: 1, Highest: r.Seq, Window: 1}) {
				if len(m) != len(b) {
					t.Fatalf("answer %d bytes for a %d-byte request", len(m), len(b))
				}
				if _, ok := ParseReceipt(m); !ok {
					t.Fatalf("answer %q does not parse", m)
				}
			}
		}
		ParseReceipt(b)
		ParseHeartbeat(b, time.UTC)
	})
}
