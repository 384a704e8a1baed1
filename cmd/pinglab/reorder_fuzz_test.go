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
		if !sameArgs(args, out, true) && !sameArgs(args, out, false) {
			t.Fatalf("reorderArgs(%q) = %q: not the same arguments", args, out)
		}
	})
}

// sameArgs reports whether out holds the arguments of in, in any order, each either whole or
// split in two after its flag letter ("-c3" as "-c" "3"). splitFirst says which reading to try
// first when an argument could be either.
func sameArgs(in, out []string, splitFirst bool) bool {
	left := map[string]int{}
	for _, a := range in {
		left[a]++
	}
	take := func(a string) bool {
		if left[a] == 0 {
			return false
		}
		left[a]--
		return true
	}
	for i := 0; i < len(out); i++ {
		o := out[i]
		canSplit := len(o) == 2 && o[0] == '-' && i+1 < len(out) && out[i+1] != "" && left[o+out[i+1]] > 0
		switch {
		case splitFirst && canSplit:
			take(o + out[i+1])
			i++
		case take(o):
		case canSplit:
			take(o + out[i+1])
			i++
		default:
			return false
		}
	}
	for _, n := range left {
		if n != 0 {
			return false
		}
	}
	return true
}
