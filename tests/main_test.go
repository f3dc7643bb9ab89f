package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// xvrrpBin is the xvrrp binary the tests run in lab hosts, built once.
var xvrrpBin string

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == websvcName {
		websvc(os.Args[1])
		return
	}
	dir, err := os.MkdirTemp("", "xvrrp-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	xvrrpBin = filepath.Join(dir, "xvrrp")
	if out, err := exec.Command("go", "build", "-o", xvrrpBin, "../cmd/xvrrp").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build xvrrp: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
