package icmperr

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWords(t *testing.T) {
	tests := []struct {
		e    Error
		want string
		ann  string
	}{
		{Error{Type: 3, Code: 0}, "Destination Net Unreachable", "!N"},
		{Error{Type: 3, Code: 1}, "Destination Host Unreachable", "!H"},
		{Error{Type: 3, Code: 2}, "Destination Protocol Unreachable", "!P"},
		{Error{Type: 3, Code: 3}, "Destination Port Unreachable", ""},
		{Error{Type: 3, Code: 4, Info: 1400}, "Frag needed and DF set (mtu = 1400)", "!F-1400"},
		{Error{Type: 3, Code: 10}, "Destination Host Prohibited", "!X"},
		{Error{Type: 3, Code: 13}, "Packet filtered", "!X"},
		{Error{Type: 3, Code: 99}, "Dest Unreachable, Bad Code: 99", "!<99>"},
		{Error{Type: 11, Code: 0}, "Time to live exceeded", ""},
		{Error{Type: 12, Info: 20}, "Parameter problem: pointer = 20", ""},
		{Error{Type: 42}, "Bad ICMP type: 42", ""},
		{Error{V6: true, Type: 1, Code: 0}, "Destination unreachable: No route", "!N"},
		{Error{V6: true, Type: 1, Code: 1}, "Destination unreachable: Administratively prohibited", "!X"},
		{Error{V6: true, Type: 1, Code: 3}, "Destination unreachable: Address unreachable", "!H"},
		{Error{V6: true, Type: 1, Code: 4}, "Destination unreachable: Port unreachable", ""},
		{Error{V6: true, Type: 2, Info: 1280}, "Packet too big: mtu=1280", "!F-1280"},
		{Error{V6: true, Type: 3, Code: 0}, "Time exceeded: Hop limit", ""},
		{Error{V6: true, Type: 4, Code: 1, Info: 40}, "Parameter problem: Unknown header at 40", ""},
		{Error{Type: NoICMP, Reason: "Connection refused"}, "Connection refused", ""},
		{Error{Type: NoICMP, Errno: syscall.ECONNRESET}, "Connection reset by peer", ""},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.e.Words()); diff != "" {
				t.Errorf("Words (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.ann, tt.e.Annotation()); diff != "" {
				t.Errorf("Annotation (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromErrno(t *testing.T) {
	from := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		err  error
		v6   bool
		want string
	}{
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false, "Connection refused"},
		{syscall.EHOSTUNREACH, false, "Destination Host Unreachable"},
		{syscall.ENETUNREACH, false, "Destination Net Unreachable"},
		{syscall.EHOSTUNREACH, true, "Destination unreachable: Address unreachable"},
		{syscall.ETIMEDOUT, false, "Connection timed out"},
	}
	for _, tt := range tests {
		e := FromErrno(tt.err, tt.v6, from)
		if e == nil {
			t.Fatalf("FromErrno(%v) = nil", tt.err)
		}
		if got := e.Words(); got != tt.want {
			t.Errorf("FromErrno(%v).Words() = %q, want %q", tt.err, got, tt.want)
		}
		var errno syscall.Errno
		errors.As(tt.err, &errno)
		if !errors.Is(e, errno) {
			t.Errorf("errors.Is(%v, %v) = false", e, errno)
		}
	}
	if e := FromErrno(errors.New("plain"), false, from); e != nil {
		t.Errorf("FromErrno(plain) = %v, want nil", e)
	}
}
