package vmtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pinglab/pinglab/internal/testutil"
)

// vmEnv switches TestVM on; without it the test skips, so that `go test ./...` does not boot a
// VM. scripts/vm.sh sets it and kernelEnv.
const (
	vmEnv     = "PINGLAB_VM_TESTS"
	kernelEnv = "PINGLAB_VM_KERNEL"
	// scriptEnv names a shell script the VM runs instead of the tests, with pinglab, the test
	// binaries and the tools at hand: how the README's VM transcripts were made.
	scriptEnv = "PINGLAB_VM_SCRIPT"
	// packagesEnv, where set, lists the packages (as folders: "lossy cmd/pinglab") whose tests
	// the VM runs, instead of every package with root-only tests.
	packagesEnv = "PINGLAB_VM_PACKAGES"
)

// modules are what the tests need of the kernel beyond what Debian builds in: netem and the
// other qdiscs the tests put on links, veth for labs, TUN, and the nftables expressions
// pinglab's rules and the nft witness use. Their dependencies come from modules.dep.
var modules = []string{
	"sch_netem", "sch_tbf", "sch_htb", "veth", "tun",
	"nf_tables", "nft_numgen", "nft_reject_inet", "nft_reject_ipv4", "nft_reject_ipv6",
	// vishvananda/netlink opens an XFRM socket with every handle.
	"xfrm_user",
}

// mustPass are tests that skip on a kernel without netem and so must be seen passing in the VM:
// a skip there is a failure.
var mustPass = map[string][]string{"lossy": {
	"TestNetemMeasured", "TestNetemLossCorrelation", "TestNetemDelayJitter", "TestNetemDuplicate",
	"TestNetemReorder", "TestNetemCorrupt", "TestNetemRate", "TestNetemForAndClear", "TestNetemSignals",
	"TestNetemForeignQdisc", "TestNetemAutoload", "TestNetemMissingError",
}}

// tools are the witnesses the tests compare pinglab with; they go in with their libraries.
var tools = []string{"tc", "nft", "ip", "ping", "traceroute", "bash"}

// toolFiles are data files the tools read: nft resolves protocol names ("ipv6-icmp") through
// /etc/protocols.
var toolFiles = []string{"/etc/protocols", "/etc/services"}

func TestVM(t *testing.T) {
	if os.Getenv(vmEnv) != "1" {
		t.Skipf("set %s=1 and %s, or run scripts/vm.sh: it boots Debian's kernel under QEMU", vmEnv, kernelEnv)
	}
	k, err := FindKernel(os.Getenv(kernelEnv))
	if err != nil {
		t.Fatalf("%s: %v (scripts/vm.sh fetches the kernel)", kernelEnv, err)
	}
	for _, p := range []string{"qemu-system-x86_64", "ldd"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s: %v (Debian: apt-get install qemu-system-x86)", p, err)
		}
	}
	busybox := "/bin/busybox"
	if out, err := exec.Command("ldd", busybox).CombinedOutput(); err == nil {
		t.Fatalf("%s is not static (%s); apt-get install busybox-static", busybox, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	root, pkgs := rootTestPackages(t)
	start := time.Now()
	steps, files := buildAll(t, root, dir, pkgs)
	if script := os.Getenv(scriptEnv); script != "" {
		steps = []Step{{Name: "script", Dir: "/root", Args: []string{"/bin/sh", "-x", "/root/script.sh"}, Env: []string{"PINGLAB_VM=1"}}}
	}
	var n int
	for _, p := range pkgs {
		n += len(p.tests)
	}
	t.Logf("built pinglab and %d test binaries (%d tests that need root) in %v", len(pkgs), n, time.Since(start).Round(time.Millisecond))

	im := Image{
		Kernel:  k,
		Busybox: busybox,
		Modules: modules,
		Tools:   tools,
		Files:   files,
		Etc: map[string]string{
			"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
			"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
			"etc/hosts":  "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
			// ip netns exec binds /etc/netns/NS/resolv.conf over this one, so it must exist;
			// with no nameserver line resolvers ask loopback, and the VM has no other network.
			// Debian's order: files first, for Go's resolver and glibc's (ping) alike.
			"etc/nsswitch.conf": "hosts: files dns\nnetworks: files\n",
			"etc/resolv.conf":   "# the VM has no network but loopback and its namespaces\n",
		},
		Steps: steps,
	}
	for _, f := range toolFiles {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v (Debian: apt-get install netbase)", err)
		}
		im.Files[f] = f
	}
	if script := os.Getenv(scriptEnv); script != "" {
		im.Files["/root/script.sh"] = script
	}
	initrd := filepath.Join(dir, "initrd.gz")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(initrd); err == nil {
		t.Logf("initramfs: %.1f MB", float64(st.Size())/1e6)
	}

	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	m := Machine{Kernel: k, Initrd: initrd, MemoryMB: 2048, CPUs: 2, Console: filepath.Join(dir, "console.log")}
	m.Accel = "tcg"
	start = time.Now()
	if err := ProbeKVM(ctx, m, 6*time.Second); err != nil {
		t.Logf("KVM does not work here, booting with TCG: %v", err)
	} else {
		m.Accel = "kvm"
	}
	t.Logf("accelerator: %s (probe took %v)", m.Accel, time.Since(start).Round(time.Millisecond))

	events := make(chan Event, 1024)
	errc := make(chan error, 1)
	start = time.Now()
	go func() {
		errc <- m.Run(ctx, func(r io.Reader) error {
			return Scan(r, func(e Event) { events <- e })
		})
		close(events)
	}()
	var kernel string
	var done bool
	ran := map[string]bool{}
	verdicts := map[string]string{} // test name -> PASS, FAIL or SKIP, as the VM's tests said
	for e := range events {
		switch e.Kind {
		case "kernel":
			kernel = e.Name
			fmt.Printf("guest kernel (uname -r): %s\n", kernel)
		case "line":
			fmt.Println(e.Line)
		case "begin":
			ran[e.Name] = true
			t.Run(e.Name, func(t *testing.T) { stepOutput(t, e.Name, events, verdicts) })
		case "done":
			done = true
		}
	}
	err = <-errc
	t.Logf("the VM ran for %v", time.Since(start).Round(time.Millisecond))
	if err != nil || !done {
		t.Errorf("VM: %v, init finished: %v; the kernel's console said:\n%s", err, done, tail(m.Console, 40))
	}
	if kernel != k.Version {
		t.Errorf("guest kernel %q, want %q", kernel, k.Version)
	}
	for _, s := range steps {
		if !ran[s.Name] {
			t.Errorf("step %s never began", s.Name)
		}
	}
	if os.Getenv(scriptEnv) == "" {
		for step, names := range mustPass {
			for _, name := range names {
				if v := verdicts[name]; ran[step] && v != "PASS" {
					t.Errorf("%s in the VM: %q, want PASS", name, v)
				}
			}
		}
	}
}

// verdictLine matches go test's verdict of one test: "--- PASS: TestX (0.01s)".
var verdictLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

// stepOutput prints a step's output until its end mark and fails the subtest where it failed.
func stepOutput(t *testing.T, name string, events <-chan Event, verdicts map[string]string) {
	for e := range events {
		switch e.Kind {
		case "line":
			fmt.Println(e.Line)
			if m := verdictLine.FindStringSubmatch(e.Line); m != nil {
				verdicts[m[2]] = m[1]
			}
		case "end":
			if e.Name != name || e.Code != 0 {
				t.Errorf("%s in the VM: exit status %d", e.Name, e.Code)
			}
			return
		default:
			t.Errorf("VM reported %s %s inside step %s", e.Kind, e.Name, name)
			return
		}
	}
	t.Errorf("the VM stopped during %s", name)
}

func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// A rootPackage is a package with tests that need root, and those tests.
type rootPackage struct {
	path, rel string // import path, folder in the module
	tests     []string
}

// rootTestPackages lists the module's packages that have tests that need root (RootTests).
func rootTestPackages(t *testing.T) (root string, pkgs []rootPackage) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Path}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	root, mod, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	testutilPath := mod + "/internal/testutil"
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	only := strings.Fields(os.Getenv(packagesEnv))
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// The harness itself runs outside; a package whose tests do not import testutil
		// (testutil's own tests are in it) needs no root.
		if len(f) == 0 || f[0] == mod+"/internal/vmtest" || !slices.Contains(f, testutilPath) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], mod), "/")
		if len(only) > 0 && !slices.Contains(only, rel) {
			continue
		}
		tests, err := RootTests(filepath.Join(root, rel), testutilPath, f[0] == testutilPath)
		if err != nil {
			t.Fatal(err)
		}
		if len(tests) > 0 {
			pkgs = append(pkgs, rootPackage{path: f[0], rel: rel, tests: tests})
		}
	}
	slices.SortFunc(pkgs, func(a, b rootPackage) int { return strings.Compare(a.path, b.path) })
	return root, pkgs
}

// buildAll compiles pinglab and the packages' test binaries, static, into dir, and returns the
// steps that run their root-only tests in the VM, each from its package's folder under /src as
// go test would, and the files the VM needs for them: the binaries, the README (its examples
// are a test) and the testdata folders.
func buildAll(t *testing.T, root, dir string, pkgs []rootPackage) ([]Step, map[string]string) {
	t.Helper()
	env := append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	run := func(args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = root, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("build", "-o", filepath.Join(dir, "pinglab"), "./cmd/pinglab")
	args := []string{"test", "-c", "-o", dir + "/"}
	for _, p := range pkgs {
		args = append(args, p.path)
	}
	run(args...)
	var steps []Step
	files := map[string]string{
		"/usr/bin/pinglab": filepath.Join(dir, "pinglab"),
		"/src/testdata":    filepath.Join(root, "testdata"),
		"/src/README.md":   filepath.Join(root, "README.md"),
	}
	names := map[string]string{}
	for _, p := range pkgs {
		bin := path.Base(p.path) + ".test"
		if other, ok := names[bin]; ok {
			t.Fatalf("%s and %s both build %s", other, p.path, bin)
		}
		names[bin] = p.path
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			t.Fatalf("go test -c built no %s: %v", bin, err)
		}
		files[path.Join("/src", p.rel, bin)] = filepath.Join(dir, bin)
		if _, err := os.Stat(filepath.Join(root, p.rel, "testdata")); err == nil && p.rel != "" {
			files[path.Join("/src", p.rel, "testdata")] = filepath.Join(root, p.rel, "testdata")
		}
		steps = append(steps, Step{
			Name: strings.ReplaceAll(p.rel, "/", "."),
			Dir:  path.Join("/src", p.rel),
			Env:  []string{testutil.RequireRootEnv + "=1", testutil.VMEnv + "=1"},
			Args: []string{"./" + bin, "-test.v", "-test.count=1", "-test.timeout=4m", "-test.run=^(" + strings.Join(p.tests, "|") + ")$"},
		})
	}
	return steps, files
}
