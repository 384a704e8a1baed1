package tcpping

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinglab/pinglab/internal/icmperr"
	"github.com/pinglab/pinglab/internal/pingmsg"
)

func TestAppendPing(t *testing.T) {
	at := time.Date(2026, 11, 22, 16, 2, 43, 123456789, time.Local)
	tests := []struct {
		seq, size int
		want      string
	}{
		{1, 0, "ping 1 2026-11-22 16:02:43.123456\n"},
		{1, MinSize, "ping 1 2026-11-22 16:02:43.123456\n"},
		{1, MinSize + 1, "ping 1 2026-11-22 16:02:43.123456 \n"},
		{1, MinSize + 4, "ping 1 2026-11-22 16:02:43.123456 abc\n"},
		{12, MinSize, "ping 12 2026-11-22 16:02:43.123456\n"},
		{3, 64, "ping 3 2026-11-22 16:02:43.123456 abcdefghijklmnopqrstuvwxyzabcd\n"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.seq, "/", tt.size), func(t *testing.T) {
			got := string(AppendPing(nil, tt.seq, at, tt.size))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("AppendPing(%d, %d) (-want +got):\n%s", tt.seq, tt.size, diff)
			}
			if tt.size > MinSize && len(got) != tt.size+1 {
				t.Errorf("AppendPing(%d, %d) is %d bytes, want size+1 for the newline", tt.seq, tt.size, len(got))
			}
		})
	}
}

func TestParseModes(t *testing.T) {
	for _, m := range []DropMode{DropLost, DropSilent, DropClose} {
		got, err := ParseDropMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseDropMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	for _, m := range []ConnectMode{ConnectKeep, ConnectPerPing} {
		got, err := ParseConnectMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseConnectMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	if _, err := ParseDropMode("loud"); !errors.Is(err, errBadDropMode) {
		t.Errorf("ParseDropMode(loud) = %v, want %v", err, errBadDropMode)
	}
	if _, err := ParseConnectMode("sometimes"); !errors.Is(err, errBadConnectMode) {
		t.Errorf("ParseConnectMode(sometimes) = %v, want %v", err, errBadConnectMode)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		network, in string
		want        string
		wantErr     string
	}{
		{"tcp", "127.0.0.1", "127.0.0.1:12000", ""},
		{"tcp", "127.0.0.1:7", "127.0.0.1:7", ""},
		{"tcp", "[::1]:7", "[::1]:7", ""},
		{"tcp", "::1", "[::1]:12000", ""},
		{"tcp4", "::1", "", "not an IPv4 address"},
		{"tcp6", "127.0.0.1", "", "not an IPv6 address"},
		{"tcp", "127.0.0.1:0", "", "bad port"},
		{"tcp", "127.0.0.1:99999", "", "bad port"},
		{"tcp", "127.0.0.1:", "", "empty port"},
		{"tcp", ":7", "", "missing host"},
		{"tcp", "[::1", "", "missing ']'"},
		{"udp", "127.0.0.1", "", `bad network "udp": want tcp, tcp4 or tcp6`},
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

func TestConnErr(t *testing.T) {
	target := netip.MustParseAddr("127.0.0.1")
	c := &Client{remote: netip.AddrPortFrom(target, 7)}
	type view struct {
		Words  string
		Type   int
		Code   int
		From   string
		Errno  syscall.Errno
		Reason string
	}
	tests := []struct {
		name string
		err  error
		want view
	}{
		{"refused", &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED},
			view{"Connection refused", icmperr.NoICMP, 0, "127.0.0.1", syscall.ECONNREFUSED, "Connection refused"}},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET),
			view{"Connection reset by peer", icmperr.NoICMP, 0, "127.0.0.1", syscall.ECONNRESET, "Connection reset by peer"}},
		{"kernel timeout", syscall.ETIMEDOUT,
			view{"Connection timed out", icmperr.NoICMP, 0, "127.0.0.1", syscall.ETIMEDOUT, "Connection timed out"}},
		{"dial timeout", fmt.Errorf("dial: %w", os.ErrDeadlineExceeded),
			view{"Connection timed out", icmperr.NoICMP, 0, "127.0.0.1", syscall.ETIMEDOUT, "Connection timed out"}},
		{"host unreachable", syscall.EHOSTUNREACH,
			view{"Destination Host Unreachable", icmperr.TypeDestUnreach, icmperr.CodeHostUnreach, "invalid IP", syscall.EHOSTUNREACH, ""}},
		{"net unreachable", syscall.ENETUNREACH,
			view{"Destination Net Unreachable", icmperr.TypeDestUnreach, icmperr.CodeNetUnreach, "invalid IP", syscall.ENETUNREACH, ""}},
		{"broken pipe", syscall.EPIPE,
			view{"Connection closed by server", icmperr.NoICMP, 0, "127.0.0.1", syscall.EPIPE, "Connection closed by server"}},
		{"other", io.ErrUnexpectedEOF,
			view{"Unexpected EOF", icmperr.NoICMP, 0, "127.0.0.1", 0, "Unexpected EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := c.connErr(tt.err)
			got := view{e.Words(), e.Type, e.Code, e.From.String(), e.Errno, e.Reason}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("connErr(%v) (-want +got):\n%s", tt.err, diff)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		cfg  Config
		want error
	}{
		{Config{Addr: "127.0.0.1", Size: MinSize - 1}, errSizeSmall},
		{Config{Addr: "127.0.0.1", Size: MaxSize + 1}, errSizeLarge},
		{Config{Addr: "127.0.0.1", Connect: 9}, errBadConnectMode},
		{Config{Addr: "127.0.0.1", Timeout: -1}, errBadTimeout},
	} {
		if _, err := Dial(ctx, tt.cfg); !errors.Is(err, tt.want) {
			t.Errorf("Dial(%+v) = %v, want %v", tt.cfg, err, tt.want)
		}
	}
	for _, tt := range []struct {
		cfg  ServerConfig
		want error
	}{
		{ServerConfig{Addr: "127.0.0.1:0", Drop: 1.5}, errBadDrop},
		{ServerConfig{Addr: "127.0.0.1:0", Delay: -1}, errBadDelay},
		{ServerConfig{Addr: "127.0.0.1:0", MaxConns: -1}, errBadLimit},
		{ServerConfig{Addr: "127.0.0.1:0", DropMode: 7}, errBadDropMode},
		{ServerConfig{Addr: "127.0.0.1:0", Network: "udp"}, pingmsg.ErrBadNetwork},
	} {
		if _, err := Listen(ctx, tt.cfg); !errors.Is(err, tt.want) {
			t.Errorf("Listen(%+v) = %v, want %v", tt.cfg, err, tt.want)
		}
	}
}
