package loader

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotBPFFS is returned when the pin directory is not on a BPF file system.
var ErrNotBPFFS = errors.New("not on a BPF file system (bpffs)")

// ErrPinDirInUse is returned when another process holds the pin directory: one
// daemon per pin directory. The error names the holder's pid where it can.
var ErrPinDirInUse = errors.New("pin directory in use by another xvrrp")

// bpfRoot is where bpffs is mounted when nothing is, as systemd does.
const bpfRoot = "/sys/fs/bpf"

// pinDir is a resolved, locked pin directory.
type pinDir struct {
	path string
	lock *os.File
}

func (p *pinDir) close() error {
	var errs []error
	if p.lock != nil {
		errs = append(errs, p.lock.Close())
	}
	return errors.Join(errs...)
}

// openPinDir makes sure dir is on bpffs (mounting bpffs at /sys/fs/bpf where
// nothing is) and, unless observe, locks it for the process's life.
func openPinDir(dir string, observe bool, log *slog.Logger) (*pinDir, error) {
	p := &pinDir{path: dir}
	mount := func(target string) error { return unix.Mount("bpf", target, "bpf", 0, "mode=0700") }
	if err := ensureBPFFS("", dir, mount, log); err != nil {
		return nil, err
	}
	if !observe {
		var err error
		if p.lock, err = lockDir(p.path, dir); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ensureBPFFS makes dir, as seen under prefix, a directory on bpffs. Machines of
// this kind boot without /sys/fs/bpf mounted: mount it as systemd would, but only
// there; anywhere else a pin directory must already be on bpffs.
func ensureBPFFS(prefix, dir string, mount func(target string) error, log *slog.Logger) error {
	if (dir == bpfRoot || filepath.Dir(dir) == bpfRoot) && !onBPFFS(prefix+bpfRoot) {
		if err := mount(bpfRoot); err != nil {
			return fmt.Errorf("mount bpffs on %s: %w", bpfRoot, err)
		}
		log.Info("mounted bpffs", "path", bpfRoot)
	}
	if err := os.MkdirAll(prefix+dir, 0o700); err != nil {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if !onBPFFS(prefix + dir) {
		return fmt.Errorf("pin directory %s: %w", dir, ErrNotBPFFS)
	}
	return nil
}

func onBPFFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

// lockDir takes an exclusive flock on the pin directory at path (shown as dir),
// held until the returned file is closed; a second daemon on the same directory
// gets ErrPinDirInUse, with the holder's pid.
func lockDir(path, dir string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open pin directory %s: %w", dir, err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return f, nil
	}
	defer f.Close()
	if !errors.Is(err, unix.EWOULDBLOCK) {
		return nil, fmt.Errorf("lock pin directory %s: %w", dir, err)
	}
	if pid := lockHolder(f); pid > 0 {
		return nil, fmt.Errorf("lock pin directory %s: %w: held by pid %d", dir, ErrPinDirInUse, pid)
	}
	return nil, fmt.Errorf("lock pin directory %s: %w", dir, ErrPinDirInUse)
}

// lockHolder finds the pid holding a flock on f's inode in /proc/locks; 0 when it
// cannot tell.
func lockHolder(f *os.File) int {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer locks.Close()
	// 1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF, device numbers in hex;
	// waiters read "1: -> FLOCK …".
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	s := bufio.NewScanner(locks)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}
