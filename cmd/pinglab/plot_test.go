package main

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/udpping"
)

var updatePlot = flag.Bool("update", false, "rewrite the golden files in testdata/plot")

// plotRuns are saved runs of "pinglab udp ping --csv" on loopback: no loss, a seeded 20% drop
// and no server (every probe a port unreachable).
var plotRuns = []string{
	"../../testdata/plot/noloss.csv",
	"../../testdata/plot/drop20.csv",
	"../../testdata/plot/unreachable.csv",
}

func goldenFile(t *testing.T, path, got string) {
	t.Helper()
	if *updatePlot {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestReportGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		golden string
	}{
		{"markdown", plotRuns, "report.md"},
		{"csv", append([]string{"--format", "csv"}, plotRuns...), "report.csv"},
		{"labels", append([]string{"--label", "no loss", "--label", "server drop 20%"}, plotRuns...), "report-labels.md"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, t.Context(), append([]string{"report"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			goldenFile(t, filepath.Join("../../testdata/plot", tc.golden), stdout)
		})
	}
}

func TestReportBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"foreign", []string{"report", "../../testdata/plot/foreign.csv"}, "testdata/plot/foreign.csv:1: not a pinglab CSV"},
		{"broken", []string{"report", "../../testdata/plot/broken.csv"}, `testdata/plot/broken.csv:4: rtt_ms "fast" is not a number`},
		{"broken plot", []string{"plot", "-o", filepath.Join(t.TempDir(), "x.svg"), plotRuns[0], "../../testdata/plot/broken.csv"}, "broken.csv:4:"},
		{"missing", []string{"report", "no-such-run.csv"}, "no-such-run.csv"},
		{"no runs", []string{"report"}, "no run to read"},
		{"format", []string{"report", "--format", "html", plotRuns[0]}, `"html" is not markdown or csv`},
		{"labels", []string{"report", "--label", "a", "--label", "b", plotRuns[0]}, "2 labels for 1 runs"},
		{"no output", []string{"plot", plotRuns[0]}, "-o FILE is required"},
		{"extension", []string{"plot", "-o", "x.gif", plotRuns[0]}, `".gif"`},
		{"size", []string{"plot", "-o", "x.png", "--width", "10", plotRuns[0]}, "--width: 10 pixels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, t.Context(), tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and one line with %q", code, stderr, stdout, tc.want)
			}
		})
	}
}

func TestPlotCommand(t *testing.T) {
	dir := t.TempDir()
	svg := filepath.Join(dir, "cmp.svg")
	_, stderr, code := runCmd(t, t.Context(), "plot", plotRuns[0], plotRuns[1], "-o", svg, "--label", "no loss")
	if code != 0 {
		t.Fatalf("plot: exit %d, stderr %q", code, stderr)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	// The first run has its --label, the second its file name.
	for _, label := range []string{">no loss<", ">drop20<", ">10.0%<"} {
		if !bytes.Contains(b, []byte(label)) {
			t.Errorf("the SVG holds no %q", label)
		}
	}

	pngPath := filepath.Join(dir, "cmp.png")
	args := append([]string{"plot", "--width", "500", "--height", "400", "-o", pngPath}, plotRuns...)
	_, stderr, code = runCmd(t, t.Context(), args...)
	if code != 0 {
		t.Fatalf("plot png: exit %d, stderr %q", code, stderr)
	}
	checkPNGFile(t, pngPath, 500, 400)
}

func checkPNGFile(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Errorf("%s is %dx%d, want %dx%d", path, got.X, got.Y, w, h)
	}
}

// TestClientPlotFlag runs the UDP pinger with --plot (and -q, whose live line must stay off
// when stderr is not a terminal) and with a --plot it cannot draw.
func TestClientPlotFlag(t *testing.T) {
	srv := startUDPServer(t, udpping.ServerConfig{Addr: "127.0.0.1:0", Drop: 0.2, Seed: 5})
	dir := t.TempDir()
	pngPath, csvPath := filepath.Join(dir, "run.png"), filepath.Join(dir, "run.csv")
	stdout, stderr, code := runCmd(t, t.Context(), "udp", "ping", srv.Addr().String(), "-c", "20", "-i", "0.005", "-q",
		"--plot", pngPath, "--csv", csvPath)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr+stdout, "\r") {
		t.Errorf("a live line went to a stderr that is no terminal: %q", stderr)
	}
	checkPNGFile(t, pngPath, 960, 720)

	// The plot of the saved run is the same figure as the live one's (same SVG, both ways).
	live := filepath.Join(dir, "live.svg")
	if _, stderr, code := runCmd(t, t.Context(), "udp", "ping", srv.Addr().String(), "-c", "3", "-i", "0.005", "-q",
		"--plot", live); code != 0 {
		t.Fatalf("--plot svg: exit %d, stderr %q", code, stderr)
	}
	if b, err := os.ReadFile(live); err != nil || !bytes.Contains(b, []byte("3 probes")) {
		t.Errorf("--plot svg: %v, or its title does not say \"3 probes\"", err)
	}

	// A format pinglab cannot draw is refused before anything is sent.
	stdout, stderr, code = runCmd(t, t.Context(), "udp", "ping", srv.Addr().String(), "-c", "1", "--plot", filepath.Join(dir, "run.jpg"))
	if code != 2 || !strings.Contains(stderr, `".jpg"`) || stdout != "" {
		t.Errorf("--plot run.jpg: exit %d, stdout %q, stderr %q; want exit 2 naming .jpg, nothing sent", code, stdout, stderr)
	}
}
