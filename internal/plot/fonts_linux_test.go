package plot

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"unsafe"
)

// resident counts the pages of b that are mapped into the process (the present bit of
// /proc/self/pagemap, readable without privileges).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer f.Close()
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	n := 0
	var e [8]byte
	for p := start &^ (page - 1); p < start+uintptr(len(b)); p += page {
		if _, err := f.ReadAt(e[:], int64(p/page*8)); err != nil {
			t.Fatal(err)
		}
		if binary.NativeEndian.Uint64(e[:])>>63 == 1 {
			n++
		}
	}
	return n
}

// TestFontPagesReleased checks that the fonts gonum parsed are not resident once released, and
// that a figure drawn afterwards (reading them back from the binary) is the same as before.
func TestFontPagesReleased(t *testing.T) {
	s := synthetic()
	draw := func() []byte {
		var b bytes.Buffer
		if err := RenderRun(&b, "png", s, Options{Width: 320, Height: 240}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	before := draw()
	total := 0
	for _, b := range fontData() {
		total += resident(t, wholePages(b))
	}
	if total == 0 {
		t.Fatal("no font page resident after drawing a figure: the check cannot see pages")
	}
	releaseFontPages()
	for i, b := range fontData() {
		if n := resident(t, wholePages(b)); n != 0 {
			t.Errorf("font %d: %d whole pages resident after release", i, n)
		}
	}
	if after := draw(); !bytes.Equal(before, after) {
		t.Errorf("figure after the release differs: %d bytes, was %d", len(after), len(before))
	}
}

func TestWholePages(t *testing.T) {
	page := os.Getpagesize()
	buf := make([]byte, 4*page)
	base := int(uintptr(unsafe.Pointer(&buf[0])) % uintptr(page))
	off := (page - base) % page // buf[off] starts a page
	for _, tc := range []struct {
		name      string
		from, to  int
		wantStart int
		wantLen   int
	}{
		{"exactly a page", off, off + page, 0, page},
		{"a page and a half", off, off + page + page/2, 0, page},
		{"starting mid-page", off + 1, off + 2*page + 1, page - 1, page},
		{"less than a page", off + 1, off + page, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := buf[tc.from:tc.to]
			got := wholePages(b)
			if len(got) != tc.wantLen {
				t.Fatalf("len %d, want %d", len(got), tc.wantLen)
			}
			if len(got) > 0 && &got[0] != &b[tc.wantStart] {
				t.Errorf("starts at offset %d, want %d", uintptr(unsafe.Pointer(&got[0]))-uintptr(unsafe.Pointer(&b[0])), tc.wantStart)
			}
		})
	}
}
