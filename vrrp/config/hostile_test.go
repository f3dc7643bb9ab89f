package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostileHelperEnv names the configuration TestHostileHelper loads when the
// test binary runs itself as a helper.
const hostileHelperEnv = "XVRRP_TEST_LOAD"

// TestHostileHelper is not a test: TestHostileConfigs runs the test binary with
// it, under a memory limit, to load one configuration and print the errors.
func TestHostileHelper(t *testing.T) {
	path := os.Getenv(hostileHelperEnv)
	if path == "" {
		t.Skip("helper process for TestHostileConfigs")
	}
	_, err := Load(path, Options{ConfigID: "xvrrp"})
	fmt.Fprintf(os.Stderr, "LOADED\n%v\n", err)
	os.Exit(0)
}

// TestHostileConfigs: configurations built to never finish — a file that
// includes itself, definitions that expand into each other, an include of
// /dev/zero or of a FIFO — end, under a memory limit and a time bound, in an
// error at the file and line that caused it.
func TestHostileConfigs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	write("a.conf", "global_defs {\n}\ninclude b.conf\n")
	write("b.conf", "\ninclude a.conf\n")
	for _, tc := range []struct {
		name, file string
		want       string        // a regular expression matching one error line
		limit      time.Duration // 0: 30 s
	}{
		{"self include", write("self.conf", "include self.conf\ninclude self.conf\n"),
			`^\S+/self.conf:1: include \S+/self.conf: include loop: \S+/self.conf -> \S+/self.conf$`, 0},
		{"include loop through two files", filepath.Join(dir, "a.conf"),
			`^\S+/b.conf:2: include \S+/a.conf: include loop: \S+/a.conf -> \S+/b.conf -> \S+/a.conf$`, 0},
		{"definitions expanding into each other", write("defs.conf", "$A=$B $B $B $B\n$B=$A $A $A $A\nvrrp_instance $A {\n}\n"),
			`^\S+/defs.conf:3: definitions expand this line to more than 1 MiB`, 0},
		{"definitions naming each other", write("defs2.conf", "$A=${B}\n$B=${A}\nrouter_id $A\n"),
			`^\S+/defs2.conf:3: definitions nested more than 16 deep`, 0},
		{"include /dev/zero", write("zero.conf", "\n\ninclude /dev/zero\n"),
			`^\S+/zero.conf:3: read /dev/zero: not a regular file \(a character device\)$`, 0},
		{"include a FIFO", write("fifo.conf", "include fifo\n"),
			`^\S+/fifo.conf:1: read \S+/fifo: not a regular file \(a FIFO\)$`, 0},
		{"a FIFO as the configuration", fifo, `^\S+/fifo: read \S+/fifo: not a regular file \(a FIFO\)$`, 0},
		{"includes that multiply", multiply(write),
			`^\S+/m\d+.conf:\d: read \S+/m\d+.conf: more than 10000 files read in all`, 0},
		{"a pattern walking links that loop", loops(t, dir, write),
			`^\S+/loops.conf:1: include \S+/loop/\*/\*/\*/\*/\*/\*/\*.conf: patterns look at more than 100000 directory entries in all`, 0},
		// Suggesting a keyword for a word compares it with each known one:
		// quadratic in the word's length, half a second a word of 1 MiB.
		{"unknown words of 1 MiB", write("long.conf", strings.Repeat(strings.Repeat("x", 1<<20)+"\n", 15)),
			`^\S+/long.conf:15: unknown keyword 'x+… \(\d+ bytes more\)$`, 5 * time.Second},
		{"more than 16 MiB", write("big.conf", strings.Repeat("# "+strings.Repeat("x", 1<<20)+"\n", 17)),
			`^\S+/big.conf: read \S+/big.conf: more than 16 MiB read in all, definitions expanded included$`, 0},
		{"includes nested too deep", nest(write),
			`^\S+/n15.conf:1: include n16.conf: includes nested more than 15 deep: \S+/n0.conf -> `, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.limit == 0 {
				tc.limit = 30 * time.Second
			}
			out := loadLimited(t, tc.file, tc.limit)
			if !regexp.MustCompile(`(?m)` + tc.want).MatchString(out) {
				t.Errorf("errors:\n%s\nwant a line matching %s", out, tc.want)
			}
		})
	}
}

// multiply writes m0.conf including m1.conf four times, which includes m2.conf
// four times, and so on: 4^12 files, no loop.
func multiply(write func(name, text string) string) string {
	write("m12.conf", "")
	for i := 11; i > 0; i-- {
		write(fmt.Sprintf("m%d.conf", i), strings.Repeat(fmt.Sprintf("include m%d.conf\n", i+1), 4))
	}
	return write("m0.conf", strings.Repeat("include m1.conf\n", 4))
}

// loops makes a directory of 20 links to itself and a configuration that
// includes loop/*/*/*/*/*/*/*.conf: 20^6 directories to read.
func loops(t *testing.T, dir string, write func(name, text string) string) string {
	loop := filepath.Join(dir, "loop")
	if err := os.Mkdir(loop, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := os.Symlink(".", filepath.Join(loop, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	return write("loops.conf", "include loop/*/*/*/*/*/*/*.conf\n")
}

// nest writes n0.conf including n1.conf, which includes n2.conf, and so on to
// n20.conf.
func nest(write func(name, text string) string) string {
	for i := range 20 {
		write(fmt.Sprintf("n%d.conf", i), fmt.Sprintf("include n%d.conf\n", i+1))
	}
	write("n20.conf", "")
	return write("n0.conf", "include n1.conf\n")
}

// loadLimited loads file in a helper process with 4 GiB of address space
// (ulimit -v) and limit to finish, and returns its errors. The bombs took 8.6
// GB and more; the Go runtime reserves address space well beyond its heap (at
// 1 GiB a helper failed with 29 MB in use), so the bound leaves it room.
func loadLimited(t *testing.T, file string, limit time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `ulimit -v 4194304 && exec "$0" -test.run='^TestHostileHelper$'`, os.Args[0])
	cmd.Env = append(os.Environ(), hostileHelperEnv+"="+file)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("still reading after %v: %s", limit, tail(out))
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) || !strings.Contains(string(out), "LOADED\n") {
		t.Fatalf("helper failed (%v) within 4 GiB of address space: %s", err, tail(out))
	}
	return strings.SplitN(string(out), "LOADED\n", 2)[1]
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// TestSecurityRefusesShellLines: under enable_script_security, a line that
// needs a shell is an error at its line (the shell would run programs nobody
// checked, `/bin/true && /tmp/x/evil.sh`); without it, the line is accepted.
func TestSecurityRefusesShellLines(t *testing.T) {
	conf := func(global string) string {
		return "global_defs {\n" + global + "\n}\n" +
			"vrrp_script chk {\n  script \"/bin/true && /tmp/x/evil.sh\"\n}\n" +
			instance(base+"\nnotify_master \"/bin/echo $(id)\"\nnotify /bin/true\ntrack_script {\nchk\n}")
	}
	got := diagnose(t, conf("enable_script_security"))
	want := []string{
		`k.conf:5: script: "/bin/true && /tmp/x/evil.sh" needs a shell, and enable_script_security cannot check the programs a shell line runs: put the line in a script and give its path`,
		`k.conf:13: notify_master: "/bin/echo $(id)" needs a shell, and enable_script_security cannot check the programs a shell line runs: put the line in a script and give its path`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := diagnose(t, conf("")); len(got) != 0 {
		t.Errorf("without enable_script_security: %v", got)
	}
}

// TestReadNeverWaits: the reader reads with read(2) on a descriptor opened
// O_NONBLOCK, so a file with nothing to read yet (a pollable /proc file such as
// /proc/kmsg is a regular file that does that) is an error at once, where an
// os.File would wait in Go's poller. A pipe stands in for such a file.
func TestReadNeverWaits(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	done := make(chan error, 1)
	go func() {
		_, err := fdReader(p[0]).Read(make([]byte, 16))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, unix.EAGAIN) {
			t.Errorf("read of an empty pipe: %v, want EAGAIN", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read of an empty pipe is waiting")
	}
}
