package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

// TestDemo runs `xvrrp demo` as make demo does and checks that it shows the
// election, the failover with the outage the client measured, the failback, and
// leaves nothing behind.
func TestDemo(t *testing.T) {
	labtest.Require(t)
	bin := filepath.Join(t.TempDir(), "xvrrp")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/xvrrp").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "demo")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("xvrrp demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"xvrrp check h1/keepalived.conf: valid",
		"h1: (VI_1) Entering MASTER STATE",
		"h2: (VI_1) Entering BACKUP STATE (init)",
		"wire: advert from h1 (192.0.2.11): VRID 51 priority 150",
		"client: VIP 192.0.2.1 answered by h1 (MASTER)",
		"failure: cutting h1's link",
		"h1: (VI_1) Entering FAULT STATE",
		"wire: advert from h2 (192.0.2.12): VRID 51 priority 100",
		"h2: (VI_1) Entering MASTER STATE",
		"client: VIP answered by h2",
		"client: VIP answered by h1 again",
		"wire: advert from h1 (192.0.2.11): VRID 51 priority 0",
		"h1: (VI_1) Stopped",
		"lab removed: 4 namespaces deleted, 0 left",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), lab.NamePrefix) && strings.Contains(text, e.Name()) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}
