package testutil

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzSeeds reads the seed corpus of the fuzz target name, testdata/fuzz/<name>/*, files in the
// format "go test fuzz v1" with one []byte or string value each, so that a table test can check
// what the parser makes of each seed (the fuzz target only checks it does not crash). It maps
// each file's name to its value.
func FuzzSeeds(t testing.TB, name string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no seeds in testdata/fuzz/%s", name)
	}
	seeds := make(map[string]string)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		header, value, ok := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if !ok || header != "go test fuzz v1" {
			t.Fatalf("%s: not a go test fuzz v1 file", p)
		}
		value = strings.TrimSpace(value)
		var quoted string
		for _, typ := range []string{"[]byte(", "string("} {
			if s, ok := strings.CutPrefix(value, typ); ok {
				quoted, ok = strings.CutSuffix(s, ")")
				if !ok {
					t.Fatalf("%s: %q does not end in )", p, value)
				}
			}
		}
		v, err := strconv.Unquote(quoted)
		if err != nil {
			t.Fatalf("%s: value %q: %v", p, value, err)
		}
		seeds[filepath.Base(p)] = v
	}
	return seeds
}
