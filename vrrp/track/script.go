package track

import (
	"context"
	"errors"
	"fmt"
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

// shellChars are what make a command line need /bin/sh -c.
const shellChars = "|&;<>()$`\\\"'*?[]#~=%{}\n"

// NewProgram prepares a script's command: split into words, or through
// /bin/sh -c when it uses the shell's syntax; the user resolved; under
// enable_script_security, refused if a non-root user could change it.
// what names it in errors, e.g. "vrrp_script chk_nginx".
func NewProgram(what string, c *config.Command, o ScriptOptions, timeout time.Duration) (*Program, error) {
	p := &Program{Name: what, timeout: timeout}
	words := strings.Fields(c.Line)
	if len(words) == 0 {
		return nil, fmt.Errorf("%s: %s: empty command", c.Pos, what)
	}
	p.Argv = words
	if strings.ContainsAny(c.Line, shellChars) {
		p.Argv = []string{"/bin/sh", "-c", c.Line}
	}
	// A program that is missing or not executable is not refused: each run
	// fails, as keepalived counts it, until it is fixed.
	path, lookErr := exec.LookPath(words[0])
	if lookErr == nil && p.Argv[0] == words[0] {
		p.Argv[0] = path
	}
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
		if why := insecure(path); why != "" {
			return nil, fmt.Errorf("%s: %s: %s: %s; enable_script_security refuses a script that a user other than root can change", c.Pos, what, path, why)
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

// insecure says why a user other than root could change the file at path, or
// "": the file or a directory above it is owned by another user, writable by a
// group other than root's, or writable by everyone (a sticky directory aside).
func insecure(path string) string {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err.Error()
	}
	for p := real; ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return err.Error()
		}
		mode := os.FileMode(st.Mode & 0o7777)
		dir := st.Mode&syscall.S_IFMT == syscall.S_IFDIR
		switch {
		case st.Uid != 0:
			return fmt.Sprintf("%s is owned by uid %d", p, st.Uid)
		case mode&0o020 != 0 && st.Gid != 0:
			return fmt.Sprintf("%s is writable by group %d", p, st.Gid)
		case mode&0o002 != 0 && !(dir && st.Mode&syscall.S_ISVTX != 0):
			return fmt.Sprintf("%s is writable by everyone", p)
		}
		if p == "/" {
			return ""
		}
	}
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
// may not.
func becomeSubreaper() {
	subreaper.Do(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
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
