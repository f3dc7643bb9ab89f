package health

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/vrrp/config"
)

func writeScript(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// groupGone says whether no process is left in the process group.
func groupGone(pgid int) bool {
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func program(t *testing.T, line string, timeout time.Duration) *Program {
	t.Helper()
	p, err := NewProgram("vrrp_script t", &config.Command{Line: line}, ScriptOptions{User: "root"}, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runOnce runs p and returns its result and the process group it ran in, read
// from a file the script writes ($$ of the shell is the group's leader).
func TestScriptOutcomes(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	for _, tc := range []struct {
		name    string
		body    string
		mode    os.FileMode
		timeout time.Duration
		ok      bool
		err     error
	}{
		{"exit 0", "echo $$ > " + pidFile, 0o755, time.Second, true, nil},
		{"exit 1", "echo $$ > " + pidFile + "; exit 1", 0o755, time.Second, false, nil},
		{"timeout", "echo $$ > " + pidFile + "; sleep 30", 0o755, 200 * time.Millisecond, false, ErrTimeout},
		{"forks and hangs", "echo $$ > " + pidFile + "; sleep 30 & sleep 30 & wait", 0o755, 200 * time.Millisecond, false, ErrTimeout},
		{"forks a daemon and exits 0", "echo $$ > " + pidFile + "; sleep 30 & exit 0", 0o755, time.Second, true, nil},
		{"not executable", "exit 0", 0o644, time.Second, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(pidFile)
			path := writeScript(t, dir, strings.ReplaceAll(tc.name, " ", "_"), tc.body, tc.mode)
			p := program(t, path, tc.timeout)
			start := time.Now()
			ok, err := p.Run(context.Background())
			if ok != tc.ok {
				t.Errorf("ok = %v, want %v (err %v)", ok, tc.ok, err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			if tc.mode&0o111 == 0 && err == nil {
				t.Error("a non-executable script ran without an error")
			}
			if tc.timeout < time.Second && time.Since(start) > 5*time.Second {
				t.Errorf("ran %v past a %v timeout", time.Since(start), tc.timeout)
			}
			data, err := os.ReadFile(pidFile)
			if tc.mode&0o111 == 0 {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			if !groupGone(pid) {
				t.Errorf("processes of the script's group %d are left running", pid)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				t.Errorf("the script's process %d is still there (a zombie?)", pid)
			}
		})
	}
}

func TestShellOnlyWhenNeeded(t *testing.T) {
	for _, tc := range []struct {
		line string
		argv []string
	}{
		{"/bin/true a b", []string{"/bin/true", "a", "b"}},
		{"true", []string{"/usr/bin/true"}},
		{"ps -C nginx || exit 1", []string{"/bin/sh", "-c", "ps -C nginx || exit 1"}},
		{"test -f $HOME/x", []string{"/bin/sh", "-c", "test -f $HOME/x"}},
	} {
		p := program(t, tc.line, time.Second)
		if strings.Join(p.Argv, "|") != strings.Join(tc.argv, "|") {
			t.Errorf("%q: argv %q, want %q", tc.line, p.Argv, tc.argv)
		}
	}
	// Notify arguments follow the words, or become "$@" of a shell line.
	if got := program(t, "/bin/echo x", 0).Command("A", "B").Args; strings.Join(got, "|") != "/bin/echo|x|A|B" {
		t.Errorf("args %q", got)
	}
	if got := program(t, "echo $0 >/dev/null", 0).Command("A").Args; strings.Join(got, "|") != `/bin/sh|-c|echo $0 >/dev/null "$@"|sh|A` {
		t.Errorf("args %q", got)
	}
}

func TestScriptSecurity(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root in CI")
		}
		t.Skip("needs root to own files as another user")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	safe := writeScript(t, dir, "safe", "exit 0", 0o755)
	groupWritable := writeScript(t, dir, "gw", "exit 0", 0o775)
	os.Chown(groupWritable, 0, 100)
	userOwned := writeScript(t, dir, "uo", "exit 0", 0o755)
	os.Chown(userOwned, 1000, 0)
	sub := filepath.Join(dir, "open")
	os.Mkdir(sub, 0o777)
	os.Chmod(sub, 0o777)
	inOpenDir := writeScript(t, sub, "x", "exit 0", 0o755)
	for _, tc := range []struct {
		path, want string
	}{
		{safe, ""},
		{groupWritable, "is writable by group 100"},
		{userOwned, "is owned by uid 1000"},
		{inOpenDir, sub + " is writable by everyone"},
	} {
		_, err := NewProgram("vrrp_script chk", &config.Command{Pos: config.Pos{File: "k.conf", Line: 3}, Line: tc.path}, ScriptOptions{Security: true, User: "root"}, time.Second)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s refused: %v", tc.path, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "k.conf:3: vrrp_script chk: ")):
			t.Errorf("%s: error %v, want k.conf:3: … %q", tc.path, err, tc.want)
		}
		// Without enable_script_security, all run.
		if _, err := NewProgram("vrrp_script chk", &config.Command{Line: tc.path}, ScriptOptions{User: "root"}, time.Second); err != nil {
			t.Errorf("%s refused without enable_script_security: %v", tc.path, err)
		}
	}
}

// probeLoop: fall failures in a row to fail, rise successes to recover,
// init_fail to start failed.
func TestRiseFall(t *testing.T) {
	results := []bool{false, true, false, false, false, true, true, true, true}
	for _, initFail := range []bool{false, true} {
		s := &config.Script{Name: "s", Interval: time.Millisecond, Rise: 3, Fall: 2, InitFail: initFail}
		i := 0
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			probeLoop(ctx, s, slog.New(slog.DiscardHandler), func(context.Context) (bool, error) {
				if i == len(results) {
					cancel()
					return true, nil
				}
				i++
				return results[i-1], nil
			}, out)
		}()
		<-done
		close(out)
		var got []bool
		for u := range out {
			got = append(got, u.OK)
		}
		// From healthy: down after the 2nd failure in a row (index 3), up
		// after the 3rd success in a row (index 7). From init_fail: never up
		// before index 7 either (1 success at index 1 is not 3).
		want := []bool{false, true}
		if initFail {
			want = []bool{true}
		}
		if len(got) != len(want) || (len(got) > 0 && got[0] != want[0]) {
			t.Errorf("init_fail=%v: updates %v, want %v", initFail, got, want)
		}
	}
}

// TestScriptSecurityAttacks: under enable_script_security, the three ways
// nobody (uid 65534) ran a script of theirs as root are refused: a script
// missing at start and created later by nobody, a shell line whose first word
// alone was checked, and a symbolic link in nobody's directory judged by its
// target and re-pointed later. Each attack's script writes the uid it ran as;
// none may write 0.
func TestScriptSecurityAttacks(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root in CI")
		}
		t.Skip("needs root to own files as another user")
	}
	const nobody = 65534
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	evilDir := filepath.Join(dir, "x") // nobody's
	if err := os.Mkdir(evilDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(evilDir, nobody, nobody)
	safeDir := filepath.Join(dir, "safe") // root's
	if err := os.Mkdir(safeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	good := writeScript(t, safeDir, "good.sh", "exit 0", 0o755)
	out := filepath.Join(evilDir, "ran-as")
	evil := filepath.Join(evilDir, "evil.sh")
	plantEvil := func() {
		t.Helper()
		writeScript(t, evilDir, "evil.sh", "id -u > "+out, 0o755)
		os.Chown(evil, nobody, nobody)
	}
	ranAsRoot := func() bool {
		b, err := os.ReadFile(out)
		return err == nil && strings.TrimSpace(string(b)) == "0"
	}
	opt := ScriptOptions{Security: true, User: "root"}
	cmd := func(line string) *config.Command {
		return &config.Command{Pos: config.Pos{File: "k.conf", Line: 7}, Line: line}
	}
	reset := func() {
		os.Remove(out)
		os.Remove(evil)
	}

	t.Run("missing at start", func(t *testing.T) {
		reset()
		p, err := NewProgram("vrrp_script chk", cmd(evil), opt, time.Second)
		if err != nil {
			t.Fatalf("a missing script is refused at start (%v); keepalived counts its runs failed", err)
		}
		if p.Missing == nil {
			t.Error("Missing not set for a script that is not there")
		}
		plantEvil()
		ok, err := p.Run(context.Background())
		if ok || !errors.Is(err, ErrInsecure) || !strings.HasPrefix(err.Error(), "k.conf:7: vrrp_script chk: ") {
			t.Errorf("run after nobody planted it: ok %v, err %v, want k.conf:7: … %v", ok, err, ErrInsecure)
		}
		// A notify script goes through Command and Start.
		if err := p.Command("INSTANCE", "VI_1", "MASTER", "100").Start(); !errors.Is(err, ErrInsecure) {
			t.Errorf("notify start after nobody planted it: %v, want %v", err, ErrInsecure)
		}
		if ranAsRoot() {
			t.Error("nobody's script ran as root")
		}
	})

	t.Run("shell line", func(t *testing.T) {
		reset()
		plantEvil()
		p, err := NewProgram("vrrp_script chk", cmd("/bin/true && "+evil), opt, time.Second)
		if err == nil {
			p.Run(context.Background())
			t.Errorf("a shell line was accepted (ran as root: %v)", ranAsRoot())
		} else if !strings.HasPrefix(err.Error(), "k.conf:7: vrrp_script chk: ") || !strings.Contains(err.Error(), "needs a shell") {
			t.Errorf("err = %v, want k.conf:7: … needs a shell", err)
		}
	})

	t.Run("symlink in nobody's directory", func(t *testing.T) {
		reset()
		link := filepath.Join(evilDir, "link")
		os.Remove(link)
		if err := os.Symlink(good, link); err != nil {
			t.Fatal(err)
		}
		p, err := NewProgram("vrrp_script chk", cmd(link), opt, time.Second)
		if err == nil {
			// nobody re-points it.
			plantEvil()
			os.Remove(link)
			os.Symlink(evil, link)
			p.Run(context.Background())
			t.Errorf("a link in nobody's directory was accepted (ran as root: %v)", ranAsRoot())
		} else if !strings.Contains(err.Error(), evilDir+" is owned by uid 65534") {
			t.Errorf("err = %v, want %s named as nobody's", err, evilDir)
		}
	})

	t.Run("links checked as written and followed", func(t *testing.T) {
		reset()
		plantEvil()
		for _, tc := range []struct{ name, target, want string }{
			{"root-link-to-good", good, ""},
			{"root-link-to-evil", evil, evilDir + " is owned by uid 65534"},
			{"root-link-to-nobodys-dir", "x/../x/evil.sh", evilDir + " is owned by uid 65534"},
			{"relative-root-link", "safe/good.sh", ""},
		} {
			link := filepath.Join(dir, tc.name)
			if err := os.Symlink(tc.target, link); err != nil {
				t.Fatal(err)
			}
			_, err := NewProgram("vrrp_script chk", cmd(link), opt, time.Second)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s refused: %v", tc.name, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
			}
		}
		if ranAsRoot() {
			t.Error("nobody's script ran as root")
		}
	})
}
