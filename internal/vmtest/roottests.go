package vmtest

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// rootFuncs are testutil's functions that need root: a test that calls one needs root.
// (SkipOrFail alone does not: tests call it for a missing witness tool too.)
var rootFuncs = map[string]bool{"RequireRoot": true, "NewNetns": true, "InNetns": true, "WithNetlink": true, "WithoutNetRaw": true}

// RootTests lists the tests in the package folder dir (as built for linux) that need root or a
// namespace: those that reach testutil's root functions, directly or through the package's
// own test helpers. A function reaches them when its body calls one or names a function or
// method of the test files that does; names are matched without types, so a helper shared by
// name with a method counts for both, and the list errs on the side of running a test too
// many. In testutil's own folder (self) the root functions are called by their bare names.
func RootTests(dir, testutilPath string, self bool) ([]string, error) {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", "amd64", false
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	fset := token.NewFileSet()
	bodies := map[string][]*ast.BlockStmt{} // function or method name -> bodies
	var tests []string
	for _, e := range ents {
		isTest := strings.HasSuffix(e.Name(), "_test.go")
		if !isTest {
			continue
		}
		if ok, err := ctx.MatchFile(dir, e.Name()); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("vmtest: %w", err)
		}
		local := "" // the name this file imports testutil by
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == testutilPath {
				local = "testutil"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			name := fn.Name.Name
			if fn.Recv == nil && strings.HasPrefix(name, "Test") && name != "TestMain" {
				tests = append(tests, name)
			}
			bodies[name] = append(bodies[name], fn.Body)
			if callsRoot(fn.Body, local, self) {
				bodies[name] = append(bodies[name], nil) // nil marks a direct call
			}
		}
	}
	reaches := map[string]bool{}
	for name, bs := range bodies {
		for _, b := range bs {
			if b == nil {
				reaches[name] = true
			}
		}
	}
	// Grow the set until no function names one that reaches testutil.
	for changed := true; changed; {
		changed = false
		for name, bs := range bodies {
			if reaches[name] {
				continue
			}
			for _, b := range bs {
				if b != nil && mentions(b, func(id string) bool { return reaches[id] }) {
					reaches[name], changed = true, true
					break
				}
			}
		}
	}
	var out []string
	for _, tt := range tests {
		if reaches[tt] {
			out = append(out, tt)
		}
	}
	sort.Strings(out)
	return out, nil
}

// callsRoot reports whether n names one of rootFuncs: as local.F where the file imports
// testutil as local, or as plain F inside testutil itself.
func callsRoot(n ast.Node, local string, self bool) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && local != "" && x.Name == local && rootFuncs[n.Sel.Name] {
				found = true
			}
		case *ast.Ident:
			if self && rootFuncs[n.Name] {
				found = true
			}
		}
		return !found
	})
	return found
}

// mentions reports whether any identifier in n satisfies is.
func mentions(n ast.Node, is func(string) bool) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && is(id.Name) {
			found = true
		}
		return !found
	})
	return found
}
