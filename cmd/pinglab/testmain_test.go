package main

import (
	"context"
	"os"
	"testing"
)

// The test binary doubles as pinglab: with asPinglabEnv=1 in its environment it runs as the
// command itself, so that tests can run pinglab as a child process (in a shell, in a lab host
// through "lab exec", which runs its own executable) without building it first.
const (
	asPinglabEnv = "PINGLAB_TEST_AS_PINGLAB"
	// labPrefixEnv gives the child's lab namespaces the names its test chose.
	labPrefixEnv = "PINGLAB_TEST_LAB_PREFIX"
)

func TestMain(m *testing.M) {
	if os.Getenv(asPinglabEnv) == "1" {
		if p := os.Getenv(labPrefixEnv); p != "" {
			labPrefix = p
		}
		os.Exit(run(context.Background(), append([]string{"pinglab"}, os.Args[1:]...), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
