package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/agent"
)

type statusDoc struct {
	Source string `json:"source"`
	agent.Status
}

// status runs `xvrrp status --json` in the host, as an operator would.
func status(t *testing.T, h *lab.Host, x *lab.Xvrrp) statusDoc {
	t.Helper()
	out, err := h.Run(context.Background(), xvrrpBin, "status", "--json", "--state-dir", x.StateDir, "--pin-dir", x.PinDir)
	if err != nil {
		t.Fatal(err)
	}
	var doc statusDoc
	// ip netns exec may print nothing else; the document is the output.
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("status output: %v\n%s", err, out)
	}
	if len(doc.Instances) != 1 {
		t.Fatalf("status: %d instances, want 1:\n%s", len(doc.Instances), out)
	}
	return doc
}

// TestStatus asks a running master and backup for their status over the
// daemon's socket, then the killed master's kernel for what it enforces.
func TestStatus(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150, interval: "0.1"}, node{prio: 100, interval: "0.1"})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	time.Sleep(300 * time.Millisecond)

	if fi, err := os.Stat(filepath.Join(x1.StateDir, "xvrrp.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("status socket: %v, mode %v; want 0600", err, fi.Mode())
	}
	m := status(t, h1, x1)
	in := m.Instances[0]
	if m.Source != "daemon" || in.Name != "VI_1" || in.State != "MASTER" || in.EffectivePriority != 150 || in.BasePriority != 150 ||
		in.LeaseLeft <= 0 || in.LeaseLeft > vrrp.Lease(3, 100*time.Millisecond, 0) || len(in.VIPs) != 1 || !in.VIPs[0].Present || in.VIPs[0].Fenced ||
		in.VIPs[0].Address != "192.0.2.1/24" || in.VIPs[0].Dev != "eth0" {
		t.Errorf("master's status: %+v", m)
	}
	b := status(t, h2, x2)
	in = b.Instances[0]
	if in.State != "BACKUP" || in.Master == nil || in.Master.Address != "192.0.2.11" || in.Master.Priority != 150 ||
		in.Master.Age > 200*time.Millisecond || in.LeaseLeft != 0 || in.VIPs[0].Present || !in.VIPs[0].Fenced {
		t.Errorf("backup's status: %+v (last advert %+v)", b, in.Master)
	}
	out, err := h1.Run(context.Background(), xvrrpBin, "status", "--state-dir", x1.StateDir, "--pin-dir", x1.PinDir)
	if err != nil || !strings.Contains(string(out), "MASTER") || !strings.Contains(string(out), "192.0.2.1/24") {
		t.Errorf("status table: %v\n%s", err, out)
	}

	// No daemon: the kernel's view. The killed master's kernel let go when
	// h2's first advert reached it (nothing renewed the lease any more):
	// BACKUP, no lease, the VIP fenced.
	x1.Signal(syscall.SIGKILL)
	x1.Wait()
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	time.Sleep(100 * time.Millisecond)
	k := status(t, h1, x1)
	in = k.Instances[0]
	if k.Source != "kernel" || in.Interface != "eth0" || in.VRID != 51 || in.State != "BACKUP" || in.LeaseLeft != 0 ||
		len(in.VIPs) != 1 || in.VIPs[0].Address != "192.0.2.1" || !in.VIPs[0].Fenced {
		t.Errorf("kernel status after the master was killed: %+v", k)
	}
	out, _ = h1.Run(context.Background(), xvrrpBin, "status", "--state-dir", x1.StateDir, "--pin-dir", x1.PinDir)
	if !strings.Contains(string(out), "no daemon running") || !strings.Contains(string(out), "BACKUP") || !strings.Contains(string(out), "(fenced)") {
		t.Errorf("status table without a daemon:\n%s", out)
	}
}
