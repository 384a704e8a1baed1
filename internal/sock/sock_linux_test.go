package sock

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// rawFd returns the descriptor of c, which stays non-blocking (the runtime set it so).
func rawFd(t *testing.T, c *net.UDPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// recvmsgWait calls Recvmsg until something is there to read, or fails the test after 10s.
func recvmsgWait(t *testing.T, fd int, p, oob []byte, flags int) (n, oobn, rflags int, from netip.Addr) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, oobn, rflags, from, err := Recvmsg(fd, p, oob, flags|unix.MSG_DONTWAIT)
		if err == nil {
			return n, oobn, rflags, from
		}
		if err != unix.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("Recvmsg: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRecvmsgKernel reads a datagram from the real kernel with timestamps and the TTL asked
// for, and checks what Recvmsg and ParseControl make of it.
func TestRecvmsgKernel(t *testing.T) {
	r, s := listenUDP(t), listenUDP(t)
	fd := rawFd(t, r)
	if err := SetTimestamps(fd); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := Recvmsg(fd, make([]byte, 8), nil, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Fatalf("Recvmsg on an empty socket: %v, want EAGAIN", err)
	}
	before := time.Now()
	if _, err := s.WriteTo([]byte("ping 1 x"), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	p, oob := make([]byte, 64), make([]byte, 128)
	n, oobn, flags, from := recvmsgWait(t, fd, p, oob, 0)
	after := time.Now()
	if diff := cmp.Diff("ping 1 x", string(p[:n])); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if flags&unix.MSG_TRUNC != 0 {
		t.Errorf("flags %#x has MSG_TRUNC", flags)
	}
	if want := netip.MustParseAddr("127.0.0.1"); from != want {
		t.Errorf("from = %v, want %v", from, want)
	}
	c := ParseControl(oob[:oobn])
	if c.Time.Before(before) || c.Time.After(after) {
		t.Errorf("kernel timestamp %v outside [%v, %v]", c.Time, before, after)
	}
	if c.TTL != 64 {
		t.Errorf("TTL = %d, want 64 (loopback's default)", c.TTL)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = ParseControl(oob[:oobn]) }); allocs != 0 {
		t.Errorf("ParseControl allocates %.0f times per read, want 0", allocs)
	}

	// A datagram longer than the buffer is cut and says so.
	if _, err := s.WriteTo([]byte("a longer datagram"), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	n, _, flags, _ = recvmsgWait(t, fd, p[:4], oob, 0)
	if n != 4 || flags&unix.MSG_TRUNC == 0 {
		t.Errorf("short buffer: n = %d, flags %#x; want 4 and MSG_TRUNC", n, flags)
	}
}

// TestRecvErr sends to a closed port on loopback from a connected socket with SetRecvErr: the
// next read returns a pending errno that PendingErrno knows, and the error queue holds an
// IP_RECVERR message for it.
func TestRecvErr(t *testing.T) {
	closed := listenUDP(t)
	addr := closed.LocalAddr().(*net.UDPAddr)
	closed.Close()
	c, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fd := rawFd(t, c)
	if err := SetRecvErr(fd, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping 1 x")); err != nil {
		t.Fatal(err)
	}
	p, oob := make([]byte, 64), make([]byte, 512)
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, _, _, _, err := Recvmsg(fd, p, oob, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			continue
		}
		if !errors.Is(err, unix.ECONNREFUSED) || !PendingErrno(err) {
			t.Fatalf("read after port unreachable: %v, want ECONNREFUSED, a pending errno", err)
		}
		break
	}
	n, oobn, _, _ := recvmsgWait(t, fd, p, oob, unix.MSG_ERRQUEUE)
	if diff := cmp.Diff("ping 1 x", string(p[:n])); diff != "" {
		t.Errorf("quoted datagram (-want +got):\n%s", diff)
	}
	var found bool
	for m := range ControlMessages(oob[:oobn]) {
		if m.Level == unix.SOL_IP && m.Type == unix.IP_RECVERR {
			found = true
			if errno := binary.NativeEndian.Uint32(m.Data); unix.Errno(errno) != unix.ECONNREFUSED {
				t.Errorf("sock_extended_err errno %d, want ECONNREFUSED", errno)
			}
		}
	}
	if !found {
		t.Errorf("no IP_RECVERR control message in %x", oob[:oobn])
	}
}

// cmsg builds one control message as the kernel lays it out, padded to alignment.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func timespec(sec, nsec int64) []byte {
	ts := unix.NsecToTimespec(sec*1e9 + nsec)
	return unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
}

func ttl(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func TestParseControl(t *testing.T) {
	ts := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(1700000000, 5))
	hop := cmsg(unix.SOL_IPV6, unix.IPV6_HOPLIMIT, ttl(57))
	bad := cmsg(unix.SOL_IP, unix.IP_TTL, ttl(3))
	binary.NativeEndian.PutUint64(bad, 1<<20) // a length past the buffer
	for _, tc := range []struct {
		name string
		oob  []byte
		want Control
	}{
		{"empty", nil, Control{}},
		{"timestamp", ts, Control{Time: time.Unix(1700000000, 5)}},
		{"timestamp and hop limit", append(append([]byte{}, ts...), hop...), Control{Time: time.Unix(1700000000, 5), TTL: 57}},
		{"ttl", cmsg(unix.SOL_IP, unix.IP_TTL, ttl(64)), Control{TTL: 64}},
		{"short ttl ignored", cmsg(unix.SOL_IP, unix.IP_TTL, []byte{1}), Control{}},
		{"short timestamp ignored", cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, []byte{1, 2, 3}), Control{}},
		{"other message skipped", append(cmsg(unix.SOL_IP, unix.IP_PKTINFO, make([]byte, 12)), hop...), Control{TTL: 57}},
		{"length past the buffer ends the walk", append(bad, ts...), Control{}},
		{"header cut short", ts[:unix.SizeofCmsghdr-1], Control{}},
		{"data cut short", ts[:len(ts)-1], Control{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ParseControl(tc.oob)); diff != "" {
				t.Errorf("ParseControl (-want +got):\n%s", diff)
			}
		})
	}
}

func TestControlMessagesStop(t *testing.T) {
	oob := append(cmsg(unix.SOL_IP, unix.IP_TTL, ttl(1)), cmsg(unix.SOL_IP, unix.IP_TTL, ttl(2))...)
	var got []uint32
	for m := range ControlMessages(oob) {
		got = append(got, binary.NativeEndian.Uint32(m.Data))
		break
	}
	if diff := cmp.Diff([]uint32{1}, got); diff != "" {
		t.Errorf("messages before break (-want +got):\n%s", diff)
	}
}

// FuzzParseControl feeds ParseControl arbitrary control buffers (the seeds in testdata/fuzz are
// real reads): it must not panic or read past the buffer, and every message it yields lies
// inside it.
func FuzzParseControl(f *testing.F) {
	f.Add(append(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(1, 2)), cmsg(unix.SOL_IP, unix.IP_TTL, ttl(64))...))
	f.Fuzz(func(t *testing.T, oob []byte) {
		_ = ParseControl(oob)
		total := 0
		for m := range ControlMessages(oob) {
			total += len(m.Data)
			if total > len(oob) {
				t.Fatalf("messages hold %d bytes of a %d-byte buffer", total, len(oob))
			}
		}
	})
}
