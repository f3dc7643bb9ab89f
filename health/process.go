package health

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

// procMatch says whether the process pid is one a track_process counts: its name
// (comm, or argv[0] with full_command) and, when params are given, its arguments
// matched as param_match says.
func procMatch(p *config.TrackProcess, pid int) bool {
	if p.FullCommand || p.Params != "" {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil || len(cmdline) == 0 {
			return false
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if p.FullCommand && argv[0] != p.Process {
			return false
		}
		if !p.FullCommand && !commIs(pid, p.Process) {
			return false
		}
		if p.Params == "" {
			return true
		}
		want := strings.Fields(p.Params)
		args := argv[1:]
		switch p.ParamMatch {
		case "initial":
			return len(args) >= len(want) && slices.Equal(args[:len(want)], want)
		case "partial":
			for i := 0; i+len(want) <= len(args); i++ {
				if slices.Equal(args[i:i+len(want)], want) {
					return true
				}
			}
			return false
		default:
			return slices.Equal(args, want)
		}
	}
	return commIs(pid, p.Process)
}

func commIs(pid int, name string) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return false
	}
	// comm holds at most 15 bytes of the name.
	want := name
	if len(want) > 15 {
		want = want[:15]
	}
	return strings.TrimSuffix(string(comm), "\n") == want
}

// procWatch counts the processes each track_process matches, from the kernel's
// process events (the netlink proc connector: fork, exec, comm change, exit)
// after one scan of /proc at the start. Only where the kernel sends no events
// (outside its initial network namespace) does it scan /proc every second.
type procWatch struct {
	procs []*config.TrackProcess
	log   *slog.Logger
	// pids each tracker counts, and the state last reported.
	pids map[string]map[int]bool
	ok   map[string]bool
	// due: when a change not yet reported is, if it lasts (fork_delay,
	// terminate_delay).
	due map[string]time.Time
}

func newProcWatch(procs []*config.TrackProcess, log *slog.Logger) *procWatch {
	w := &procWatch{procs: procs, log: log, pids: map[string]map[int]bool{}, ok: map[string]bool{}, due: map[string]time.Time{}}
	w.scan()
	for _, p := range procs {
		w.ok[p.Name] = w.healthy(p)
	}
	return w
}

func (w *procWatch) scan() {
	for _, p := range w.procs {
		w.pids[p.Name] = map[int]bool{}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			w.see(pid)
		}
	}
}

// see counts or uncounts pid for every tracker.
func (w *procWatch) see(pid int) {
	for _, p := range w.procs {
		if procMatch(p, pid) {
			w.pids[p.Name][pid] = true
		} else {
			delete(w.pids[p.Name], pid)
		}
	}
}

func (w *procWatch) gone(pid int) {
	for _, p := range w.procs {
		delete(w.pids[p.Name], pid)
	}
}

func (w *procWatch) healthy(p *config.TrackProcess) bool {
	n := len(w.pids[p.Name])
	quorum := max(p.Quorum, 1)
	return n >= quorum && (p.QuorumMax == 0 || n <= p.QuorumMax)
}

// subscribe opens the proc connector and checks that events arrive: the kernel
// sends them only to sockets of its initial network namespace, so a daemon in
// another one (a namespace lab, a container) gets none and must look at /proc.
func subscribe(ch chan netlink.ProcEvent, done chan struct{}, errs chan error) error {
	if err := netlink.ProcEventMonitor(ch, done, errs); err != nil {
		return err
	}
	if !selfTest(ch) {
		close(done)
		return fmt.Errorf("no process events in this network namespace")
	}
	return nil
}

// selfTest runs /bin/true and says whether its exit is reported.
func selfTest(ch chan netlink.ProcEvent) bool {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		return false
	}
	pid := uint32(cmd.Process.Pid)
	cmd.Wait()
	deadline := time.After(200 * time.Millisecond)
	for {
		select {
		case e := <-ch:
			if x, ok := e.Msg.(*netlink.ExitProcEvent); ok && x.ProcessPid == pid {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func (w *procWatch) run(ctx context.Context, out chan<- Update) {
	for ctx.Err() == nil {
		ch := make(chan netlink.ProcEvent, 1024)
		done := make(chan struct{})
		errs := make(chan error, 1)
		if err := subscribe(ch, done, errs); err != nil {
			// Where the kernel does not tell us, look at /proc every second.
			w.log.Warn("track_process: counting from /proc every second", "error", err)
			w.poll(ctx, out)
			return
		}
		w.follow(ctx, ch, errs, out)
		close(done)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (w *procWatch) poll(ctx context.Context, out chan<- Update) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	w.scan()
	w.report(ctx, out)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.scan()
		case <-w.wake():
		}
		w.report(ctx, out)
	}
}

func (w *procWatch) follow(ctx context.Context, ch chan netlink.ProcEvent, errs chan error, out chan<- Update) {
	// What happened between the first scan and the subscription.
	w.scan()
	w.report(ctx, out)
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errs:
			w.log.Warn("track_process: process events stopped", "error", err)
			return
		case <-w.wake():
			w.report(ctx, out)
		case e, ok := <-ch:
			if !ok {
				return
			}
			switch m := e.Msg.(type) {
			case *netlink.ExecProcEvent:
				if m.ProcessPid == m.ProcessTgid {
					w.see(int(m.ProcessTgid))
				}
			case *netlink.CommProcEvent:
				if m.ProcessPid == m.ProcessTgid {
					w.see(int(m.ProcessTgid))
				}
			case *netlink.ForkProcEvent:
				if m.ChildPid == m.ChildTgid {
					w.see(int(m.ChildTgid))
				}
			case *netlink.ExitProcEvent:
				if m.ProcessPid == m.ProcessTgid {
					w.gone(int(m.ProcessTgid))
				}
			default:
				continue
			}
			w.report(ctx, out)
		}
	}
}

// report sends the trackers whose state changed and stayed changed for their
// fork_delay (up) or terminate_delay (down): keepalived's guard against a
// bounce while a daemon re-forks or restarts.
func (w *procWatch) report(ctx context.Context, out chan<- Update) {
	now := time.Now()
	for _, p := range w.procs {
		ok := w.healthy(p)
		if ok == w.ok[p.Name] {
			delete(w.due, p.Name)
			continue
		}
		due, waiting := w.due[p.Name]
		if !waiting {
			due = now.Add(map[bool]time.Duration{true: p.ForkDelay, false: p.TerminateDelay}[ok])
			w.due[p.Name] = due
		}
		if now.Before(due) {
			continue
		}
		delete(w.due, p.Name)
		w.ok[p.Name] = ok
		w.log.Info(fmt.Sprintf("Track_process(%s) %s", p.Name, map[bool]string{true: "up", false: "down"}[ok]),
			"processes", len(w.pids[p.Name]))
		send(ctx, out, Update{Kind: KindProcess, Name: p.Name, OK: ok})
	}
}

// wake fires when the next delayed report is due; nil (never) if none is.
func (w *procWatch) wake() <-chan time.Time {
	var next time.Time
	for _, d := range w.due {
		if next.IsZero() || d.Before(next) {
			next = d
		}
	}
	if next.IsZero() {
		return nil
	}
	return time.After(time.Until(next))
}
