package udpping

import (
	"context"
	"strings"
	"testing"
)

// The message format and address parsing are tested in internal/pingmsg; this checks that
// Resolve takes the UDP networks and names the package in its errors.
func TestResolve(t *testing.T) {
	tests := []struct {
		network, in, want, wantErr string
	}{
		{"udp", "127.0.0.1", "127.0.0.1:12000", ""},
		{"udp6", "::1", "[::1]:12000", ""},
		{"udp4", "::1", "", "udpping: ::1 is not an IPv4 address"},
		{"tcp", "127.0.0.1", "", `udpping: bad network "tcp": want udp, udp4 or udp6`},
	}
	for _, tt := range tests {
		got, err := Resolve(context.Background(), tt.network, tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Resolve(%s, %q) = %v, %v; want error with %q", tt.network, tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("Resolve(%s, %q) = %v, %v; want %s", tt.network, tt.in, got, err, tt.want)
		}
	}
}
