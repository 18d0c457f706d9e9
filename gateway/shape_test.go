package gateway_test

import (
	"go/ast"
	"testing"

	"github.com/edgecache/edgecache/internal/testutil"
)

// TestFunctionShape keeps the composition package readable: no function
// in gateway/ (tests aside) is longer than 60 lines, from its signature
// to its closing brace, or takes more than 5 parameters (the receiver
// not counted). A function that needs more is a type waiting to be
// named, as the fill was.
func TestFunctionShape(t *testing.T) {
	const maxLines, maxParams = 60, 5
	fset, files := testutil.ParseDir(t, ".")
	checked := 0
	for _, af := range files {
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			checked++
			lines := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			params := 0
			for _, p := range fd.Type.Params.List {
				params += max(len(p.Names), 1)
			}
			if lines > maxLines || params > maxParams {
				t.Errorf("%s: %s has %d lines and %d parameters (at most %d and %d)", fset.Position(fd.Pos()), fd.Name.Name, lines, params, maxLines, maxParams)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("checked %d functions: is this the gateway folder?", checked)
	}
}
