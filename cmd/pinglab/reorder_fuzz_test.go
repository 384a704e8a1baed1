package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// FuzzReorderArgs runs reorderArgs over pinglab's own commands with arbitrary arguments (one
// per space-separated field; the seeds in testdata/fuzz are command lines from the README and
// the tests). It must not panic, must keep the program name, must be idempotent (a reordered
// command line is in order), and may only move arguments or split an attached value ("-c3"
// into "-c" "3"), never lose or invent one.
func FuzzReorderArgs(f *testing.F) {
	f.Add("pinglab udp ping 127.0.0.1 -c 3")
	f.Add("pinglab udp ping -c3 h -i0.2 -q")
	f.Add("pinglab lab exec client ping -c 1 10.77.2.2")
	var notFound string
	app := newApp(io.Discard, io.Discard, &notFound)
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		out := reorderArgs(app, args)
		if len(out) == 0 || out[0] != args[0] {
			t.Fatalf("reorderArgs(%q) = %q: the program name moved", args, out)
		}
		if again := reorderArgs(app, out); !slices.Equal(again, out) {
			t.Fatalf("reorderArgs(%q) = %q, but reordering that again gives %q", args, out, again)
		}
		if len(out) <= 32 && !sameArgs(args, out) {
			t.Fatalf("reorderArgs(%q) = %q: not the same arguments", args, out)
		}
	})
}

// sameArgs reports whether out holds the arguments of in, in any order, each either whole or
// split after its flag letters ("-c3" as "-c" "3", "-qc2" as "-q" "-c" "2", "-nf" as "-n" "-f").
func sameArgs(in, out []string) bool {
	left := map[string]int{}
	for _, a := range in {
		left[a]++
	}
	isLetter := func(p string) bool { return len(p) == 2 && p[0] == '-' }
	var match func(i int) bool
	// group tries out[i:k] joined into whole, and what follows, as input arguments: each
	// piece after the first is a flag letter (its "-" dropped) or, ending the group, a value.
	var group func(whole string, k int) bool
	group = func(whole string, k int) bool {
		if left[whole] > 0 {
			left[whole]--
			if match(k) {
				return true
			}
			left[whole]++
		}
		if k == len(out) || !isLetter(out[k-1]) {
			return false
		}
		if isLetter(out[k]) && group(whole+out[k][1:], k+1) {
			return true
		}
		if out[k] == "" {
			return false
		}
		// A value ends the group.
		if w := whole + out[k]; left[w] > 0 {
			left[w]--
			if match(k + 1) {
				return true
			}
			left[w]++
		}
		return false
	}
	match = func(i int) bool {
		if i == len(out) {
			for _, n := range left {
				if n != 0 {
					return false
				}
			}
			return true
		}
		return group(out[i], i+1)
	}
	return match(0)
}
