//go:build !race

package main

// raceEnabled says the tests (and the pinglab processes they start from the test binary) run
// under the race detector, which costs several times the memory.
const raceEnabled = false
