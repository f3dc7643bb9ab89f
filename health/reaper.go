package health

import (
	"bytes"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// xvrrp is a child subreaper (becomeSubreaper): whatever a script leaves
// running, even after setsid, becomes our child when its parent dies, and a
// zombie when it ends, until we wait for it. The reaper waits for those
// inherited children. It must not wait for the children that os/exec started
// and will Wait for itself (a script, a notify script), or their Wait would
// fail with ECHILD; so it never calls wait4(-1), but picks zombies by pid from
// /proc and waits for those that cannot be ours to Wait:
//
//   - not in our session (the child called setsid), or in a process group that
//     is neither its own nor ours (left in a script's group): os/exec's children
//     are in our session, in their own group (Setpgid) or in ours;
//   - otherwise (an orphan that called setpgid itself looks like one of ours),
//     once it has been a zombie for orphanGrace: os/exec's Wait blocks in the
//     kernel from Start on and reaps its child the moment it exits, so a child
//     of ours is never a zombie for that long.
//
// It runs on SIGCHLD, and every reapTick while zombies wait out the grace.

const (
	orphanGrace = 5 * time.Second
	reapTick    = 2 * time.Second
)

var reaperOnce sync.Once

// startReaper starts the reaper once; becomeSubreaper calls it.
func startReaper() {
	reaperOnce.Do(func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, unix.SIGCHLD)
		go func() {
			seen := map[int]time.Time{} // ambiguous zombies, when first seen
			for {
				reapOrphans(seen, time.Now())
				// The /proc scan is not free on a busy host: without a
				// zombie waiting out its grace, only SIGCHLD wakes us.
				var tick <-chan time.Time
				if len(seen) > 0 {
					tick = time.After(reapTick)
				}
				select {
				case <-sig:
				case <-tick:
				}
			}
		}()
	})
}

// reapOrphans waits for every zombie child that is not os/exec's to Wait for,
// as above. seen remembers when each ambiguous zombie was first seen.
func reapOrphans(seen map[int]time.Time, now time.Time) {
	sid, _ := unix.Getsid(0)
	pgrp := unix.Getpgrp()
	zombies := zombieChildren(os.Getpid())
	for pid := range seen {
		if _, ok := zombies[pid]; !ok {
			delete(seen, pid)
		}
	}
	for pid, z := range zombies {
		orphan := z.session != sid || (z.pgrp != pid && z.pgrp != pgrp)
		if !orphan {
			first, ok := seen[pid]
			if !ok {
				seen[pid] = now
				continue
			}
			if now.Sub(first) < orphanGrace {
				continue
			}
		}
		delete(seen, pid)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

type procIDs struct{ pgrp, session int }

// zombieChildren returns the zombies whose parent is the process self, with
// their process group and session, from /proc/PID/stat (the kernel's
// /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN, which many kernels
// lack).
func zombieChildren(self int) map[int]procIDs {
	out := map[int]procIDs{}
	d, err := os.Open("/proc")
	if err != nil {
		return out
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session …; comm may hold anything,
		// so fields start after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 4 || string(f[0]) != "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(string(f[1]))
		if ppid != self {
			continue
		}
		pg, _ := strconv.Atoi(string(f[2]))
		s, _ := strconv.Atoi(string(f[3]))
		out[pid] = procIDs{pgrp: pg, session: s}
	}
	return out
}
