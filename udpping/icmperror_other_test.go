//go:build !linux

package udpping

import (
	"context"
	"runtime"
	"strings"
	"testing"
)

// TestICMPErrorNotSupported checks that a server asked for ICMP errors outside Linux says at once
// that it cannot, naming the system.
func TestICMPErrorNotSupported(t *testing.T) {
	s, err := Listen(context.Background(), ServerConfig{Addr: "127.0.0.1:0", ICMPError: 0.5})
	if err == nil {
		s.Close()
		t.Fatal("Listen with ICMPError succeeded")
	}
	if want := runtime.GOOS + "/" + runtime.GOARCH; !strings.Contains(err.Error(), want) {
		t.Errorf("Listen: %v; want an error naming %s", err, want)
	}
}
