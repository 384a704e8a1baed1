package main

// TestREADME runs the README's examples and compares what they print with what the README
// shows, so that an example cannot drift from the program.
//
// The convention, for anyone adding an example to README.md:
//
//   - Put a marker on the line just before the code block (fenced or indented):
//
//     <!-- README-test: loopback -->   on this machine's loopback (inside a fresh network
//                                      namespace of its own when the test runs as root, so
//                                      that the examples' fixed ports never meet another test)
//     <!-- README-test: root -->       the same, but the example needs root (raw sockets)
//     <!-- README-test: lab 2 -->      in a lab (pinglab lab up --hosts 2) made for the block
//     <!-- README-test: lab 3 -->      the same with three hosts
//     <!-- README-test: lab -->        root, no lab made (the block makes its own with lab up)
//
//     After the environment, "; before CMD" runs CMD (a hidden setup step, output not shown)
//     before the block's commands; give it as often as needed ("; before CMD &" starts a
//     server in the background for the block, its first line awaited, and stops it after). "; unordered" compares each
//     command's lines in any order (for output whose order is a race, such as a timeout due at
//     the moment of the next send).
//   - In the block, a line "$ CMD" is a command and the lines after it, up to the next "$ ",
//     are what it prints (stdout and stderr together). A leading "sudo " is dropped and
//     "go run ./cmd/pinglab" is pinglab. "echo $?" prints the exit code of the command before.
//   - A command ending in "&" runs in the background (its first line is awaited: a server's
//     banner) and is interrupted at the end of the block; its output is not compared. A
//     command whose output shows a line "^C" also runs in the background; it is interrupted
//     (SIGINT) once the block's other commands are done, and what it printed is compared, the
//     "^C" standing where the interrupt came.
//   - A line "..." in the expected output stands for any number of lines.
//   - Before comparing, both sides are normalised: RTTs and other times in ms, clock times,
//     dates, Unix times, ephemeral ports (32768 and up), random seeds, and the test's lab
//     namespace names. Anything else must match exactly: make examples deterministic (--seed,
//     a -W that does not coincide with a send time).
//   - To write the real output into README.md: go test ./cmd/pinglab -run TestREADME -update
//     (run it as root for the lab examples), then review the diff and put back any "..." you
//     want.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
)

const readmePath = "../../README.md"

const readmeMarker = "<!-- README-test:"

// A readmeExample is one marked code block of the README.
type readmeExample struct {
	line      int    // the marker's line (1-based)
	env       string // loopback, root or lab
	hosts     int    // lab hosts to make (0: none)
	before    []string
	unordered bool
	indent    string // "    " for an indented block, "" for a fenced one
	first     int    // index in the README's lines of the block's first content line
	end       int    // index just past its last content line
	cmds      []readmeCommand
}

type readmeCommand struct {
	line int    // README line of the "$ " line
	text string // the command as the README shows it
	want []string
}

func parseREADME(lines []string) ([]readmeExample, error) {
	var exs []readmeExample
	for i := 0; i < len(lines); i++ {
		// A marker starts its line; one shown indented (as in the README's own note) is text.
		l := strings.TrimRight(lines[i], " ")
		if !strings.HasPrefix(l, readmeMarker) {
			continue
		}
		spec := strings.TrimSuffix(strings.TrimPrefix(l, readmeMarker), "-->")
		ex := readmeExample{line: i + 1}
		for j, part := range strings.Split(spec, ";") {
			part = strings.TrimSpace(part)
			f := strings.Fields(part)
			switch {
			case j == 0 && len(f) >= 1 && (f[0] == "loopback" || f[0] == "root" || f[0] == "lab"):
				ex.env = f[0]
				if f[0] == "lab" && len(f) == 2 {
					n, err := strconv.Atoi(f[1])
					if err != nil || (n != 2 && n != 3) {
						return nil, fmt.Errorf("README.md:%d: lab %q: want 2 or 3 hosts", i+1, f[1])
					}
					ex.hosts = n
				}
			case j > 0 && part == "unordered":
				ex.unordered = true
			case j > 0 && strings.HasPrefix(part, "before "):
				ex.before = append(ex.before, strings.TrimPrefix(part, "before "))
			default:
				return nil, fmt.Errorf("README.md:%d: marker part %q: want loopback, root, lab [2|3], then \"; before CMD\" or \"; unordered\"", i+1, part)
			}
		}
		i++
		if i >= len(lines) {
			return nil, fmt.Errorf("README.md:%d: marker without a code block after it", ex.line)
		}
		var body []string
		switch {
		case strings.HasPrefix(lines[i], "```"):
			ex.first = i + 1
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				body = append(body, lines[i])
			}
			ex.end = i
		case strings.HasPrefix(lines[i], "    "):
			ex.indent = "    "
			ex.first = i
			for ; i < len(lines) && (strings.HasPrefix(lines[i], "    ") || strings.TrimSpace(lines[i]) == ""); i++ {
				body = append(body, strings.TrimPrefix(lines[i], "    "))
			}
			// Blank lines after the block belong to the text around it.
			for len(body) > 0 && strings.TrimSpace(body[len(body)-1]) == "" {
				body = body[:len(body)-1]
				i--
			}
			ex.end = i
		default:
			return nil, fmt.Errorf("README.md:%d: the marker must be followed at once by a code block", ex.line)
		}
		for k, b := range body {
			if strings.HasPrefix(b, "$ ") {
				ex.cmds = append(ex.cmds, readmeCommand{line: ex.first + k + 1, text: strings.TrimPrefix(b, "$ ")})
				continue
			}
			if len(ex.cmds) == 0 {
				return nil, fmt.Errorf("README.md:%d: a checked block starts with a command (\"$ ...\")", ex.first+k+1)
			}
			c := &ex.cmds[len(ex.cmds)-1]
			c.want = append(c.want, b)
		}
		if len(ex.cmds) == 0 {
			return nil, fmt.Errorf("README.md:%d: checked block has no command", ex.line)
		}
		exs = append(exs, ex)
	}
	return exs, nil
}

func TestREADME(t *testing.T) {
	testutil.HostOnly(t, "the README's examples are checked on the host; on the emulated CPU they would take most of the VM's time budget to check the same words again")
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	exs, err := parseREADME(lines)
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) == 0 {
		t.Fatal("README.md has no checked example (" + readmeMarker + " ... -->)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(self, filepath.Join(bin, "pinglab")); err != nil {
		t.Fatal(err)
	}
	got := make([][]string, len(exs)) // the real output, for -update
	for i, ex := range exs {
		t.Run(fmt.Sprintf("line%d", ex.line), func(t *testing.T) {
			got[i] = runExample(t, ex, bin)
		})
	}
	if *updatePlot { // the package's one -update flag rewrites README.md too
		for i := len(exs) - 1; i >= 0; i-- {
			if got[i] == nil {
				continue
			}
			ex := exs[i]
			block := make([]string, len(got[i]))
			for k, l := range got[i] {
				if ex.indent != "" && l != "" {
					l = ex.indent + l
				}
				block[k] = l
			}
			lines = append(lines[:ex.first], append(block, lines[ex.end:]...)...)
		}
		if err := os.WriteFile(readmePath, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runExample runs one block and compares its output; it returns the block as it should read.
func runExample(t *testing.T, ex readmeExample, bin string) []string {
	env := append(os.Environ(), asPinglabEnv+"=1", "PATH="+bin+":"+os.Getenv("PATH"))
	prefix := ""
	var netnsName string
	switch ex.env {
	case "loopback":
		if os.Geteuid() == 0 {
			netnsName = fmt.Sprintf("plreadme%d-%d", os.Getpid(), ex.line)
			testutil.NewNetns(t, netnsName)
		}
	case "root", "lab":
		testutil.RequireRoot(t)
		netnsName = fmt.Sprintf("plreadme%d-%d", os.Getpid(), ex.line)
		if ex.env == "root" {
			testutil.NewNetns(t, netnsName)
		} else {
			netnsName = ""
		}
		prefix = fmt.Sprintf("plr%d-", os.Getpid())
		env = append(env, labPrefixEnv+"="+prefix)
	}
	dir := t.TempDir()
	sh := &exampleShell{t: t, dir: dir, env: env, netns: netnsName, prefix: prefix}
	if ex.env == "lab" {
		t.Cleanup(func() { sh.quiet("pinglab lab down") })
		sh.quiet("pinglab lab down")
		if ex.hosts > 0 {
			if out, code := sh.run(fmt.Sprintf("pinglab lab up --hosts %d", ex.hosts)); code != 0 {
				t.Fatalf("lab up: exit %d: %s", code, out)
			}
		}
	}
	for _, b := range ex.before {
		if cmd, ok := strings.CutSuffix(strings.TrimSpace(b), "&"); ok {
			b := sh.start(cmd, -1, false) // a server for the block, stopped at its end
			t.Cleanup(func() { b.stop() })
			continue
		}
		if out, code := sh.run(b); code != 0 {
			t.Fatalf("README.md:%d: before %q: exit %d: %s", ex.line, b, code, out)
		}
	}
	outs := make([][]string, len(ex.cmds))
	var bg []*bgCommand
	for i, c := range ex.cmds {
		switch {
		case strings.HasSuffix(strings.TrimSpace(stripComment(c.text)), "&"):
			bg = append(bg, sh.start(strings.TrimSuffix(strings.TrimSpace(stripComment(c.text)), "&"), i, false))
		case containsLine(c.want, "^C"):
			bg = append(bg, sh.start(c.text, i, true))
		default:
			out, _ := sh.run(c.text)
			outs[i] = out
		}
	}
	for i := len(bg) - 1; i >= 0; i-- {
		b := bg[i]
		out := b.stop()
		if b.compare {
			outs[b.index] = out
		}
	}
	var block []string
	for i, c := range ex.cmds {
		block = append(block, "$ "+c.text)
		if strings.HasSuffix(strings.TrimSpace(stripComment(c.text)), "&") {
			block = append(block, c.want...)
			continue
		}
		got := outs[i]
		for _, l := range got {
			if prefix != "" {
				l = strings.ReplaceAll(l, prefix, "pinglab-")
			}
			block = append(block, l)
		}
		if i < len(ex.cmds)-1 && len(got) > 0 {
			block = append(block, "") // the blank line between two commands
		}
		if diff := matchOutput(c.want, got, prefix, ex.unordered); diff != "" {
			t.Errorf("README.md:%d: $ %s\n%s", c.line, c.text, diff)
		}
	}
	return block
}

func containsLine(lines []string, s string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) == s {
			return true
		}
	}
	return false
}

// stripComment removes a trailing shell comment ("  # in a second terminal").
func stripComment(cmd string) string {
	if i := strings.Index(cmd, " #"); i >= 0 {
		return cmd[:i]
	}
	return cmd
}

// exampleShell runs the commands of one block: one working directory, the test binary as
// pinglab, the exit code of the last command for "echo $?".
type exampleShell struct {
	t      *testing.T
	dir    string
	env    []string
	netns  string // run every command in this namespace ("" for the test's own)
	prefix string // the lab's namespace prefix, "" outside a lab
	last   int
}

// command turns a README command line into a shell command line.
func (s *exampleShell) command(text string) *exec.Cmd {
	text = strings.TrimSpace(text)
	text = strings.TrimPrefix(text, "sudo ")
	text = strings.ReplaceAll(text, "go run ./cmd/pinglab", "pinglab")
	if s.prefix != "" {
		text = regexp.MustCompile(`\bpinglab-(client|server|router)\b`).ReplaceAllString(text, s.prefix+"$1")
	}
	args := []string{"bash", "-c", text}
	if s.netns != "" {
		args = append([]string{"ip", "netns", "exec", s.netns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

func (s *exampleShell) run(text string) ([]string, int) {
	if strings.TrimSpace(stripComment(text)) == "echo $?" {
		return []string{strconv.Itoa(s.last)}, 0
	}
	cmd := s.command(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(s.t.Context(), 2*time.Minute)
	defer cancel()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	s.last = 0
	if err != nil {
		s.last = 1
		if ee, ok := err.(*exec.ExitError); ok {
			s.last = ee.ExitCode()
		}
	}
	return outputLines(out.String()), s.last
}

// quiet runs text and ignores what it says.
func (s *exampleShell) quiet(text string) {
	cmd := s.command(text)
	_ = cmd.Run()
}

type bgCommand struct {
	cmd     *exec.Cmd
	out     *lockedBuffer
	index   int
	compare bool
	done    chan struct{}
}

// start runs text in the background and waits for its first line (a server's banner).
func (s *exampleShell) start(text string, index int, compare bool) *bgCommand {
	cmd := s.command(text)
	b := &bgCommand{cmd: cmd, out: &lockedBuffer{}, index: index, compare: compare, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(b.done) }()
	s.t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-b.done })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.out.String(), "\n") && time.Now().Before(deadline) {
		select {
		case <-b.done:
			s.t.Fatalf("background command %q ended at once: %s", text, b.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return b
}

// stop interrupts the command as Ctrl-C does and returns what it printed, "^C" marking the
// interrupt.
func (b *bgCommand) stop() []string {
	before := b.out.String()
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
	all := b.out.String()
	lines := outputLines(before)
	lines = append(lines, "^C")
	return append(lines, outputLines(strings.TrimPrefix(all, before))...)
}

func outputLines(s string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), " \t\r"))
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// The normalisations: what differs from run to run and says nothing about the program.
var readmeNormal = []struct {
	re   *regexp.Regexp
	with string
}{
	// RTTs and durations in ms, single or as min/avg/max/mdev: "0.123 ms", "0.1/0.2/0.3/0.1 ms", "time 401ms".
	{regexp.MustCompile(`\d+(\.\d+)?(/\d+(\.\d+)?)*( ?ms\b)`), "T$4"},
	// The handout's RTT lines and JSON's milliseconds.
	{regexp.MustCompile(`(milliseconds\)( of packet \d+)? is )\d+\.\d+`), "${1}T"},
	{regexp.MustCompile(`("[a-z0-9_]*_ms": )[0-9.e+-]+`), "${1}T"},
	// Unix times ("[1795364106.882912]", CSV's sent_unix), RFC 3339, dates and clock times.
	{regexp.MustCompile(`\b1[0-9]{9}\.[0-9]+\b`), "UNIXTIME"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "RFC3339"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d`), "DATE"},
	{regexp.MustCompile(`\b\d\d:\d\d:\d\d(\.\d+)?\b`), "CLOCK"},
	// Random seeds (a given --seed is small).
	{regexp.MustCompile(`\bseed \d{6,}`), "seed RANDOM"},
}

// ephemeral is an ephemeral port after an address: "127.0.0.1:52054", "[::1]:57955".
var ephemeral = regexp.MustCompile(`([0-9\]]):(\d{5})\b`)

func normaliseLine(l, prefix string) string {
	if prefix != "" {
		l = strings.ReplaceAll(l, prefix, "pinglab-")
	}
	for _, n := range readmeNormal {
		l = n.re.ReplaceAllString(l, n.with)
	}
	l = ephemeral.ReplaceAllStringFunc(l, func(m string) string {
		sub := ephemeral.FindStringSubmatch(m)
		if p, _ := strconv.Atoi(sub[2]); p >= 32768 {
			return sub[1] + ":PORT"
		}
		return m
	})
	// Column widths follow the numbers' widths: compare the words, not the spacing.
	return strings.Join(strings.Fields(l), " ")
}

// matchOutput compares want (with "..." lines) and got after normalising both; it returns ""
// when they match, or both as they were compared.
func matchOutput(want, got []string, prefix string, unordered bool) string {
	w := make([]string, 0, len(want))
	for _, l := range want {
		w = append(w, normaliseLine(l, ""))
	}
	for len(w) > 0 && w[len(w)-1] == "" {
		w = w[:len(w)-1]
	}
	g := make([]string, len(got))
	for i, l := range got {
		g[i] = normaliseLine(l, prefix)
	}
	if unordered {
		w, g = slices.Sorted(slices.Values(w)), slices.Sorted(slices.Values(g))
	}
	if matchLines(w, g) {
		return ""
	}
	return "README shows (normalised):\n\t" + strings.Join(w, "\n\t") + "\nthe program printed (normalised):\n\t" + strings.Join(g, "\n\t")
}

func matchLines(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "..." {
		for k := 0; k <= len(got); k++ {
			if matchLines(want[1:], got[k:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && want[0] == got[0] && matchLines(want[1:], got[1:])
}
