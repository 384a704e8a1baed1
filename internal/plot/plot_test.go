package plot

import (
	"bytes"
	"context"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/probe"
	"github.com/pinglab/pinglab/udpping"
)

// loopbackRun pings a UDP server on loopback that drops drop of the datagrams (seeded, so the
// same datagrams are dropped every time) and records the run. With noServer, nothing listens and
// every probe gets an ICMP port unreachable.
func loopbackRun(t *testing.T, count int, drop float64, noServer bool) Series {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := udpping.Listen(ctx, udpping.ServerConfig{Addr: "127.0.0.1:0", Drop: drop, Seed: 7})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := srv.Addr().String()
	done := make(chan error, 1)
	if noServer {
		srv.Close()
		done <- nil
	} else {
		go func() { done <- srv.Serve(ctx) }()
	}
	conn, err := udpping.Dial(ctx, udpping.Config{Addr: addr, Network: "udp4"})
	if err != nil {
		t.Skipf("udpping client on this system: %v", err)
	}
	defer conn.Close()
	rec := NewRecorder("udp", addr)
	// A timeout far above loopback's RTT, so that a loaded machine does not turn replies late.
	opts := probe.Options{Count: count, Interval: 2 * time.Millisecond, Timeout: 2 * time.Second}
	if _, err := probe.Run(ctx, conn, opts, rec.Event); err != nil {
		t.Fatalf("probe.Run: %v", err)
	}
	srv.Close()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	s := rec.Series()
	if s.Sent != count {
		t.Fatalf("recorded %d probes sent, want %d", s.Sent, count)
	}
	return s
}

// countStatus counts the points with one of the outcomes types.
func countStatus(s Series, types ...probe.EventType) int {
	n := 0
	for _, p := range s.Points {
		for _, typ := range types {
			if p.Type == typ {
				n++
			}
		}
	}
	return n
}

var (
	svgPath  = regexp.MustCompile(`<path [^>]*style="([^"]*)"`)
	svgStyle = regexp.MustCompile(`(fill|stroke):(#[0-9A-F]{6})`)
)

// svgPaths counts an SVG's paths by the color they are stroked or filled with:
// "stroke:#D62728" -> n.
func svgPaths(svg []byte) map[string]int {
	n := make(map[string]int)
	for _, m := range svgPath.FindAllSubmatch(svg, -1) {
		for _, kv := range svgStyle.FindAllSubmatch(m[1], -1) {
			n[string(kv[1])+":"+string(kv[2])]++
		}
	}
	return n
}

func hex(c color.RGBA) string {
	const digits = "0123456789ABCDEF"
	b := []byte{'#', 0, 0, 0, 0, 0, 0}
	for i, v := range []uint8{c.R, c.G, c.B} {
		b[1+2*i], b[2+2*i] = digits[v>>4], digits[v&15]
	}
	return string(b)
}

// marks is how many marks of a kind a figure should hold: one per point and one in the legend,
// which only lists kinds the run has.
func marks(points int) int {
	if points == 0 {
		return 0
	}
	return points + 1
}

func TestRunFigure(t *testing.T) {
	drop := loopbackRun(t, 60, 0.2, false)
	unreachable := loopbackRun(t, 5, 0, true)
	lost := countStatus(drop, probe.EventTimeout, probe.EventLost)
	if lost == 0 || lost == 60 {
		t.Fatalf("a seeded 20%% drop lost %d of 60 probes; the figure would show no mix", lost)
	}
	if got := countStatus(unreachable, probe.EventError); got != 5 {
		t.Fatalf("no server: %d errors of 5 probes (points %+v)", got, unreachable.Points)
	}
	for _, tc := range []struct {
		name string
		s    Series
	}{{"drop", drop}, {"unreachable", unreachable}} {
		t.Run(tc.name, func(t *testing.T) {
			var svg bytes.Buffer
			if err := RenderRun(&svg, "svg", tc.s, Options{}); err != nil {
				t.Fatalf("RenderRun svg: %v", err)
			}
			n := svgPaths(svg.Bytes())
			got := map[string]int{
				"lost":  n["stroke:"+hex(LostColor)],
				"error": n["fill:"+hex(ErrorColor)],
				// The reply line and its legend sample.
				"reply line": n["stroke:"+hex(ReplyColor)],
			}
			want := map[string]int{
				"lost":       marks(countStatus(tc.s, probe.EventTimeout, probe.EventLost)),
				"error":      marks(countStatus(tc.s, probe.EventError)),
				"reply line": 2 * min(1, countStatus(tc.s, probe.EventReply)),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("marks in the SVG (-want +got):\n%s", diff)
			}
			sum := tc.s.Summary()
			title := strings.ReplaceAll(runTitle(tc.s), "\n", " ")
			for _, word := range []string{"udp ping", tc.s.Target, "60 probes", percent(sum.Loss)} {
				if tc.name == "unreachable" && word == "60 probes" {
					word = "5 probes"
				}
				if !strings.Contains(title, word) {
					t.Errorf("title %q does not name %q", title, word)
				}
			}

			var img bytes.Buffer
			if err := RenderRun(&img, "png", tc.s, Options{Width: 640, Height: 480}); err != nil {
				t.Fatalf("RenderRun png: %v", err)
			}
			checkPNG(t, img.Bytes(), 640, 480)
		})
	}
}

func checkPNG(t *testing.T, b []byte, w, h int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode PNG: %v", err)
	}
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Errorf("PNG is %dx%d, want %dx%d", got.X, got.Y, w, h)
	}
}

func TestComparison(t *testing.T) {
	runs := []Series{
		loopbackRun(t, 40, 0, false),
		loopbackRun(t, 40, 0.2, false),
		loopbackRun(t, 40, 0.5, false),
	}
	for i, l := range []string{"no loss", "drop 20%", "drop 50%"} {
		runs[i].Label = l
	}
	var svg bytes.Buffer
	if err := RenderComparison(&svg, "svg", runs, Options{}); err != nil {
		t.Fatalf("RenderComparison svg: %v", err)
	}
	n := svgPaths(svg.Bytes())
	for i, s := range runs {
		lost := countStatus(s, probe.EventTimeout, probe.EventLost)
		got := map[string]int{
			// The RTT line and the CDF line, and each one's legend sample.
			"series": n["stroke:"+hex(RunColor(i))],
			"lost":   n["stroke:"+hex(LostRunColor(i))],
			"bar":    n["fill:"+hex(RunColor(i))],
		}
		want := map[string]int{"series": 4, "lost": lost, "bar": 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run %d (%s) in the SVG (-want +got):\n%s", i, s.Label, diff)
		}
		if !bytes.Contains(svg.Bytes(), []byte(">"+s.Label+"<")) {
			t.Errorf("the SVG does not label run %q", s.Label)
		}
	}
	if countStatus(runs[1], probe.EventTimeout) == 0 {
		t.Error("the seeded 20% drop lost nothing: the lost marks were not tested")
	}
	if got := n["stroke:"+hex(RunColor(len(runs)))]; got != 0 {
		t.Errorf("%d paths in the color of a fourth run, of three", got)
	}

	var img bytes.Buffer
	if err := RenderComparison(&img, "png", runs, Options{Width: 800, Height: 900}); err != nil {
		t.Fatalf("RenderComparison png: %v", err)
	}
	checkPNG(t, img.Bytes(), 800, 900)
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	s := synthetic()
	for _, ext := range []string{"svg", "png", "pdf", "SVG"} {
		path := filepath.Join(dir, "run."+ext)
		if err := WriteRun(path, s, Options{Width: 320, Height: 240}); err != nil {
			t.Fatalf("WriteRun %s: %v", ext, err)
		}
		if err := WriteComparison(filepath.Join(dir, "cmp."+ext), []Series{s, s}, Options{}); err != nil {
			t.Fatalf("WriteComparison %s: %v", ext, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		magic := map[string]string{"svg": "<?xml", "png": "\x89PNG", "pdf": "%PDF"}[strings.ToLower(ext)]
		if !bytes.HasPrefix(b, []byte(magic)) {
			t.Errorf("run.%s starts %q, want %q", ext, b[:min(len(b), 8)], magic)
		}
	}
}

func TestBadFormat(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ path, want string }{
		{"run.jpg", `".jpg"`},
		{"run", "no extension"},
		{"run.svg.txt", `".txt"`},
	} {
		err := WriteRun(filepath.Join(dir, tc.path), synthetic(), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WriteRun(%q) = %v, want an error naming %s", tc.path, err, tc.want)
		}
		if _, statErr := os.Stat(filepath.Join(dir, tc.path)); statErr == nil {
			t.Errorf("WriteRun(%q) created the file", tc.path)
		}
	}
	if err := RenderComparison(&bytes.Buffer{}, "svg", nil, Options{}); err == nil {
		t.Error("RenderComparison of no runs: no error")
	}
}

// synthetic is a run with each kind of outcome, for tests that need no network.
func synthetic() Series {
	t0 := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	at := func(seq int) time.Time { return t0.Add(time.Duration(seq-1) * 200 * time.Millisecond) }
	// Probe 7 was sent and had no outcome when the run ended.
	return Series{
		Label: "synthetic", Proto: "udp", Target: "127.0.0.1:12000", Sent: 7,
		Points: []Point{
			{Seq: 1, Sent: at(1), Type: probe.EventReply, RTT: 1200 * time.Microsecond},
			{Seq: 2, Sent: at(2), Type: probe.EventReply, RTT: 800 * time.Microsecond},
			{Seq: 3, Sent: at(3), Type: probe.EventTimeout},
			{Seq: 2, Sent: at(2), Type: probe.EventDuplicate, RTT: 900 * time.Microsecond},
			{Seq: 4, Sent: at(4), Type: probe.EventError},
			{Seq: 3, Sent: at(3), Type: probe.EventLate, RTT: 1500 * time.Millisecond},
			{Seq: 5, Sent: at(5), Type: probe.EventReply, RTT: 2 * time.Millisecond},
			{Seq: 6, Sent: at(6), Type: probe.EventLost},
		},
	}
}

func TestRecorder(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	r := NewRecorder("udp", "h")
	for _, ev := range []probe.Event{
		{Type: probe.EventSent, Seq: 1, Sent: t0},
		{Type: probe.EventSent, Seq: 2, Sent: t0},
		{Type: probe.EventReply, Seq: 1, Sent: t0, RTT: time.Millisecond},
		{Type: probe.EventTimeout, Seq: 2, Sent: t0},
		{Type: probe.EventLate, Seq: 2, Sent: t0, RTT: 2 * time.Second},
		{Type: probe.EventSent, Seq: 3, Sent: t0},
	} {
		r.Event(ev)
	}
	want := Series{Label: "h", Proto: "udp", Target: "h", Sent: 3, Points: []Point{
		{Seq: 1, Sent: t0, Type: probe.EventReply, RTT: time.Millisecond},
		{Seq: 2, Sent: t0, Type: probe.EventTimeout},
		{Seq: 2, Sent: t0, Type: probe.EventLate, RTT: 2 * time.Second},
	}}
	got := r.Series()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Series (-want +got):\n%s", diff)
	}
	// Probe 3 left but had no outcome: it counts as sent and lost, as the live run counts it.
	sum := got.Summary()
	if sum.Transmitted != 3 || sum.Received != 1 || sum.Late != 1 {
		t.Errorf("Summary: %d sent, %d received, %d late, want 3, 1, 1", sum.Transmitted, sum.Received, sum.Late)
	}
}
