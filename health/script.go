package health

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/sys/unix"
)

// Program is a vrrp_script command ready to run: its argv, and the user it runs
// as.
type Program struct {
	Name    string
	Argv    []string
	cred    *syscall.Credential
	timeout time.Duration
	pos     config.Pos
	// secure is enable_script_security: the program is checked again before
	// every run, so that one missing at start, or changed since, never runs
	// unchecked.
	secure bool
	// Missing is why the program could not be found when it was prepared, or
	// nil: it is not refused (each run fails until it exists), but the caller
	// says so.
	Missing error
}

// ScriptOptions are global_defs settings for scripts.
type ScriptOptions struct {
	// Security is enable_script_security: refuse a script that a user other
	// than root could change.
	Security bool
	// User and Group are script_user: who scripts run as unless they say. Empty:
	// keepalived_script if that user exists, else root.
	User, Group string
}

// NewProgram prepares a script's command: split into words, or through
// /bin/sh -c when it uses the shell's syntax; the user resolved; under
// enable_script_security, refused if it needs a shell or if a user other than
// root could change it. what names it in errors, e.g. "vrrp_script chk_nginx".
func NewProgram(what string, c *config.Command, o ScriptOptions, timeout time.Duration) (*Program, error) {
	p := &Program{Name: what, timeout: timeout, pos: c.Pos, secure: o.Security}
	words := strings.Fields(c.Line)
	if len(words) == 0 {
		return nil, fmt.Errorf("%s: %s: empty command", c.Pos, what)
	}
	p.Argv = words
	if c.NeedsShell() {
		if o.Security {
			// The shell runs whatever the line names (`/bin/true && /tmp/x/evil.sh`):
			// checking the first word would vouch for programs never looked at.
			return nil, fmt.Errorf("%s: %s: %q needs a shell; enable_script_security refuses it (put the line in a script)", c.Pos, what, c.Line)
		}
		p.Argv = []string{"/bin/sh", "-c", c.Line}
	}
	// A program that is missing or not executable is not refused: each run
	// fails, as keepalived counts it, until it is fixed.
	path, lookErr := exec.LookPath(words[0])
	if lookErr == nil && p.Argv[0] == words[0] {
		p.Argv[0] = path
	}
	p.Missing = lookErr
	u, g := c.User, c.Group
	if u == "" {
		u, g = o.User, o.Group
	}
	if u == "" {
		if _, err := user.Lookup("keepalived_script"); err == nil {
			u = "keepalived_script"
		}
	}
	if u != "" && u != "root" {
		var err error
		if p.cred, err = credential(u, g); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", c.Pos, what, err)
		}
	}
	if o.Security && lookErr == nil {
		if err := p.check(path); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("script user: %w", err)
	}
	gid := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("script group: %w", err)
		}
		gid = g.Gid
	}
	uid, _ := strconv.Atoi(u.Uid)
	gidN, _ := strconv.Atoi(gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gidN), Groups: []uint32{}}, nil
}

// ErrInsecure is a program that enable_script_security refuses to run.
var ErrInsecure = errors.New("enable_script_security refuses a script that a user other than root can change")

// check returns an ErrInsecure error naming the place and the reason when a
// user other than root could change the program at path.
func (p *Program) check(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %s: %w", p.pos, p.Name, err)
	}
	if why := insecure(path); why != "" {
		return fmt.Errorf("%s: %s: %s: %s; %w", p.pos, p.Name, path, why, ErrInsecure)
	}
	return nil
}

// maxLinks bounds the symbolic links followed in one path, as the kernel's
// ELOOP does.
const maxLinks = 40

// insecure says why a user other than root could change what runs at path, or
// "". Every component of the path as written is looked at with lstat, and
// every symbolic link met is looked at itself and then followed, its target's
// components checked the same way: judging a link by its target alone would
// miss a link in a directory another user can write, re-pointed later. A
// component is insecure when owned by a user other than root, writable by a
// group other than root's, or writable by everyone (a sticky directory aside),
// as keepalived's check_script_secure judges them.
func insecure(path string) string {
	if !filepath.IsAbs(path) {
		return "not an absolute path"
	}
	links := 0
	var walk func(dir, path string) (string, string)
	// walk checks path, relative to the resolved directory dir, and returns
	// the resolved path it names.
	walk = func(dir, path string) (string, string) {
		if filepath.IsAbs(path) {
			dir = "/"
			if why := judge("/"); why != "" {
				return "", why
			}
		}
		parts := strings.Split(path, "/")
		for i, c := range parts {
			switch c {
			case "", ".":
				continue
			case "..":
				// dir is resolved and was reached through checked
				// components, so its parent was checked on the way.
				dir = filepath.Dir(dir)
				continue
			}
			next := filepath.Join(dir, c)
			var st unix.Stat_t
			if err := unix.Lstat(next, &st); err != nil {
				return "", fmt.Sprintf("%s: %v", next, err)
			}
			if why := judgeStat(next, &st); why != "" {
				return "", why
			}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFLNK:
				if links++; links > maxLinks {
					return "", fmt.Sprintf("%s: too many symbolic links", path)
				}
				target, err := os.Readlink(next)
				if err != nil {
					return "", err.Error()
				}
				resolved, why := walk(dir, target)
				if why != "" {
					return "", why
				}
				dir = resolved
			case unix.S_IFDIR:
				dir = next
			default:
				if strings.Join(parts[i+1:], "") != "" {
					return "", fmt.Sprintf("%s is not a directory", next)
				}
				dir = next
			}
		}
		return dir, ""
	}
	_, why := walk("/", path)
	return why
}

func judge(path string) string {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fmt.Sprintf("%s: %v", path, err)
	}
	return judgeStat(path, &st)
}

func judgeStat(path string, st *unix.Stat_t) string {
	mode := os.FileMode(st.Mode & 0o7777)
	typ := st.Mode & unix.S_IFMT
	switch {
	case st.Uid != 0:
		return fmt.Sprintf("%s is owned by uid %d", path, st.Uid)
	case typ == unix.S_IFLNK:
		// A link's own mode is always 0777 and means nothing: who can
		// re-point it is decided by its directory, checked before it.
		return ""
	case mode&0o020 != 0 && st.Gid != 0:
		return fmt.Sprintf("%s is writable by group %d", path, st.Gid)
	case mode&0o002 != 0 && !(typ == unix.S_IFDIR && st.Mode&unix.S_ISVTX != 0):
		return fmt.Sprintf("%s is writable by everyone", path)
	}
	return ""
}

// Command is the program with args appended (after the command line's own
// words, or as "$@" of a shell command line), to run in a process group of its
// own as the script user, from /, with a minimal PATH.
func (p *Program) Command(args ...string) *exec.Cmd {
	becomeSubreaper()
	argv := append([]string(nil), p.Argv...)
	if len(args) > 0 && argv[0] == "/bin/sh" && len(argv) == 3 {
		argv[2] += ` "$@"`
		argv = append(argv, "sh")
	}
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	if p.secure && cmd.Err == nil {
		// Checked at every run, the program that exec will run: one that
		// was missing at start, or changed since, is refused, and Start
		// returns why.
		if !filepath.IsAbs(cmd.Path) {
			cmd.Err = fmt.Errorf("%s: %s: %s is not an absolute path; %w", p.pos, p.Name, cmd.Path, ErrInsecure)
		} else if err := p.check(cmd.Path); err != nil {
			cmd.Err = err
		}
	}
	return cmd
}

// ErrTimeout is a script that ran past its timeout.
var ErrTimeout = errors.New("timed out")

// Run runs the program once in a process group of its own and reports whether
// it exited 0. At the timeout the whole group is killed; when the script has
// exited, whatever it left running in its group is killed too, so nothing it
// forked outlives it. The child is always waited for: no zombies.
func (p *Program) Run(ctx context.Context) (bool, error) {
	cmd := p.Command()
	if err := cmd.Start(); err != nil {
		return false, err
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-timer.C:
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		err = ErrTimeout
	case <-ctx.Done():
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		return false, ctx.Err()
	}
	syscall.Kill(-pgid, syscall.SIGKILL) // what it forked and left behind
	reapGroup(pgid)
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return false, nil // a failing check, not an error
		}
		return false, err
	}
	return true, nil
}

var subreaper sync.Once

// becomeSubreaper makes this process the parent of the orphans of the scripts it
// runs, so that it can reap them instead of leaving zombies to an init that
// may not, and starts the reaper that does (reaper.go).
func becomeSubreaper() {
	subreaper.Do(func() {
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		startReaper()
	})
}

// reapGroup waits for every process of the group that is our child (the
// script's orphans, ours as subreaper) until none is left.
func reapGroup(pgid int) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(-pgid, &ws, 0, nil)
		if err != unix.EINTR && err != nil {
			return // ECHILD: none left
		}
	}
}

// ReapGroupLater reaps the group's processes in the background as they end:
// for notify scripts, whose leftovers are not killed.
func ReapGroupLater(pgid int) { go reapGroup(pgid) }
