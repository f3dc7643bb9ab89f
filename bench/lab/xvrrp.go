package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PinRoot is where the lab's daemons pin their datapaths: each one gets
// PinRoot/<lab ID>-<host>, removed by Close, and swept by SweepStale when its
// lab's process is gone.
const PinRoot = "/sys/fs/bpf"

// Xvrrp is an `xvrrp run` daemon in a host, with its own pin and state
// directories.
type Xvrrp struct {
	*Proc
	Config   string
	PinDir   string
	StateDir string
}

// XvrrpDirs returns the pin and state directories the host's daemon uses, the
// same across restarts within one lab.
func (h *Host) XvrrpDirs() (pinDir, stateDir string) {
	return filepath.Join(PinRoot, h.lab.ID+"-"+h.Name), filepath.Join(h.lab.Dir, h.Name+"-xvrrp")
}

// StartXvrrp writes config and starts `bin run` on it in the host, in the
// foreground, with its output kept for WaitLog. Extra arguments follow.
//
// It starts the daemon as people start daemons in namespaces, with `ip netns
// exec`, which gives it a mount namespace of its own and a fresh /sys: the
// daemon must still pin in this process's /sys/fs/bpf, where PinDir is, so that
// a killed daemon stays fenced and a restarted one adopts its datapath.
func (h *Host) StartXvrrp(bin, config string, args ...string) (*Xvrrp, error) {
	pinDir, stateDir := h.XvrrpDirs()
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(stateDir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		return nil, err
	}
	h.lab.onClose(func() { os.RemoveAll(pinDir) })
	argv := append([]string{"run", "-f", conf, "--pin-dir", pinDir, "--state-dir", stateDir}, args...)
	p, err := h.start(bin, h.Command(context.Background(), bin, argv...))
	if err != nil {
		return nil, err
	}
	return &Xvrrp{Proc: p, Config: conf, PinDir: pinDir, StateDir: stateDir}, nil
}

// sweepPins removes pin directories of labs whose process is gone.
func sweepPins() []string {
	entries, _ := os.ReadDir(PinRoot)
	var removed []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), NamePrefix) {
			continue
		}
		pid, ok := ownerPID(e.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if os.RemoveAll(filepath.Join(PinRoot, e.Name())) == nil {
			removed = append(removed, fmt.Sprintf("%s/%s", PinRoot, e.Name()))
		}
	}
	return removed
}
