package health

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// zombiesOf counts the zombie children of pid, read from /proc independently
// of the reaper's own reading.
func zombiesOf(pid int) int {
	n := 0
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[0] == "Z" && fields[1] == strconv.Itoa(pid) {
			n++
		}
	}
	return n
}

// TestNoZombies: scripts that leave children behind — after setsid, which
// takes them out of the script's process group, or after setpgid by job
// control — leave no zombie once those end, while every script's own exit
// status still reaches Run (the reaper never takes what os/exec waits for).
func TestNoZombies(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	leaveSetsid := writeScript(t, dir, "setsid.sh", "setsid sleep 0.1 &\nexit 0", 0o755)
	leaveJob := writeScript(t, dir, "job.sh", "exec /bin/bash -c 'set -m; sleep 0.1 & exit 0'", 0o755)
	fail := writeScript(t, dir, "fail.sh", "exit 3", 0o755)
	var wg sync.WaitGroup
	run := func(path string, want bool) {
		defer wg.Done()
		p := program(t, path, 5*time.Second)
		for range 15 {
			ok, err := p.Run(context.Background())
			if ok != want || err != nil {
				t.Errorf("%s: ok %v, err %v, want %v and no error", filepath.Base(path), ok, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wg.Add(3)
	go run(leaveSetsid, true)
	go run(leaveJob, true)
	go run(fail, false)
	wg.Wait()
	deadline := time.Now().Add(orphanGrace + 3*reapTick + 5*time.Second)
	n := zombiesOf(os.Getpid())
	for n > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		n = zombiesOf(os.Getpid())
	}
	if n > 0 {
		t.Errorf("%d zombie children left", n)
	}
}
