// Package vmtest runs pinglab's root-only tests on a second, real kernel: Debian's cloud kernel,
// booted under QEMU with an initramfs that holds busybox, the test binaries (built static), the
// kernel modules they need (resolved from modules.dep) and the witness tools (tc, nft, ip,
// ping, traceroute) with their shared libraries. Its test, TestVM, streams what the tests print
// inside the VM back as its own output and fails where they fail.
//
// It is a Go test package rather than a script because its verdict then is an ordinary go test
// verdict, the archive and the module closure are Go code tested on their own, and nothing
// beyond Go, QEMU, busybox and the kernel package is needed (no cpio, no mkinitramfs).
package vmtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// Mark starts every line the VM's init prints about the run itself, not the tests' output.
const Mark = "@@pinglab-vm"

//go:embed init.sh
var initScript string

var initTemplate = template.Must(template.New("init").Parse(initScript))

// A Kernel is an unpacked Debian kernel package: boot/vmlinuz-VERSION and
// lib/modules/VERSION/ with modules.dep (the package leaves that to depmod: scripts/vm.sh
// runs it).
type Kernel struct {
	Root    string
	Version string
}

// Image is the kernel image's path.
func (k Kernel) Image() string { return filepath.Join(k.Root, "boot", "vmlinuz-"+k.Version) }

// ModDir is the kernel's module directory.
func (k Kernel) ModDir() string { return filepath.Join(k.Root, "lib", "modules", k.Version) }

// FindKernel finds the one kernel unpacked under root.
func FindKernel(root string) (Kernel, error) {
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return Kernel{}, fmt.Errorf("vmtest: want one boot/vmlinuz-* under %s, found %d", root, len(images))
	}
	k := Kernel{Root: root, Version: strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")}
	if _, err := os.Stat(filepath.Join(k.ModDir(), "modules.dep")); err != nil {
		return Kernel{}, fmt.Errorf("vmtest: %w (run depmod -b %s %s)", err, root, k.Version)
	}
	return k, nil
}

// A Step is one command the VM's init runs, in Dir, with Env added.
type Step struct {
	Name string
	Dir  string
	Env  []string
	Args []string
}

// An Image describes the initramfs.
type Image struct {
	Kernel Kernel
	// Busybox is a static busybox; every applet it has becomes a link, except where a tool
	// of the same name is copied in.
	Busybox string
	// Modules are module names; they go in with everything modules.dep says they need.
	Modules []string
	// Preload are the modules init loads; the rest the kernel loads on demand, through
	// busybox's modprobe, as a distribution's kernel does.
	Preload []string
	// Tools are host programs copied in at the same path with the libraries ldd names.
	Tools []string
	// Files maps a path in the VM to a file or directory on the host.
	Files map[string]string
	// Etc maps a path in the VM to its contents.
	Etc   map[string]string
	Steps []Step
}

// Write writes the image as a gzip-compressed newc cpio archive.
func (im Image) Write(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	c := newCpioWriter(zw)
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "etc"} {
		c.mkdirAll(d)
	}
	var script bytes.Buffer
	if err := initTemplate.Execute(&script, im.initData()); err != nil {
		return fmt.Errorf("vmtest: init script: %w", err)
	}
	c.file("init", 0o755, int64(script.Len()), &script)
	for name, text := range im.Etc {
		c.file(name, 0o644, int64(len(text)), strings.NewReader(text))
	}
	taken := map[string]bool{}
	files := map[string]string{} // path in VM -> host path
	for _, tool := range im.Tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			return fmt.Errorf("vmtest: witness tool %s: %w", tool, err)
		}
		if p, err = filepath.Abs(p); err != nil {
			return err
		}
		files[p] = p
		taken[filepath.Base(p)] = true
		out, err := exec.Command("ldd", p).Output()
		// ldd exits 1 for a static program; its output then names no library.
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return fmt.Errorf("vmtest: ldd %s: %w", p, err)
		}
		libs, err := parseLdd(string(out))
		if err != nil {
			return err
		}
		for _, l := range libs {
			files[l] = l
		}
	}
	for dst, src := range im.Files {
		files[dst] = src
	}
	if err := im.addModules(files); err != nil {
		return err
	}
	for _, dst := range sortedKeys(files) {
		if err := addTree(c, dst, files[dst]); err != nil {
			return err
		}
	}
	if err := im.addBusybox(c, taken); err != nil {
		return err
	}
	if err := c.close(); err != nil {
		return err
	}
	return zw.Close()
}

func (im Image) initData() any {
	q := func(args []string) string {
		s := make([]string, len(args))
		for i, a := range args {
			s[i] = shellQuote(a)
		}
		return strings.Join(s, " ")
	}
	type step struct{ Name, Dir, Env, Args string }
	steps := make([]step, len(im.Steps))
	for i, s := range im.Steps {
		steps[i] = step{Name: s.Name, Dir: shellQuote(s.Dir), Env: q(s.Env), Args: q(s.Args)}
	}
	return struct {
		Mark    string
		Preload string
		Steps   []step
	}{Mark, q(im.Preload), steps}
}

// addModules puts the modules' closure and depmod's indexes into files.
func (im Image) addModules(files map[string]string) error {
	dir := im.Kernel.ModDir()
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return err
	}
	defer f.Close()
	deps, err := parseModulesDep(f)
	if err != nil {
		return err
	}
	builtin := map[string]bool{}
	if b, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		builtin, err = parseBuiltin(b)
		b.Close()
		if err != nil {
			return err
		}
	}
	mods, err := deps.closure(append(append([]string{}, im.Modules...), im.Preload...), builtin)
	if err != nil {
		return err
	}
	vmDir := path.Join("/lib/modules", im.Kernel.Version)
	for _, m := range mods {
		files[path.Join(vmDir, m)] = filepath.Join(dir, m)
	}
	// busybox's modprobe reads the text indexes: modules.dep for what to load first,
	// modules.alias for the names the kernel asks for ("nft-expr-numgen", "sch_netem").
	idx, _ := filepath.Glob(filepath.Join(dir, "modules.*"))
	for _, p := range idx {
		if !strings.HasSuffix(p, ".bin") {
			files[path.Join(vmDir, filepath.Base(p))] = p
		}
	}
	return nil
}

// addBusybox adds busybox at /bin/busybox and a link for each of its applets.
func (im Image) addBusybox(c *cpioWriter, taken map[string]bool) error {
	if err := addTree(c, "/bin/busybox", im.Busybox); err != nil {
		return err
	}
	out, err := exec.Command(im.Busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("vmtest: busybox --list-full: %w", err)
	}
	for _, app := range strings.Fields(string(out)) {
		if taken[path.Base(app)] || app == "bin/busybox" {
			continue
		}
		c.symlink(app, "/bin/busybox")
	}
	return nil
}

// addTree adds the host file or directory src at dst, following symbolic links (a library
// path such as libc.so.6 is often one).
func addTree(c *cpioWriter, dst, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	if st.IsDir() {
		c.mkdirAll(dst)
		ents, err := os.ReadDir(src)
		if err != nil {
			return fmt.Errorf("vmtest: %w", err)
		}
		for _, e := range ents {
			if err := addTree(c, path.Join(dst, e.Name()), filepath.Join(src, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	defer f.Close()
	c.file(dst, int(st.Mode().Perm()), st.Size(), f)
	return c.err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./,:^$") == "" && !strings.Contains(s, "$") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// An Event is one thing the VM's init reported, or one line a step printed.
type Event struct {
	Kind string // "line", "kernel", "begin", "end", "done"
	Name string // the step's name for begin and end, the kernel's version for kernel
	Code int    // the step's exit code, for end
	Line string // for line
}

// Scan reads the VM's output and calls emit for each mark and each other line.
func Scan(r io.Reader, emit func(Event)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		rest, ok := strings.CutPrefix(line, Mark+" ")
		if !ok {
			emit(Event{Kind: "line", Line: line})
			continue
		}
		f := strings.Fields(rest)
		switch {
		case len(f) == 2 && (f[0] == "kernel" || f[0] == "begin"):
			emit(Event{Kind: f[0], Name: f[1]})
		case len(f) == 3 && f[0] == "end":
			code, err := strconv.Atoi(f[2])
			if err != nil {
				code = -1
			}
			emit(Event{Kind: "end", Name: f[1], Code: code})
		case len(f) == 1 && f[0] == "done":
			emit(Event{Kind: "done"})
		default:
			emit(Event{Kind: "line", Line: line})
		}
	}
	return sc.Err()
}
