package loader

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotBPFFS is returned when the pin directory is not on a BPF file system.
var ErrNotBPFFS = errors.New("not on a BPF file system (bpffs)")

// ErrPrivateBPFFS is returned when the only bpffs the pin directory could be on
// lives in a mount namespace of this process alone: its pins, and with them the
// crash fence and restart adoption, would die with the process.
var ErrPrivateBPFFS = errors.New("bpffs private to this process's mount namespace: pins would die with the process")

// ErrPinDirInUse is returned when another process holds the pin directory: one
// daemon per pin directory. The error names the holder's pid where it can.
var ErrPinDirInUse = errors.New("pin directory in use by another xvrrp")

// remedy says what to do when the pins could not outlive the process.
const remedy = "start xvrrp from the host's mount namespace (ip netns exec and nsenter --net do), or use a pin directory on a bpffs the host has mounted (a container: give it the host's /sys/fs/bpf)"

// bpfRoot is where bpffs is mounted when nothing is, as systemd does.
const bpfRoot = "/sys/fs/bpf"

// pinDir is a resolved, locked pin directory.
type pinDir struct {
	// path is how this process reaches the directory: the directory as given,
	// or, when it is pinned in the view of the mount namespace xvrrp was started
	// from, /proc/self/fd/<root>/<dir>.
	path string
	// root is that namespace's root directory, held for the process's life so
	// that path stays valid after the process it was found through exits.
	root *os.File
	lock *os.File
}

func (p *pinDir) close() error {
	var errs []error
	if p.lock != nil {
		errs = append(errs, p.lock.Close())
	}
	if p.root != nil {
		errs = append(errs, p.root.Close())
	}
	return errors.Join(errs...)
}

// openPinDir finds where dir must be pinned so that the pins outlive the process,
// makes sure it is on bpffs (mounting bpffs at /sys/fs/bpf where nothing is), and,
// unless observe, locks it for the process's life.
//
// A daemon started with `ip netns exec` runs in a mount namespace of its own, with
// a fresh sysfs on /sys: a bpffs mounted there dies with the process, and the pinned
// links and maps with it, so a SIGKILLed master would no longer be fenced. There
// the pins go to the mount namespace xvrrp was started from (the outermost ancestor
// whose namespace can be read), reached through its /proc/<pid>/root, which is
// where an operator's bpftool looks.
func openPinDir(dir string, observe bool, log *slog.Logger) (_ *pinDir, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pin directory %s: %w", dir, err)
	}
	p := &pinDir{path: dir}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	own, err := mountNS("self")
	if err != nil {
		return nil, err
	}
	origin, originNS := originProcess(own)
	if originNS == own {
		// The namespace is shared with the process xvrrp was started from (or
		// xvrrp has no readable ancestor): a bpffs mounted here outlives us,
		// unless nobody else is in the namespace.
		mount := func(target string) error {
			if origin == os.Getpid() && !sharedMountNS(own) {
				return fmt.Errorf("mount bpffs on %s: %w; %s", target, ErrPrivateBPFFS, remedy)
			}
			return unix.Mount("bpf", target, "bpf", 0, "mode=0700")
		}
		if err := ensureBPFFS("", dir, mount, log); err != nil {
			return nil, err
		}
	} else if dev, ok := bpffsDev(dir); ok && mountedIn(origin, dev) {
		// Already on a bpffs the origin's namespace has too (e.g. a container
		// given the host's /sys/fs/bpf, entered with nsenter --mount).
		log.Info("pin directory is on a bpffs shared with the mount namespace xvrrp was started from",
			"pin_dir", dir, "origin_pid", origin, "mount_ns", originNS)
	} else {
		if p.root, err = os.OpenFile(fmt.Sprintf("/proc/%d/root", origin), unix.O_PATH|unix.O_DIRECTORY, 0); err != nil {
			return nil, fmt.Errorf("open root of mount namespace %s: %w", originNS, err)
		}
		prefix := fmt.Sprintf("/proc/self/fd/%d", p.root.Fd())
		nsFile, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", origin))
		if err != nil {
			return nil, fmt.Errorf("open mount namespace %s: %w", originNS, err)
		}
		defer nsFile.Close()
		// The origin may have exited since it was found, and its pid been reused.
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", nsFile.Fd())); ns != originNS {
			return nil, fmt.Errorf("open mount namespace %s: process %d left it", originNS, origin)
		}
		mount := func(target string) error { return mountBPFFSIn(nsFile, target) }
		if err := ensureBPFFS(prefix, dir, mount, log); err != nil {
			if _, private := bpffsDev(dir); private && errors.Is(err, ErrNotBPFFS) {
				return nil, fmt.Errorf("pin directory %s: %w; %s", dir, ErrPrivateBPFFS, remedy)
			}
			return nil, err
		}
		p.path = prefix + dir
		log.Info("pinning in the mount namespace xvrrp was started from, not its own",
			"pin_dir", dir, "origin_pid", origin, "mount_ns", originNS, "own_mount_ns", own)
	}
	if !observe {
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
			if errors.Is(err, ErrPrivateBPFFS) {
				return err
			}
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

// bpffsDev returns the device of the bpffs dir (or, when dir does not exist yet,
// its parent) is on.
func bpffsDev(dir string) (uint64, bool) {
	for _, d := range []string{dir, filepath.Dir(dir)} {
		var st unix.Stat_t
		if unix.Stat(d, &st) != nil {
			continue
		}
		return st.Dev, onBPFFS(d)
	}
	return 0, false
}

// mountedIn reports whether the bpffs with device dev is mounted in pid's mount
// namespace.
func mountedIn(pid int, dev uint64) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	want := fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
	s := bufio.NewScanner(f)
	for s.Scan() {
		// 36 35 0:31 / /sys/fs/bpf rw,relatime shared:9 - bpf bpf rw
		fields := strings.Fields(s.Text())
		if len(fields) < 3 || fields[2] != want {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && fields[i+1] == "bpf" {
				return true
			}
		}
	}
	return false
}

// mountNS names the mount namespace of pid ("self" for this process), as
// /proc/<pid>/ns/mnt reads, e.g. mnt:[4026531832].
func mountNS(pid string) (string, error) {
	ns, err := os.Readlink("/proc/" + pid + "/ns/mnt")
	if err != nil {
		return "", fmt.Errorf("read mount namespace of %s: %w", pid, err)
	}
	return ns, nil
}

// originProcess returns the outermost ancestor whose mount namespace this process
// may read, and that namespace: where xvrrp was started from. When no ancestor's
// can be read (e.g. a parent that exited, or a PID 1 that hides itself), it is
// this process itself.
func originProcess(own string) (int, string) {
	origin, originNS := os.Getpid(), own
	for pid := os.Getppid(); pid > 0; {
		if ns, err := mountNS(strconv.Itoa(pid)); err == nil {
			origin, originNS = pid, ns
		}
		ppid, err := parentPID(pid)
		if err != nil || ppid == pid {
			break
		}
		pid = ppid
	}
	return origin, originNS
}

func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.Atoi(fields[1])
}

// sharedMountNS reports whether another process is in mount namespace ns, so that
// it outlives this one.
func sharedMountNS(ns string) bool {
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		if e.Name() == self || e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if other, err := mountNS(e.Name()); err == nil && other == ns {
			return true
		}
	}
	return false
}

// mountBPFFSIn mounts bpffs on target in the mount namespace ns. A thread may
// enter another mount namespace only with a file system context of its own, so it
// unshares that first; it then never returns to Go's scheduler: the goroutine
// exits still locked, and the thread with it.
func mountBPFFSIn(ns *os.File, target string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread is never exited but parked for good, and it is
			// the one /proc/self shows: hold it here, unchanged, while another
			// thread does the work.
			errc <- mountBPFFSIn(ns, target)
			runtime.UnlockOSThread()
			return
		}
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare file system context: %w", err)
			return
		}
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("enter mount namespace: %w", err)
			return
		}
		errc <- unix.Mount("bpf", target, "bpf", 0, "mode=0700")
	}()
	return <-errc
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
