//go:build !linux

package icmpping

import (
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
)

func TestUDPTraceNotSupported(t *testing.T) {
	_, err := dialUDPTracer(TraceConfig{Target: netip.MustParseAddr("127.0.0.1")})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("dialUDPTracer = %v, want ErrNotSupported naming %s/%s", err, runtime.GOOS, runtime.GOARCH)
	}
}
