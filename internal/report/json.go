package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/internal/stats"
)

// jsonRenderer collects the run and writes it as one indented JSON object at Finish.
type jsonRenderer struct {
	out
	h      Header
	probes map[int]*jsonProbe
}

// The JSON document. Times are RFC 3339 in UTC; durations are milliseconds, exact to the
// nanosecond for a probe's RTT and to the microsecond (iputils') for the statistics.
type jsonRun struct {
	Target      string       `json:"target"`
	Addr        string       `json:"addr"`
	Proto       string       `json:"proto"`
	Size        int          `json:"size"`
	Start       string       `json:"start,omitempty"`
	End         string       `json:"end,omitempty"`
	Transmitted int          `json:"transmitted"`
	Received    int          `json:"received"`
	Duplicates  int          `json:"duplicates"`
	Errors      int          `json:"errors"`
	Late        int          `json:"late"`
	Lost        int          `json:"lost"`
	Timeouts    int          `json:"timeouts"`
	LossPercent float64      `json:"loss_percent"`
	TimeMS      int64        `json:"time_ms"`
	RTT         *jsonRTT     `json:"rtt,omitempty"`
	OneWay      *jsonOneWay  `json:"one_way,omitempty"`
	Probes      []*jsonProbe `json:"probes"`
}

// jsonOneWay is pinglab's one-way extension: where the lost probes were lost, and each
// direction's delay (clock offset included in min, avg and max; not in the variation).
type jsonOneWay struct {
	LostOutbound int         `json:"lost_outbound"`
	LostInbound  int         `json:"lost_inbound"`
	LostUnknown  int         `json:"lost_unknown"`
	Outbound     *jsonOneDir `json:"outbound,omitempty"`
	Inbound      *jsonOneDir `json:"inbound,omitempty"`
}

type jsonOneDir struct {
	Min       float64 `json:"min_ms"`
	Avg       float64 `json:"avg_ms"`
	Max       float64 `json:"max_ms"`
	Variation float64 `json:"variation_ms"`
	Samples   int     `json:"samples"`
}

func oneDir(d stats.OneWayDelay) *jsonOneDir {
	if d.Samples == 0 {
		return nil
	}
	return &jsonOneDir{Min: *ms(d.Min), Avg: *ms(d.Avg), Max: *ms(d.Max), Variation: *ms(d.Variation), Samples: d.Samples}
}

type jsonRTT struct {
	Min     float64 `json:"min_ms"`
	Avg     float64 `json:"avg_ms"`
	Max     float64 `json:"max_ms"`
	Mdev    float64 `json:"mdev_ms"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Jitter  float64 `json:"jitter_ms"`
	EWMA    float64 `json:"ewma_ms"`
	Samples int     `json:"samples"`
}

// A jsonProbe is one probe. Status is its outcome: "reply", "timeout", "lost", "error", or
// "unanswered" for a probe still outstanding when the run ended. The first outcome counts, but
// an error after a timeout turns "timeout" into "error"; a late reply leaves "timeout" and sets
// late_rtt_ms.
type jsonProbe struct {
	Seq        int      `json:"seq"`
	Sent       string   `json:"sent,omitempty"`
	Status     string   `json:"status"`
	RTT        *float64 `json:"rtt_ms,omitempty"`
	Connect    *float64 `json:"connect_ms,omitempty"`
	TTL        int      `json:"ttl,omitempty"`
	From       string   `json:"from,omitempty"`
	Error      string   `json:"error,omitempty"`
	ICMPType   *int     `json:"icmp_type,omitempty"`
	ICMPCode   *int     `json:"icmp_code,omitempty"`
	Duplicates int      `json:"duplicates,omitempty"`
	LateRTT    *float64 `json:"late_rtt_ms,omitempty"`
	// Direction is where a timed-out probe was lost: "outbound", "inbound" or "unknown"
	// (pinglab's one-way extension); ServerReceived when the server read a replied probe.
	Direction      string `json:"direction,omitempty"`
	ServerReceived string `json:"server_received,omitempty"`
}

const statusUnanswered = "unanswered"

func (j *jsonRenderer) Start(h Header) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.h = h
}

func (j *jsonRenderer) Event(ev probe.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := j.probes[ev.Seq]
	if p == nil {
		p = &jsonProbe{Seq: ev.Seq, Status: statusUnanswered}
		j.probes[ev.Seq] = p
	}
	if p.Sent == "" && !ev.Sent.IsZero() {
		p.Sent = rfc3339(ev.Sent)
	}
	// The first outcome is the probe's; later ones (a late reply after a timeout) add to it.
	first := p.Status == statusUnanswered
	switch ev.Type {
	case probe.EventReply:
		if first {
			p.Status = "reply"
			p.RTT = ms(ev.RTT)
			if ev.Connect > 0 {
				p.Connect = ms(ev.Connect)
			}
			p.TTL = ev.TTL
			p.From = ev.From
			if ev.Receipt != nil {
				p.ServerReceived = rfc3339(ev.Receipt.Received)
			}
		}
	case probe.EventDirection:
		p.Direction = ev.Dir.String()
	case probe.EventDuplicate:
		p.Duplicates++
	case probe.EventLate:
		p.LateRTT = ms(ev.RTT)
	case probe.EventTimeout:
		if first {
			p.Status = "timeout"
		}
	case probe.EventLost:
		if first {
			p.Status = "lost"
			p.Error = ev.Reason
		}
	case probe.EventError:
		// An error after the timeout (a host unreachable once ARP gave up) says why it was lost.
		if first || p.Status == "timeout" {
			p.Status = "error"
			p.Error = errWords(ev)
			p.From = errFrom(ev, j.h)
			if ev.Err != nil && ev.Err.Type != icmperr.NoICMP {
				typ, code := ev.Err.Type, ev.Err.Code
				p.ICMPType, p.ICMPCode = &typ, &code
			}
		}
	}
}

func ms(d time.Duration) *float64 {
	v := float64(d) / float64(time.Millisecond)
	return &v
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Status writes iputils' line to Options.StatusWriter only: w holds the one JSON object.
func (j *jsonRenderer) Status(s stats.Summary) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fprintf(j.status, "%s\n", statusLine(s))
}

func (j *jsonRenderer) Finish(s stats.Summary, r probe.Result) {
	j.mu.Lock()
	defer j.mu.Unlock()
	doc := jsonRun{
		Target: j.h.Target, Addr: j.h.Addr, Proto: j.h.Proto, Size: j.h.Size,
		Start: rfc3339(r.Start), End: rfc3339(r.End),
		Transmitted: s.Transmitted, Received: s.Received, Duplicates: s.Duplicates,
		Errors: s.Errors, Late: s.Late, Lost: s.Lost, Timeouts: s.Timeouts,
		LossPercent: s.Loss, TimeMS: runTime(r),
		Probes: make([]*jsonProbe, 0, len(j.probes)),
	}
	if s.Received > 0 {
		doc.RTT = &jsonRTT{
			Min: *ms(s.Min), Avg: *ms(s.Avg), Max: *ms(s.Max), Mdev: *ms(s.Mdev),
			P50: *ms(s.P50), P90: *ms(s.P90), P99: *ms(s.P99), Jitter: *ms(s.Jitter),
			EWMA: *ms(s.EWMA), Samples: s.Samples,
		}
	}
	if s.OneWay {
		doc.OneWay = &jsonOneWay{
			LostOutbound: s.LostOutbound, LostInbound: s.LostInbound, LostUnknown: s.LostUnknown,
			Outbound: oneDir(s.Outbound), Inbound: oneDir(s.Inbound),
		}
	}
	for _, seq := range slices.Sorted(maps.Keys(j.probes)) {
		doc.Probes = append(doc.Probes, j.probes[seq])
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // error words and reasons stay readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		// Only a NaN or infinite float can fail here, and none can be made from durations.
		if j.err == nil {
			j.err = fmt.Errorf("report: json: %w", err)
		}
		return
	}
	j.printf("%s", b.Bytes())
}
