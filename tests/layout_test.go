package tests

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryImportsNoTests: the daemon binary links nothing under tests/ —
// the lab it ships for demo and bench lives in bench/lab; tests import it,
// never the reverse.
func TestBinaryImportsNoTests(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../cmd/xvrrp").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/xvrrp/xvrrp/tests") {
			t.Errorf("./cmd/xvrrp depends on %s", pkg)
		}
	}
}
