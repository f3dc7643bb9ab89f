package tests

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

// onlyNotImplemented says whether every error is a keyword refused as not
// implemented (config.TestCorpus names which, file by file).
func onlyNotImplemented(err error) bool {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return false
	}
	for _, d := range ce.Diags {
		if !strings.Contains(d.Msg, ": not implemented") {
			return false
		}
	}
	return true
}

// TestKeepalivedAgrees runs real keepalived's configuration test (keepalived -t)
// over the corpus of configurations, in a host that has the eth0 they name: what
// keepalived accepts, xvrrp accepts; what both should refuse, both refuse.
func TestKeepalivedAgrees(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1}, "keepalived")
	h := l.Hosts[0]
	for dir, wantValid := range map[string]bool{
		"../vrrp/config/testdata/compat":  true,
		"../vrrp/config/testdata/invalid": false,
	} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
		if len(files) == 0 {
			t.Fatalf("no configurations in %s", dir)
		}
		for _, f := range files {
			abs, _ := filepath.Abs(f)
			t.Run(filepath.Base(dir)+"/"+filepath.Base(f), func(t *testing.T) {
				out, err := h.Command(context.Background(), "keepalived", "--config-test", "--vrrp", "--use-file", abs).CombinedOutput()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatalf("run keepalived -t: %v", err)
				}
				keepalivedValid := err == nil
				_, xerr := config.Load(abs, config.Options{})
				if keepalivedValid != wantValid {
					t.Errorf("keepalived -t valid = %v, want %v (the corpus is wrong):\n%s", keepalivedValid, wantValid, out)
				}
				if keepalivedValid && xerr != nil && !onlyNotImplemented(xerr) {
					t.Errorf("keepalived accepts it, xvrrp does not (for more than keywords it does not implement):\n%v", xerr)
				}
				if !wantValid && xerr == nil {
					t.Errorf("keepalived refuses it, xvrrp accepts it:\n%s", out)
				}
			})
		}
	}
}
