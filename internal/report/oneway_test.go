package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/pingmsg"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// oneWayRun is a run of 4 probes against pinglab's server: 2 lost on the way out, 3 on the way
// back, a 12 ms path out and 8 back with the server's clock 50 ms ahead.
func oneWayRun() []probe.Event {
	t0 := time.Unix(1767323045, 0)
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	var evs []probe.Event
	for seq := 1; seq <= 4; seq++ {
		sent := t0.Add(time.Duration(seq-1) * time.Second)
		evs = append(evs, probe.Event{Type: probe.EventSent, Seq: seq, Sent: sent, At: sent})
		switch seq {
		case 2, 3:
			evs = append(evs, probe.Event{Type: probe.EventTimeout, Seq: seq, Sent: sent, At: sent.Add(time.Second)})
		default:
			rx := sent.Add(ms(50 + 12 + seq))
			evs = append(evs, probe.Event{Type: probe.EventReply, Seq: seq, Sent: sent, At: sent.Add(ms(20 + seq)),
				RTT: ms(20 + seq), From: "10.0.0.2:12000", Bytes: pingmsg.OneWaySize,
				Receipt: &pingmsg.Receipt{Received: rx, Count: seq, Highest: seq}})
		}
	}
	at := t0.Add(4 * time.Second)
	evs = append(evs,
		probe.Event{Type: probe.EventDirection, Seq: 3, Sent: t0.Add(2 * time.Second), At: at, Dir: probe.Inbound},
		probe.Event{Type: probe.EventDirection, Seq: 2, Sent: t0.Add(time.Second), At: at, Dir: probe.Outbound})
	return evs
}

func TestOneWayReport(t *testing.T) {
	h := Header{Proto: "udp", Target: "10.0.0.2", Addr: "10.0.0.2:12000", Size: pingmsg.OneWaySize, OneWay: true}
	st := stats.New()
	var text, js, csvOut bytes.Buffer
	tr, _ := New("text", &text, Options{Quiet: true, Percentiles: true})
	jr, _ := New("json", &js, Options{})
	c := NewCSV(&csvOut, h)
	tr.Start(h)
	jr.Start(h)
	for _, ev := range oneWayRun() {
		st.Add(ev)
		jr.Event(ev)
		c.Event(ev)
	}
	res := probe.Result{Start: time.Unix(1767323045, 0), End: time.Unix(1767323048, 0)}
	tr.Finish(st.Summary(), res)
	jr.Finish(st.Summary(), res)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	wantText := `PING 10.0.0.2 (10.0.0.2:12000) 127 bytes of data over UDP.

--- 10.0.0.2 udp ping statistics ---
4 packets transmitted, 2 received, 50% packet loss, time 3000ms
rtt min/avg/max/mdev = 21.000/22.500/24.000/1.500 ms
rtt p50/p90/p99 = 21.000/24.000/24.000 ms, jitter = 3.000 ms
lost: 1 outbound, 1 inbound
one-way outbound min/avg/max = 63.000/64.500/66.000 ms, variation = 3.000 ms
one-way inbound  min/avg/max = -42.000/-42.000/-42.000 ms, variation = 0.000 ms
`
	if diff := cmp.Diff(wantText, text.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}

	var doc struct {
		OneWay struct {
			LostOutbound int `json:"lost_outbound"`
			LostInbound  int `json:"lost_inbound"`
			Outbound     struct {
				Variation float64 `json:"variation_ms"`
			}
		} `json:"one_way"`
		Probes []struct {
			Seq            int
			Direction      string
			ServerReceived string `json:"server_received"`
		}
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OneWay.LostOutbound != 1 || doc.OneWay.LostInbound != 1 || doc.OneWay.Outbound.Variation != 3 {
		t.Errorf("json one_way = %+v", doc.OneWay)
	}
	dirs := map[int]string{}
	for _, p := range doc.Probes {
		dirs[p.Seq] = p.Direction
		if (p.Seq == 1 || p.Seq == 4) && p.ServerReceived == "" {
			t.Errorf("probe %d has no server_received", p.Seq)
		}
	}
	if diff := cmp.Diff(map[int]string{1: "", 2: "outbound", 3: "inbound", 4: ""}, dirs); diff != "" {
		t.Errorf("json directions (-want +got):\n%s", diff)
	}

	lines := strings.Split(strings.TrimSpace(csvOut.String()), "\n")
	wantCSV := []string{
		"seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error,direction",
		"1,1767323045.000000,reply,21.000000,,10.0.0.2:12000,,,udp,10.0.0.2,,",
		"4,1767323048.000000,reply,24.000000,,10.0.0.2:12000,,,udp,10.0.0.2,,",
		"3,1767323047.000000,timeout,,,,,,udp,10.0.0.2,,inbound",
		"2,1767323046.000000,timeout,,,,,,udp,10.0.0.2,,outbound",
	}
	if diff := cmp.Diff(wantCSV, lines); diff != "" {
		t.Errorf("csv (-want +got):\n%s", diff)
	}
	run, err := ReadCSV(strings.NewReader(csvOut.String()), "run.csv")
	if err != nil {
		t.Fatal(err)
	}
	back := run.Summary()
	if back.LostOutbound != 1 || back.LostInbound != 1 {
		t.Errorf("read back: lost %d out, %d in; want 1, 1", back.LostOutbound, back.LostInbound)
	}
}

func TestOneWayPlainServer(t *testing.T) {
	h := Header{Proto: "udp", Target: "x", Addr: "127.0.0.1:12000", Size: 127, OneWay: true}
	var text, csvOut bytes.Buffer
	tr, _ := New("text", &text, Options{Quiet: true})
	c := NewCSV(&csvOut, h)
	st := stats.New()
	t0 := time.Unix(1767323045, 0)
	for seq := 1; seq <= 5; seq++ {
		evs := []probe.Event{{Type: probe.EventSent, Seq: seq, Sent: t0}}
		if seq == 1 {
			evs = append(evs, probe.Event{Type: probe.EventTimeout, Seq: seq, Sent: t0})
		} else {
			evs = append(evs, probe.Event{Type: probe.EventReply, Seq: seq, Sent: t0, At: t0, RTT: time.Millisecond})
		}
		for _, ev := range evs {
			st.Add(ev)
			c.Event(ev)
		}
	}
	// The held timeout row went out once the replies showed no receipts, before Flush.
	if !strings.Contains(csvOut.String(), "\n1,1767323045.000000,timeout,") {
		t.Errorf("timeout row still held against a plain server:\n%s", csvOut.String())
	}
	tr.Start(h)
	tr.Finish(st.Summary(), probe.Result{})
	if !strings.Contains(text.String(), "one-way: the server sent no receipts (not pinglab's server?): round-trip loss only\n") {
		t.Errorf("text does not say the server sent no receipts:\n%s", text.String())
	}
}

func TestReadOldCSV(t *testing.T) {
	old := "seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error\n" +
		"1,1767323045.000000,timeout,,,,,,udp,x,\n"
	run, err := ReadCSV(strings.NewReader(old), "old.csv")
	if err != nil || len(run.Rows) != 1 {
		t.Fatalf("ReadCSV(old header) = %+v, %v", run, err)
	}
	bad := "seq,sent_unix,status,rtt_ms,ttl,from,icmp_type,icmp_code,proto,target,error,direction\n" +
		"1,1767323045.000000,reply,1.0,,,,,udp,x,,inbound\n"
	if _, err := ReadCSV(strings.NewReader(bad), "bad.csv"); err == nil || !strings.Contains(err.Error(), "only a timed-out probe") {
		t.Errorf("direction on a reply row: err = %v", err)
	}
}
