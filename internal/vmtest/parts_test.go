package vmtest

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pinglab/pinglab/internal/testutil"
)

// TestCpioWitness writes an archive and has Debian's cpio list and unpack it.
func TestCpioWitness(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		testutil.SkipOrFail(t, "cpio is not installed (Debian: apt-get install cpio)")
	}
	var b bytes.Buffer
	c := newCpioWriter(&b)
	c.file("/usr/bin/hello", 0o755, 5, strings.NewReader("hello"))
	c.file("etc/odd", 0o600, 3, strings.NewReader("abc"))
	c.symlink("bin/sh", "/bin/busybox")
	c.mkdirAll("run/netns")
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if b.Len()%4 != 0 {
		t.Errorf("archive is %d bytes, not a multiple of 4", b.Len())
	}
	cmd := exec.Command("cpio", "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(b.Bytes())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -it: %v", err)
	}
	want := "usr\nusr/bin\nusr/bin/hello\netc\netc/odd\nbin\nbin/sh\nrun\nrun/netns\n"
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("cpio -it (-want +got):\n%s", diff)
	}
	dir := t.TempDir()
	cmd = exec.Command("cpio", "-id", "--quiet")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(b.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v %s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "usr/bin/hello")); err != nil || string(got) != "hello" {
		t.Errorf("usr/bin/hello: %q %v", got, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "usr/bin/hello")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/hello mode: %v %v", st, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "/bin/busybox" {
		t.Errorf("bin/sh -> %q %v", l, err)
	}
}

func TestModuleClosure(t *testing.T) {
	dep := `kernel/net/sched/sch_netem.ko:
kernel/net/netfilter/nft_reject_inet.ko: kernel/net/ipv4/netfilter/nf_reject_ipv4.ko kernel/net/netfilter/nft_reject.ko kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nfnetlink.ko
kernel/net/netfilter/nft_reject.ko: kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nfnetlink.ko
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko
kernel/net/netfilter/nfnetlink.ko:
kernel/net/ipv4/netfilter/nf_reject_ipv4.ko:
kernel/drivers/net/veth.ko.xz:
`
	m, err := parseModulesDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.closure([]string{"nft_reject_inet", "sch-netem", "nf_tables", "veth", "unix"}, map[string]bool{"unix": true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/net/ipv4/netfilter/nf_reject_ipv4.ko", "kernel/net/netfilter/nfnetlink.ko",
		"kernel/net/netfilter/nf_tables.ko", "kernel/net/netfilter/nft_reject.ko",
		"kernel/net/netfilter/nft_reject_inet.ko", "kernel/net/sched/sch_netem.ko", "kernel/drivers/net/veth.ko.xz",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("closure (-want +got):\n%s", diff)
	}
	if _, err := m.closure([]string{"sch_nosuch"}, nil); err == nil || !strings.Contains(err.Error(), "sch_nosuch") {
		t.Errorf("closure of an unknown module: %v, want an error naming it", err)
	}
	if _, err := parseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Errorf("parseModulesDep of a line without a colon: no error")
	}
}

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffd6a5f2000)
	libmnl.so.0 => /lib/x86_64-linux-gnu/libmnl.so.0 (0x00007f0c8a1c0000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c89fde000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f0c8a2b7000)
`
	got, err := parseLdd(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libmnl.so.0", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseLdd (-want +got):\n%s", diff)
	}
	if got, err := parseLdd("\tnot a dynamic executable\n"); err != nil || len(got) != 0 {
		t.Errorf("static: %v %v", got, err)
	}
	if _, err := parseLdd("\tlibfoo.so.1 => not found\n"); err == nil || !strings.Contains(err.Error(), "libfoo.so.1") {
		t.Errorf("missing library: %v, want an error naming it", err)
	}
}

func TestScan(t *testing.T) {
	in := Mark + " kernel 6.1.0-57-cloud-amd64\r\n" +
		Mark + " begin lossy\n=== RUN   TestX\r\n--- PASS: TestX (0.00s)\n" +
		Mark + " end lossy 1\n" + Mark + " modprobe x failed\n" + Mark + " done\n"
	var got []Event
	if err := Scan(strings.NewReader(in), func(e Event) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Kind: "kernel", Name: "6.1.0-57-cloud-amd64"},
		{Kind: "begin", Name: "lossy"},
		{Kind: "line", Line: "=== RUN   TestX"},
		{Kind: "line", Line: "--- PASS: TestX (0.00s)"},
		{Kind: "end", Name: "lossy", Code: 1},
		{Kind: "line", Line: Mark + " modprobe x failed"},
		{Kind: "done"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Scan (-want +got):\n%s", diff)
	}
}

// TestInitScript runs the generated init's step lines through sh -n and checks the quoting.
func TestInitScript(t *testing.T) {
	im := Image{Preload: []string{"veth"}, Steps: []Step{
		{Name: "a", Dir: "/src/lossy", Env: []string{"X=1"}, Args: []string{"./lossy.test", "-test.run=^TestA$|B", "it's"}},
	}}
	var b bytes.Buffer
	if err := initTemplate.Execute(&b, im.initData()); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"(cd /src/lossy && env X=1 ./lossy.test '-test.run=^TestA$|B' 'it'\\''s')", "for m in veth; do"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("init lacks %q:\n%s", w, b.String())
		}
	}
	cmd := exec.Command("sh", "-n")
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v %s", err, out)
	}
}

func TestImageGzip(t *testing.T) {
	// Write fails cleanly on a kernel without modules.dep, before it writes anything useful.
	dir := t.TempDir()
	if _, err := FindKernel(dir); err == nil {
		t.Fatalf("FindKernel of an empty folder: no error")
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	c := newCpioWriter(zw)
	c.file("a", 0o644, 10, strings.NewReader("short"))
	if err := c.close(); err == nil || !strings.Contains(err.Error(), "want 10") {
		t.Errorf("a file shorter than its size: %v, want an error", err)
	}
}

func TestRootTests(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a_test.go": `package a

import (
	"testing"

	tu "example.com/m/internal/testutil"
)

func TestDirect(t *testing.T) { tu.RequireRoot(t) }
func TestWitnessOnly(t *testing.T) { tu.SkipOrFail(t, "no tool") }
func TestPlain(t *testing.T) {}
func TestViaHelper(t *testing.T) { lab(t) }
func TestViaMethod(t *testing.T) { var n ns; n.do(t) }
func lab(t *testing.T) { helper2(t) }
func helper2(t *testing.T) { tu.NewNetns(t, "x") }
type ns struct{}
func (ns) do(t *testing.T) { tu.InNetns(t, 0, nil) }
`,
		"b_darwin_test.go": `package a

import (
	"testing"

	"example.com/m/internal/testutil"
)

func TestDarwinOnly(t *testing.T) { testutil.RequireRoot(t) }
`,
		"c_test.go": `package a

import "testing"

func TestNoImportButHelper(t *testing.T) { lab(t) }
func TestMain(m *testing.M) { lab(nil) }
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := RootTests(dir, "example.com/m/internal/testutil", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"TestDirect", "TestNoImportButHelper", "TestViaHelper", "TestViaMethod"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RootTests (-want +got):\n%s", diff)
	}
}
