package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xvrrp/xvrrp/health"
	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/sys/unix"
)

// notifyHold is how long one notify script holds up the next: they run one at a
// time, in the order of the transitions, but one that hangs does not stop the
// rest for longer than this (it is still waited for, in the background).
const notifyHold = 10 * time.Second

// notifier runs notify scripts and writes notify FIFOs, as keepalived does,
// away from the agent's goroutine: a slow script never delays a transition.
type notifier struct {
	log        *slog.Logger
	progs      map[*config.Command]*health.Program
	fifos      []*os.File
	readerCmds []*os.Process // notify_fifo_script, running while we do
	jobs       chan func()
	done       chan struct{}

	mu      sync.Mutex
	pending map[string]bool // instances with a notify_master_rx_lower_pri queued
}

func newNotifier(cfg *config.Config, log *slog.Logger) (_ *notifier, err error) {
	n := &notifier{log: log, progs: map[*config.Command]*health.Program{}, jobs: make(chan func(), 1024), done: make(chan struct{}), pending: map[string]bool{}}
	opt := health.Options(cfg)
	var errs []error
	var readers []fifoReader
	prepare := func(owner string, nt config.Notify) {
		for _, c := range []struct {
			what string
			cmd  *config.Command
		}{{"notify_master", nt.Master}, {"notify_backup", nt.Backup}, {"notify_fault", nt.Fault}, {"notify_stop", nt.Stop}, {"notify", nt.Any},
			{"notify_deleted", nt.Deleted}, {"notify_master_rx_lower_pri", nt.MasterRxLowerPri}} {
			if c.cmd == nil || c.cmd.Line == "" {
				continue
			}
			p, err := health.NewProgram(c.what+" of "+owner, c.cmd, opt, 0)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n.progs[c.cmd] = p
		}
	}
	for _, in := range cfg.Instances {
		prepare(in.Name, in.Notify)
	}
	for _, g := range cfg.SyncGroups {
		prepare(g.Name, g.Notify)
	}
	for _, f := range []*config.Fifo{cfg.Global.NotifyFifo, cfg.Global.VRRPNotifyFifo} {
		if f == nil {
			continue
		}
		file, err := openFifo(f.Path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n.fifos = append(n.fifos, file)
		if f.Script != nil {
			p, err := health.NewProgram("notify_fifo_script", f.Script, opt, 0)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			readers = append(readers, fifoReader{p, f.Path})
		}
	}
	if err := errors.Join(errs...); err != nil {
		n.closeFifos()
		return nil, err
	}
	for _, r := range readers {
		cmd := r.prog.Command(r.fifo)
		if err := cmd.Start(); err != nil {
			n.log.Warn("notify_fifo_script", "error", err)
			continue
		}
		go cmd.Wait()
		n.readerCmds = append(n.readerCmds, cmd.Process)
	}
	go n.work()
	return n, nil
}

type fifoReader struct {
	prog *health.Program
	fifo string
}

// openFifo creates the FIFO if need be and opens it for writing without ever
// blocking: read-write, so that opening does not wait for a reader, and
// non-blocking, so that a full FIFO drops a line instead of stopping us.
func openFifo(path string) (*os.File, error) {
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("notify FIFO %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil, fmt.Errorf("notify FIFO %s: not a FIFO", path)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("notify FIFO %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// instance does what keepalived does when an instance enters state: its
// notify_<state> script, then its notify script with INSTANCE name state
// priority, and a line on each FIFO.
func (n *notifier) instance(in *config.Instance, state string, prio uint8) {
	n.event(in.Notify, "INSTANCE", in.Name, state, prio)
}

// group is instance for a sync group: GROUP name state 0 (keepalived gives a
// group priority 0).
func (n *notifier) group(g *config.SyncGroup, state string) {
	n.event(g.Notify, "GROUP", g.Name, state, 0)
}

// priority writes keepalived's MASTER_PRIORITY or BACKUP_PRIORITY line on the
// FIFOs when an instance that asks for notify_priority_changes changes
// priority.
func (n *notifier) priority(in *config.Instance, state string, prio uint8) {
	n.fifoLine("INSTANCE", in.Name, state+"_PRIORITY", prio)
}

// rxLowerPri runs notify_master_rx_lower_pri (without arguments, as keepalived
// does) and writes a MASTER_RX_LOWER_PRI line, when a master hears a lower
// priority. While one is queued for an instance the next is not: a
// lower-priority master adverts every interval until it hears us.
func (n *notifier) rxLowerPri(in *config.Instance, script *config.Command, prio uint8) {
	n.fifoLine("INSTANCE", in.Name, "MASTER_RX_LOWER_PRI", prio)
	p := n.progs[script]
	if p == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pending[in.Name] {
		return
	}
	n.pending[in.Name] = true
	n.queue(func() {
		n.mu.Lock()
		delete(n.pending, in.Name)
		n.mu.Unlock()
		n.run(p)
	}, in.Name+" MASTER_RX_LOWER_PRI")
}

func (n *notifier) event(nt config.Notify, kind, name, state string, prio uint8) {
	var specific *config.Command
	switch state {
	case "MASTER":
		specific = nt.Master
	case "BACKUP":
		specific = nt.Backup
	case "FAULT":
		specific = nt.Fault
	case "STOP":
		specific = nt.Stop
	}
	// FIFO lines are written at once (without blocking): a reader never waits
	// for the scripts of earlier transitions.
	n.fifoLine(kind, name, state, prio)
	args := []string{kind, name, state, strconv.Itoa(int(prio))}
	n.queue(func() {
		if p := n.progs[specific]; p != nil {
			n.run(p)
		}
		if p := n.progs[nt.Any]; p != nil {
			n.run(p, args...)
		}
	}, strings.Join(args, " "))
}

// fifoLine writes keepalived's line, TYPE "name" STATE priority, on each FIFO.
func (n *notifier) fifoLine(kind, name, state string, prio uint8) {
	line := fmt.Sprintf("%s %q %s %d\n", kind, name, state, prio)
	for _, f := range n.fifos {
		if _, err := f.WriteString(line); err != nil {
			n.log.Warn("notify FIFO: line dropped", "fifo", f.Name(), "error", err)
		}
	}
}

func (n *notifier) queue(job func(), what string) {
	select {
	case n.jobs <- job:
	default:
		n.log.Warn("notify queue full: notification dropped", "event", what)
	}
}

func (n *notifier) run(p *health.Program, args ...string) {
	cmd := p.Command(args...)
	if err := cmd.Start(); err != nil {
		n.log.Warn(p.Name, "error", err)
		return
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		health.ReapGroupLater(cmd.Process.Pid) // what it left running, as it ends
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			n.log.Warn(p.Name, "error", err)
		}
	case <-time.After(notifyHold):
		n.log.Warn(p.Name+" still running; not waiting for it", "pid", cmd.Process.Pid)
	}
}

func (n *notifier) work() {
	defer close(n.done)
	for job := range n.jobs {
		job()
	}
}

// close runs what is queued, then closes the FIFOs and stops their readers.
func (n *notifier) close() {
	close(n.jobs)
	select {
	case <-n.done:
	case <-time.After(notifyHold):
	}
	for _, p := range n.readerCmds {
		p.Signal(unix.SIGTERM)
	}
	n.closeFifos()
}

func (n *notifier) closeFifos() {
	for _, f := range n.fifos {
		f.Close()
	}
}
