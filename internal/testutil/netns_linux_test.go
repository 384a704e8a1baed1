package testutil

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netns"
)

func TestNewNetns(t *testing.T) {
	name := fmt.Sprintf("testutil%d", os.Getpid())
	t.Run("inside", func(t *testing.T) {
		h := NewNetns(t, name)
		if _, err := netns.GetFromName(name); err != nil {
			t.Fatalf("namespace %s not bound: %v", name, err)
		}
		InNetns(t, h, func() {
			// Loopback is up: a listener on it takes a connection.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatalf("loopback in the namespace: %v", err)
			}
			c.Close()
		})
	})
	if h, err := netns.GetFromName(name); err == nil {
		h.Close()
		t.Errorf("namespace %s still there after its test ended", name)
	}
}
