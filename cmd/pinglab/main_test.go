package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"
)

// runCmd runs pinglab with args and returns what it printed and its exit code.
func runCmd(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(ctx, append([]string{"pinglab"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"200ms", 200 * time.Millisecond, ""},
		{"0.2", 200 * time.Millisecond, ""},
		{"1", time.Second, ""},
		{"1s", time.Second, ""},
		{"0", 0, ""},
		{"1m30s", 90 * time.Second, ""},
		{"-1", 0, "negative"},
		{"-200ms", 0, "negative"},
		{"abc", 0, "not a duration"},
		{"", 0, "empty"},
		{"1e300", 0, "out of range"},
		{"NaN", 0, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseDuration(%q) = %v, %v; want error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseShare(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{"20%", 0.2, ""},
		{"0.2", 0.2, ""},
		{"100%", 1, ""},
		{"0", 0, ""},
		{"1", 1, ""},
		{" 5 % ", 0.05, ""},
		{"150%", 0, "outside"},
		{"-1%", 0, "outside"},
		{"20", 0, "write 20%"},
		{"lots", 0, "not a share"},
		{"", 0, "not a share"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseShare(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseShare(%q) = %v, %v; want error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseShare(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestReorderArgs(t *testing.T) {
	app := &cli.App{Commands: []*cli.Command{{
		Name: "udp",
		Subcommands: []*cli.Command{{
			Name: "ping",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "count", Aliases: []string{"c"}},
				&cli.StringFlag{Name: "interval", Aliases: []string{"i"}},
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}},
			},
		}},
	}, {
		Name: "lab",
		Subcommands: []*cli.Command{{
			Name:  "exec",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "verbose"}},
		}},
	}}}
	tests := []struct{ in, want []string }{
		{[]string{"p", "udp", "ping", "127.0.0.1", "-c", "3"}, []string{"p", "udp", "ping", "-c", "3", "127.0.0.1"}},
		{[]string{"p", "udp", "ping", "-c", "3", "127.0.0.1"}, []string{"p", "udp", "ping", "-c", "3", "127.0.0.1"}},
		{[]string{"p", "udp", "ping", "h", "-q", "-i", "-1", "--count=2"}, []string{"p", "udp", "ping", "-q", "-i", "-1", "--count=2", "h"}},
		{[]string{"p", "lab", "exec", "pinglab-client", "--", "ping", "-c", "1"}, []string{"p", "lab", "exec", "pinglab-client", "--", "ping", "-c", "1"}},
		{[]string{"p", "lab", "exec", "client", "ip", "-br", "a"}, []string{"p", "lab", "exec", "client", "ip", "-br", "a"}},
		{[]string{"p", "lab", "exec", "client", "--verbose", "ping", "-c", "1"}, []string{"p", "lab", "exec", "client", "--verbose", "ping", "-c", "1"}},
		{[]string{"p", "lab", "exec", "--verbose", "client", "ping"}, []string{"p", "lab", "exec", "--verbose", "client", "ping"}},
		{[]string{"p", "udp", "ping", "-c3", "h", "-i0.2", "-q"}, []string{"p", "udp", "ping", "-c", "3", "-i", "0.2", "-q", "h"}},
		{[]string{"p", "udp", "ping", "-qc2", "h"}, []string{"p", "udp", "ping", "-q", "-c", "2", "h"}},
		{[]string{"p", "udp", "ping", "h", "-qc", "2"}, []string{"p", "udp", "ping", "-q", "-c", "2", "h"}},
		{[]string{"p", "udp", "ping", "-qx", "h"}, []string{"p", "udp", "ping", "-qx", "h"}},
		{[]string{"p", "udp"}, []string{"p", "udp"}},
		{[]string{"p", "--version"}, []string{"p", "--version"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, reorderArgs(app, tt.in)); diff != "" {
			t.Errorf("reorderArgs(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `no command "nosuch"`},
		{[]string{"udp", "nosuch"}, `no subcommand "nosuch"`},
		{[]string{"udp", "ping", "--nosuchflag", "127.0.0.1"}, "nosuchflag"},
		{[]string{"udp", "ping", "127.0.0.1", "-c", "-1"}, "-c: -1 is negative"},
		{[]string{"udp", "ping", "127.0.0.1", "-i", "-1"}, "--interval: \"-1\" is negative"},
		{[]string{"udp", "ping", "127.0.0.1", "-W", "soon"}, "--timeout: \"soon\" is not a duration"},
		{[]string{"udp", "ping", "127.0.0.1", "--format", "xml"}, "xml"},
		{[]string{"udp", "ping"}, "missing"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := runCmd(t, t.Context(), tt.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", stderr, tt.want)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("stderr has %d lines, want one:\n%s", n+1, stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := runCmd(t, t.Context(), "--version")
	if code != 0 || !strings.HasPrefix(stdout, "pinglab version ") {
		t.Errorf("--version = %q, exit %d", stdout, code)
	}
}

// TestHelpHasExamples asks every command, every group of commands and pinglab itself for a
// help page with examples: lines after "Examples:" that are pinglab command lines.
func TestHelpHasExamples(t *testing.T) {
	hasExamples := func(text string) bool {
		_, ex, ok := strings.Cut(text, "Examples:")
		return ok && strings.Contains(ex, "pinglab ")
	}
	app := newApp(nil, nil, new(string))
	if !hasExamples(app.Description) {
		t.Errorf("pinglab --help shows no examples")
	}
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := path + " " + c.Name
			if !hasExamples(c.Description) {
				t.Errorf("%s --help shows no examples (\"Examples:\" and pinglab command lines in its Description)", p)
			}
			walk(p, c.Subcommands)
		}
	}
	walk("pinglab", app.Commands)
}

// TestHelpWords checks the help pages' words: a placeholder for every flag's value (SHARE,
// not urfave/cli's "value"), no "(default: false)", and ping's and trace's letters that mean
// different things pointed out on both sides.
func TestHelpWords(t *testing.T) {
	pages := map[string]string{}
	app := newApp(nil, nil, new(string))
	var walk func(args []string, cmds []*cli.Command)
	walk = func(args []string, cmds []*cli.Command) {
		for _, c := range cmds {
			a := append(slices.Clone(args), c.Name)
			stdout, _, code := runCmd(t, t.Context(), append(a, "--help")...)
			if code != 0 {
				t.Errorf("%s --help: exit %d", strings.Join(a, " "), code)
			}
			pages[strings.Join(a, " ")] = stdout
			walk(a, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
	for name, page := range pages {
		for _, bad := range []string{" value ", " value,", "(default: false)"} {
			if strings.Contains(page, bad) {
				t.Errorf("pinglab %s --help has %q:\n%s", name, bad, page)
			}
		}
	}
	for name, want := range map[string][]string{
		"ping":     {"trace's -q is probes per hop", "trace's -w is the wait per hop", "trace's -f is the first hop"},
		"udp ping": {"trace's -q is probes per hop"},
		"trace":    {"ping's -q is quiet", "ping's -w is the run's deadline", "ping's -f is flood"},
	} {
		for _, w := range want {
			if !strings.Contains(pages[name], w) {
				t.Errorf("pinglab %s --help does not say %q", name, w)
			}
		}
	}
}

// TestRunConcurrently runs several commands at once in one process, as the tests that start a
// server and clients do; under -race it finds any state the runs share.
func TestRunConcurrently(t *testing.T) {
	args := [][]string{
		{"--help"}, {"--version"}, {"udp", "ping", "--help"}, {"tcp", "server", "--help"},
		{"udp", "ping", "-c", "x", "127.0.0.1"}, {"ping", "--help"},
	}
	done := make(chan struct{})
	for _, a := range args {
		for range 2 {
			go func() {
				defer func() { done <- struct{}{} }()
				runCmd(t, context.Background(), a...)
			}()
		}
	}
	for range 2 * len(args) {
		<-done
	}
}
