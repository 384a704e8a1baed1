package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// moduleDeps is modules.dep as depmod writes it: for each module's file (relative to
// /lib/modules/VERSION), the files of the modules it needs, in the order modprobe loads them
// backwards.
type moduleDeps struct {
	byName map[string]string   // module name -> its file
	deps   map[string][]string // file -> files it depends on
}

// moduleName is the name modprobe knows a module's file by: the base name without .ko and any
// compression suffix, with '-' read as '_' as the kernel does.
func moduleName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

func parseModulesDep(r io.Reader) (*moduleDeps, error) {
	m := &moduleDeps{byName: map[string]string{}, deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		file, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			return nil, fmt.Errorf("vmtest: modules.dep:%d: no colon in %q", line, sc.Text())
		}
		m.byName[moduleName(file)] = file
		m.deps[file] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vmtest: modules.dep: %w", err)
	}
	return m, nil
}

// closure returns the files of the named modules and of everything they need, each once,
// dependencies before the modules that need them. A name that modules.dep does not list is an
// error unless the kernel has it built in (builtin lists the names of modules.builtin).
func (m *moduleDeps) closure(names []string, builtin map[string]bool) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var visit func(file string)
	visit = func(file string) {
		if seen[file] {
			return
		}
		seen[file] = true
		for _, d := range m.deps[file] {
			visit(d)
		}
		out = append(out, file)
	}
	for _, n := range names {
		n = strings.ReplaceAll(n, "-", "_")
		file, ok := m.byName[n]
		if !ok {
			if builtin[n] {
				continue
			}
			return nil, fmt.Errorf("vmtest: module %s is neither in modules.dep nor built in", n)
		}
		visit(file)
	}
	return out, nil
}

// parseBuiltin reads modules.builtin (one file name a line) into a set of module names.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.TrimSpace(sc.Text()); f != "" {
			set[moduleName(f)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vmtest: modules.builtin: %w", err)
	}
	return set, nil
}

// parseLdd reads what ldd prints for a dynamic executable into the files it loads: the
// libraries it resolved ("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)") and the
// interpreter ("/lib64/ld-linux-x86-64.so.2 (0x...)"). The vDSO has no file and is left out;
// a library ldd could not find is an error.
func parseLdd(out string) ([]string, error) {
	var files []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "linux-vdso") || strings.HasPrefix(line, "linux-gate") {
			continue
		}
		if strings.Contains(line, "not a dynamic executable") || strings.Contains(line, "statically linked") {
			continue
		}
		if lib, target, ok := strings.Cut(line, "=>"); ok {
			target = strings.TrimSpace(target)
			if strings.HasPrefix(target, "not found") {
				return nil, fmt.Errorf("vmtest: ldd: %s not found", strings.TrimSpace(lib))
			}
			line = target
		}
		if f, _, _ := strings.Cut(line, " ("); strings.HasPrefix(f, "/") {
			files = append(files, f)
		}
	}
	return files, nil
}
