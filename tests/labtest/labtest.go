// Package labtest is the one place for privileged test helpers: the check that a
// test may touch the kernel, and labs that clean up after the test.
package labtest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/xvrrp/xvrrp/bench/lab"
	"golang.org/x/sys/unix"
)

// InCI reports whether the tests run in CI, where nothing privileged may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require checks that the test runs as root with network namespaces and the named
// commands available. Where they are missing it skips, except in CI (CI=true),
// where it fails: CI must prove the privileged paths, not silently pass them.
func Require(t testing.TB, commands ...string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if InCI() {
			t.Fatalf("CI=true and "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		missing("not root: privileged test")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		missing("no network namespaces: %v", err)
	}
	var caps unix.CapUserHeader
	caps.Version = unix.LINUX_CAPABILITY_VERSION_3
	var data [2]unix.CapUserData
	if err := unix.Capget(&caps, &data[0]); err != nil || data[0].Effective&(1<<unix.CAP_SYS_ADMIN) == 0 {
		missing("no CAP_SYS_ADMIN")
	}
	for _, c := range append([]string{"ip"}, commands...) {
		if _, err := exec.LookPath(c); err != nil {
			missing("%s not installed (make test installs it)", c)
		}
	}
}

// New builds a lab for the test, after Require, and removes it when the test ends,
// whether it passed, failed or panicked.
func New(t testing.TB, opt lab.Options, commands ...string) *lab.Lab {
	t.Helper()
	Require(t, commands...)
	l, err := lab.New(context.Background(), opt)
	if err != nil {
		t.Fatalf("build lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}
