package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/sys/unix"
)

// Tuning is keepalived's process tuning of its VRRP process, which xvrrp
// applies to itself: real-time scheduling, a bound on the CPU time a real-time
// thread may take without blocking, memory locked against swapping, and the
// CPUs to run on.
type Tuning struct {
	// RTPriority is the SCHED_RR priority of every thread of the daemon
	// (vrrp_rt_priority, 1–99); 0 leaves the scheduling alone.
	RTPriority int
	// RTTime bounds what a real-time thread may run without blocking
	// (vrrp_rlimit_rttime): past it the daemon drops to normal scheduling
	// (SIGXCPU), past twice that the kernel kills it, so that a bug cannot
	// take a core for good.
	RTTime time.Duration
	// NoSwap locks the daemon's memory (vrrp_no_swap).
	NoSwap bool
	// CPUs the daemon runs on (vrrp_cpu_affinity); all when empty.
	CPUs []int
	// Nice is the daemon's nice value, -20 to 19 (vrrp_priority), for
	// threads not under SCHED_RR; 0 leaves it.
	Nice int
	// AutoRTPriority, when RTPriority is 0, is the SCHED_RR priority the
	// daemon switches to the first time its event loop wakes AutoRTAfter or
	// more after a timer was due (keepalived's max_auto_priority and
	// min_auto_priority_delay); 0: never.
	AutoRTPriority int
	AutoRTAfter    time.Duration
}

// String says what the daemon will do, as `xvrrp check` prints it.
func (t Tuning) String() string {
	var parts []string
	if t.RTPriority > 0 {
		parts = append(parts, fmt.Sprintf("SCHED_RR priority %d, real-time CPU bound %v", t.RTPriority, t.RTTime))
	} else {
		parts = append(parts, fmt.Sprintf("normal scheduling at nice %d", t.Nice))
		if t.AutoRTPriority > 0 {
			parts = append(parts, fmt.Sprintf("SCHED_RR priority %d once a timer runs %v late", t.AutoRTPriority, t.AutoRTAfter))
		}
	}
	if t.NoSwap {
		parts = append(parts, "memory locked")
	}
	if len(t.CPUs) > 0 {
		parts = append(parts, fmt.Sprintf("CPUs %v", t.CPUs))
	}
	return strings.Join(parts, ", ")
}

// DefaultTuning is what xvrrp does unless the configuration says otherwise:
// adverts must leave on time on a host whose every core is busy, and a backup
// must not be swapped out of deciding, so the daemon runs SCHED_RR with its
// memory locked, as corosync runs its heartbeat. Measured (README, "Busy
// hosts"): nice -20 alone, even switching to SCHED_RR once the loop ran late,
// let 50 instances at 10 ms fail over 52 times in one run of a nice -20 loop
// per core before the switch; SCHED_RR from the start held every run, at the
// price of a few points of a core at idle.
var DefaultTuning = Tuning{RTPriority: 10, Nice: -20, RTTime: 200 * time.Millisecond, NoSwap: true,
	AutoRTPriority: 10, AutoRTAfter: 2 * time.Millisecond}

// TuningOf is the configuration's process tuning over DefaultTuning: what
// global_defs says wins, the rest is xvrrp's default.
func TuningOf(g config.Global) Tuning {
	t := DefaultTuning
	if g.RTPriority > 0 {
		t.RTPriority = g.RTPriority
	}
	if g.RLimitRTTime > 0 {
		t.RTTime = g.RLimitRTTime
	}
	if g.Nice != nil {
		// A nice level chosen instead of real-time scheduling, as keepalived
		// runs with vrrp_priority and no vrrp_rt_priority.
		t.Nice = *g.Nice
		if g.RTPriority == 0 {
			t.RTPriority = 0
		}
	}
	switch {
	case g.MaxAutoPriority > 0:
		t.AutoRTPriority = g.MaxAutoPriority
	case g.MaxAutoPriority == 0: // keepalived's "no automatic increase"
		t.AutoRTPriority = 0
	}
	if g.MinAutoPriorityDelay > 0 {
		t.AutoRTAfter = g.MinAutoPriorityDelay
	}
	t.NoSwap = t.NoSwap || g.NoSwap
	t.CPUs = g.CPUAffinity
	return t
}

// gcPercent spaces garbage collections out: the daemon's heap is small and its
// steady state allocates little, so fewer collections cost little memory and
// leave fewer moments when a collection stands between a timer and its advert.
const gcPercent = 400

// tuner applies the process tuning at the start, and real-time scheduling
// later if the event loop runs late.
type tuner struct {
	t     Tuning
	log   *slog.Logger
	undo  func()
	rt    bool
	start time.Duration   // when the loop started: its first second is not judged
	lates []time.Duration // when the loop last woke late, newest last
	// recheck asks realtime to bring new threads under SCHED_RR; checked
	// is when it was last asked.
	recheck chan struct{}
	checked time.Duration
}

// threadsEvery is how often, at most, the event loop has realtime look for
// threads the runtime started since.
const threadsEvery = time.Second

// awake tells the tuner the event loop is running, at now: the runtime starts
// threads when goroutines have work, and the loop runs whenever the daemon
// has any, so new threads are looked for then, at most every threadsEvery,
// and an idle daemon is not woken for it.
func (tn *tuner) awake(now time.Duration) {
	if now-tn.checked < threadsEvery {
		return
	}
	tn.checked = now
	select {
	case tn.recheck <- struct{}{}:
	default:
	}
}

// autoRTLates is how many late wake-ups within a second make the daemon
// switch to real-time scheduling: one may be a blip (a page fault, a busy
// moment of the loop itself); several mean the host keeps it from running.
const autoRTLates = 3

// late tells the tuner the event loop woke d after a timer was due, at now.
// When that has been AutoRTAfter or more autoRTLates times within a second,
// the daemon switches to SCHED_RR at AutoRTPriority: a host busy enough to
// delay it that much may soon delay it past a Master_Down_Interval.
func (tn *tuner) late(now, d time.Duration) {
	t := tn.t
	if tn.rt || t.AutoRTPriority <= 0 || d < t.AutoRTAfter || now-tn.start < time.Second {
		return
	}
	tn.lates = append(tn.lates, now)
	for len(tn.lates) > 0 && now-tn.lates[0] > time.Second {
		tn.lates = tn.lates[1:]
	}
	if len(tn.lates) < autoRTLates {
		return
	}
	tn.rt = true
	tn.log.Warn("running late: switching to real-time scheduling", "late", d, "priority", t.AutoRTPriority)
	t.RTPriority = t.AutoRTPriority
	prev := tn.undo
	undoRT := realtime(t, tn.log, tn.recheck)
	tn.undo = func() { undoRT(); prev() }
}

// applyTuning tunes the process as t says. What it cannot do (no privilege,
// no such CPU) is logged and the daemon carries on: running late is better
// than not running.
func applyTuning(t Tuning, log *slog.Logger, recheck <-chan struct{}) (undo func()) {
	debug.SetGCPercent(gcPercent)
	undo = func() {}
	if len(t.CPUs) > 0 {
		var set unix.CPUSet
		for _, c := range t.CPUs {
			set.Set(c)
		}
		if err := forEachThread(func(tid int) error { return unix.SchedSetaffinity(tid, &set) }); err != nil {
			log.Warn("set CPU affinity", "cpus", t.CPUs, "error", err)
		} else {
			log.Info("running on CPUs", "cpus", t.CPUs)
		}
	}
	if t.NoSwap {
		if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
			log.Warn("lock memory against swapping", "error", err)
		}
	}
	if t.Nice != 0 {
		// Per thread: Linux's nice is a thread's; new threads inherit it.
		if err := forEachThread(func(tid int) error { return unix.Setpriority(unix.PRIO_PROCESS, tid, t.Nice) }); err != nil {
			log.Warn("set nice", "nice", t.Nice, "error", err)
		}
	}
	if t.RTPriority > 0 {
		undo = realtime(t, log, recheck)
	}
	return undo
}

// realtime puts every thread of the process under SCHED_RR, with
// SCHED_RESET_ON_FORK so that a child — a script, a notify program — starts
// with normal scheduling and never runs real-time. The flag also resets threads
// the Go runtime starts later, so those are brought under SCHED_RR when the
// event loop runs (tuner.awake), at most once a second: never on a timer of
// their own, which would wake an idle backup.
func realtime(t Tuning, log *slog.Logger, recheck <-chan struct{}) (undo func()) {
	if t.RTTime > 0 {
		// Soft limit: SIGXCPU, handled below; hard: the kernel's SIGKILL.
		lim := &unix.Rlimit{Cur: uint64(t.RTTime / time.Microsecond), Max: uint64(2 * t.RTTime / time.Microsecond)}
		if err := unix.Setrlimit(unix.RLIMIT_RTTIME, lim); err != nil {
			log.Warn("bound real-time CPU time", "error", err)
			return func() {}
		}
	}
	rr := func(tid int) error {
		if p, err := schedGetscheduler(tid); err == nil && p&^schedResetOnFork == unix.SCHED_RR {
			return nil
		}
		return schedSetscheduler(tid, unix.SCHED_RR|schedResetOnFork, t.RTPriority)
	}
	if err := forEachThread(rr); err != nil {
		log.Warn("real-time scheduling not available; adverts may be late on a busy host", "error", err)
		return func() {}
	}
	log.Info("real-time scheduling", "policy", "SCHED_RR", "priority", t.RTPriority, "rlimit_rttime", t.RTTime)
	xcpu := make(chan os.Signal, 1)
	signal.Notify(xcpu, syscall.SIGXCPU)
	done := make(chan struct{})
	var once sync.Once
	normal := func() {
		once.Do(func() {
			close(done)
			signal.Stop(xcpu)
			forEachThread(func(tid int) error { return schedSetscheduler(tid, schedOther, 0) })
		})
	}
	go func() {
		for {
			select {
			case <-recheck:
				forEachThread(rr)
			case <-xcpu:
				log.Error("a real-time thread ran past vrrp_rlimit_rttime without blocking: back to normal scheduling", "rlimit_rttime", t.RTTime)
				go normal()
				return
			case <-done:
				return
			}
		}
	}()
	return normal
}

// forEachThread calls fn for every thread of the process, and again for
// threads that appeared meanwhile, until a pass finds no new one.
func forEachThread(fn func(tid int) error) error {
	seen := map[int]bool{}
	var errs []error
	for {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || seen[tid] {
				continue
			}
			seen[tid], fresh = true, true
			if err := fn(tid); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("thread %d: %w", tid, err))
			}
		}
		if !fresh {
			return errors.Join(errs...)
		}
	}
}

// Scheduling policies x/sys does not name.
const (
	schedResetOnFork = 0x40000000
	schedOther       = 0 // SCHED_OTHER
)

func schedSetscheduler(tid, policy, priority int) error {
	param := struct{ priority int32 }{int32(priority)}
	_, _, e := unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param)))
	if e != 0 {
		return e
	}
	return nil
}

func schedGetscheduler(tid int) (int, error) {
	p, _, e := unix.RawSyscall(unix.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(p), nil
}
