package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// A cpioWriter writes an archive in the "newc" format (cpio -H newc), the one format the Linux
// kernel unpacks as an initramfs. Entries are written in the order they are added; a directory
// must come before what it holds, which add's callers ensure through mkdirAll.
type cpioWriter struct {
	w    *bufio.Writer
	ino  int
	dirs map[string]bool
	err  error
}

func newCpioWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<16), ino: 1, dirs: map[string]bool{"": true, ".": true}}
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
)

// header writes one entry's header and name, padded to four bytes as newc wants.
func (c *cpioWriter) header(name string, mode, size int) {
	if c.err != nil {
		return
	}
	c.ino++
	// c_magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
	// rdevminor, namesize (with its NUL), check.
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	_, c.err = fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if c.err != nil {
		return
	}
	c.write([]byte(name + "\x00"))
	c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// clean makes name relative, as the kernel's unpacker expects ("bin/sh", not "/bin/sh").
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// mkdirAll adds name and its parents, each once.
func (c *cpioWriter) mkdirAll(name string) {
	name = clean(name)
	if c.dirs[name] {
		return
	}
	c.mkdirAll(path.Dir(name))
	c.dirs[name] = true
	c.header(name, modeDir|0o755, 0)
}

// file adds a regular file of size bytes read from r.
func (c *cpioWriter) file(name string, perm int, size int64, r io.Reader) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, modeFile|perm&0o7777, int(size))
	if c.err != nil {
		return
	}
	n, err := io.Copy(c.w, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("%s: read %d bytes, want %d", name, n, size)
	}
	if err != nil {
		c.err = err
		return
	}
	c.pad(int(size))
}

// symlink adds name pointing at target.
func (c *cpioWriter) symlink(name, target string) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, modeSymlink|0o777, len(target))
	c.write([]byte(target))
	c.pad(len(target))
}

// close writes the trailer and flushes; it does not close the underlying writer.
func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0)
	if c.err != nil {
		return fmt.Errorf("vmtest: cpio: %w", c.err)
	}
	return c.w.Flush()
}
