package icmperr

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/pinglab/pinglab/internal/testutil"
)

// TestParseErrQueueSeeds checks what ParseErrQueue makes of the fuzz seeds, control messages
// the kernel wrote for ICMP port unreachable on loopback.
func TestParseErrQueueSeeds(t *testing.T) {
	want := map[string]*Error{
		"udp4-port-unreachable": {Type: TypeDestUnreach, Code: CodePortUnreach,
			From: netip.MustParseAddr("127.0.0.1"), Errno: syscall.ECONNREFUSED},
		"udp4-port-unreachable-after-timestamp": {Type: TypeDestUnreach, Code: CodePortUnreach,
			From: netip.MustParseAddr("127.0.0.1"), Errno: syscall.ECONNREFUSED},
		"udp6-port-unreachable": {V6: true, Type: Type6DestUnreach, Code: Code6PortUnreach,
			From: netip.MustParseAddr("::1"), Errno: syscall.ECONNREFUSED},
	}
	seeds := testutil.FuzzSeeds(t, "FuzzParseErrQueue")
	for name, oob := range seeds {
		t.Run(name, func(t *testing.T) {
			got, err := ParseErrQueue([]byte(oob))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want[name], got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("ParseErrQueue (-want +got):\n%s", diff)
			}
		})
	}
	if len(seeds) != len(want) {
		t.Errorf("%d seeds, %d expected results: keep them in step", len(seeds), len(want))
	}
}

// recvErr builds an IP_RECVERR (or IPV6_RECVERR) control message: sock_extended_err and then
// the offender's sockaddr, as the kernel lays them out.
func recvErr(v6 bool, errno syscall.Errno, origin, typ, code uint8, info uint32, offender []byte) []byte {
	data := make([]byte, sizeofExtendedErr, sizeofExtendedErr+len(offender))
	binary.NativeEndian.PutUint32(data[0:], uint32(errno))
	data[4], data[5], data[6] = origin, typ, code
	binary.NativeEndian.PutUint32(data[8:], info)
	data = append(data, offender...)
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_IP, unix.IP_RECVERR
	if v6 {
		h.Level, h.Type = unix.SOL_IPV6, unix.IPV6_RECVERR
	}
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func sockaddr4(a [4]byte) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b, unix.AF_INET)
	copy(b[4:], a[:])
	return b
}

func TestParseErrQueue(t *testing.T) {
	cut := recvErr(false, syscall.EIO, unix.SO_EE_ORIGIN_ICMP, 3, 1, 0, nil)[:unix.CmsgLen(8)]
	(*unix.Cmsghdr)(unsafe.Pointer(&cut[0])).SetLen(unix.CmsgLen(8))
	for _, tc := range []struct {
		name    string
		oob     []byte
		want    *Error
		wantErr bool
	}{
		{"time exceeded", recvErr(false, syscall.EHOSTUNREACH, unix.SO_EE_ORIGIN_ICMP, uint8(TypeTimeExceeded), 0, 0, sockaddr4([4]byte{10, 0, 0, 1})),
			&Error{Type: TypeTimeExceeded, From: netip.MustParseAddr("10.0.0.1"), Errno: syscall.EHOSTUNREACH}, false},
		{"local message too long", recvErr(false, syscall.EMSGSIZE, unix.SO_EE_ORIGIN_LOCAL, 0, 0, 1500, nil),
			&Error{Type: NoICMP, Info: 1500, Errno: syscall.EMSGSIZE, Reason: "Local error: Message too long, mtu=1500"}, false},
		{"local other", recvErr(false, syscall.ENOBUFS, unix.SO_EE_ORIGIN_LOCAL, 0, 0, 0, nil),
			&Error{Type: NoICMP, Errno: syscall.ENOBUFS, Reason: "Local error: No buffer space available"}, false},
		{"unknown origin", recvErr(false, syscall.EIO, 9, 3, 1, 0, nil),
			&Error{Type: NoICMP, Errno: syscall.EIO}, false},
		{"short offender", recvErr(true, syscall.EACCES, unix.SO_EE_ORIGIN_ICMP6, uint8(Type6DestUnreach), Code6AdminProhibited, 0, []byte{10, 0}),
			&Error{V6: true, Type: Type6DestUnreach, Code: Code6AdminProhibited, Errno: syscall.EACCES}, false},
		{"no control messages", nil, nil, true},
		{"extended error cut short", cut, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseErrQueue(tc.oob)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseErrQueue error %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("ParseErrQueue (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseErrQueue feeds ParseErrQueue arbitrary control buffers, seeded with the kernel's own
// (testdata/fuzz/FuzzParseErrQueue): it must not panic, must return an Error or an error, and
// the Error must render.
func FuzzParseErrQueue(f *testing.F) {
	f.Add(recvErr(false, syscall.EMSGSIZE, unix.SO_EE_ORIGIN_LOCAL, 0, 0, 1280, nil))
	f.Add(recvErr(true, syscall.EHOSTUNREACH, unix.SO_EE_ORIGIN_ICMP6, uint8(Type6TimeExceeded), 0, 0, make([]byte, 28)))
	f.Fuzz(func(t *testing.T, oob []byte) {
		e, err := ParseErrQueue(oob)
		if (e == nil) == (err == nil) {
			t.Fatalf("ParseErrQueue = %v, %v: want exactly one of them", e, err)
		}
		if e != nil && e.Error() == "" {
			t.Fatalf("%#v renders as nothing", e)
		}
	})
}
