package probe

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/pingmsg"
)

// oneWayFake is a network and a server that keeps pinglab's one-way extension: out(seq) loses
// request seq on the way out, in(seq) its reply on the way back. Requests take 5 ms, replies 10.
type oneWayFake struct {
	out, in  func(seq int) bool
	plain    bool // the server echoes plainly: no receipts
	ledger   pingmsg.Ledger
	ch       chan Packet
	statuses int
}

var clientAddr = netip.MustParseAddr("10.0.0.1")

func (f *oneWayFake) Send(ctx context.Context, seq int) (time.Time, error) {
	if f.out(seq) {
		return time.Time{}, nil
	}
	time.AfterFunc(5*time.Millisecond, func() {
		var rc *pingmsg.Receipt
		if !f.plain {
			r := f.ledger.Record(clientAddr, pingmsg.OneWayRequest{Seq: seq, ID: 1}, time.Now())
			rc = &r
		}
		if f.in(seq) {
			return
		}
		time.AfterFunc(10*time.Millisecond, func() {
			f.ch <- Packet{Seq: seq, Kind: KindReply, Receipt: rc}
		})
	})
	return time.Time{}, nil
}

func (f *oneWayFake) Receive(ctx context.Context) (Packet, error) {
	select {
	case p := <-f.ch:
		return p, nil
	case <-ctx.Done():
		return Packet{}, ctx.Err()
	}
}

func (f *oneWayFake) OneWay() bool { return true }

func (f *oneWayFake) AskStatus(ctx context.Context) error {
	f.statuses++
	if f.plain {
		return nil
	}
	time.AfterFunc(5*time.Millisecond, func() {
		r := f.ledger.Record(clientAddr, pingmsg.OneWayRequest{Seq: 0, ID: 1}, time.Now())
		time.AfterFunc(10*time.Millisecond, func() { f.ch <- Packet{Kind: KindReceipt, Receipt: &r} })
	})
	return nil
}

func TestOneWayDirections(t *testing.T) {
	in := func(seqs ...int) func(int) bool {
		return func(seq int) bool {
			for _, s := range seqs {
				if s == seq {
					return true
				}
			}
			return false
		}
	}
	tests := []struct {
		name     string
		f        *oneWayFake
		count    int
		want     map[int]Direction
		statuses int
	}{
		{
			name: "both ways, the last ones told by a status query",
			f:    &oneWayFake{out: in(2, 9, 10), in: in(3, 4, 8)},
			// 8 and 9 and 10 come after the last reply (7): the status query decides them.
			count: 10, want: map[int]Direction{2: Outbound, 3: Inbound, 4: Inbound, 8: Inbound, 9: Outbound, 10: Outbound},
			statuses: 1,
		},
		{
			name:  "nothing lost: no query",
			f:     &oneWayFake{out: in(), in: in()},
			count: 5, want: map[int]Direction{},
		},
		{
			name:  "a plain server: no directions at all",
			f:     &oneWayFake{out: in(2), in: in(3), plain: true},
			count: 5, want: map[int]Direction{},
		},
		{
			name: "the status query lost too: unknown",
			f:    &oneWayFake{out: in(5), in: func(seq int) bool { return seq == 0 || seq == 4 }},
			// No reply after 3 and no answer to the queries: nothing tells 4 and 5 apart.
			count: 5, want: map[int]Direction{4: Unknown, 5: Unknown},
			statuses: statusTries,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt.f.ch = make(chan Packet, 64)
				if tt.f.in(0) {
					tt.f.plain = false
					ask := tt.f
					// A status whose answer is lost: count the query, answer nothing.
					f := &lostStatus{ask}
					got := runDirections(t, f, tt.count)
					if diff := cmp.Diff(tt.want, got); diff != "" {
						t.Errorf("directions (-want +got):\n%s", diff)
					}
					if f.statuses != tt.statuses {
						t.Errorf("%d status queries, want %d", f.statuses, tt.statuses)
					}
					return
				}
				got := runDirections(t, tt.f, tt.count)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("directions (-want +got):\n%s", diff)
				}
				if tt.f.statuses != tt.statuses {
					t.Errorf("%d status queries, want %d", tt.f.statuses, tt.statuses)
				}
			})
		})
	}
}

// lostStatus is a oneWayFake whose status queries are lost.
type lostStatus struct{ *oneWayFake }

func (l *lostStatus) AskStatus(ctx context.Context) error {
	l.statuses++
	return nil
}

func runDirections(t *testing.T, tr Transport, count int) map[int]Direction {
	t.Helper()
	got := map[int]Direction{}
	timeouts := map[int]bool{}
	_, err := Run(context.Background(), tr, Options{Count: count, Interval: 100 * time.Millisecond, Timeout: time.Second},
		func(ev Event) {
			switch ev.Type {
			case EventTimeout:
				timeouts[ev.Seq] = true
			case EventDirection:
				if !timeouts[ev.Seq] {
					t.Errorf("direction for seq %d, which did not time out", ev.Seq)
				}
				if _, dup := got[ev.Seq]; dup {
					t.Errorf("second direction for seq %d", ev.Seq)
				}
				got[ev.Seq] = ev.Dir
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
