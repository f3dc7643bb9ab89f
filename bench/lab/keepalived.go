package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Keepalived is a real keepalived running in a host, for interop tests and for
// `xvrrp bench` to compare against.
type Keepalived struct {
	*Proc
	Config string // path of its configuration file
}

// StartKeepalived writes config into the lab's directory and starts keepalived's
// VRRP side on it in the foreground, logging to its output. Its pid files live in
// the lab's directory, so several run side by side, and its output is kept for
// WaitLog.
func (h *Host) StartKeepalived(config string) (*Keepalived, error) {
	dir, err := os.MkdirTemp(h.lab.Dir, h.Name+"-keepalived-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		return nil, err
	}
	p, err := h.Start("keepalived",
		"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp", "--dont-respawn",
		"--use-file", conf,
		"--pid", filepath.Join(dir, "keepalived.pid"),
		"--vrrp_pid", filepath.Join(dir, "vrrp.pid"),
		"--checkers_pid", filepath.Join(dir, "checkers.pid"),
		"--bfd_pid", filepath.Join(dir, "bfd.pid"),
	)
	if err != nil {
		return nil, err
	}
	return &Keepalived{Proc: p, Config: conf}, nil
}

// WaitLog waits until the process's output contains s, such as
// "(VI_1) Entering MASTER STATE", and fails after timeout.
func (p *Proc) WaitLog(s string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for !strings.Contains(p.Output(), s) {
		select {
		case <-p.Done():
			if strings.Contains(p.Output(), s) {
				return nil
			}
			return fmt.Errorf("%s: exited before logging %q:\n%s", p.Host.Name, s, p.Output())
		case <-deadline:
			return fmt.Errorf("%s: no %q within %v:\n%s", p.Host.Name, s, timeout, p.Output())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
