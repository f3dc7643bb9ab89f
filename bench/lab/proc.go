package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Command returns a command that runs in the host's namespace (through
// `ip netns exec`, which also gives it the namespace's /sys). It runs in a process
// group of its own and is killed if this process dies.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return h.command(ctx, append([]string{"ip", "netns", "exec", h.NS, name}, args...))
}

func (h *Host) command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Kill the whole group on cancellation, not only the first program.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs a command in the host and returns its combined output. The error names
// the command and carries the output.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := h.Command(ctx, name, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := startOnSpawner(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	out := buf.Bytes()
	if err != nil {
		return out, fmt.Errorf("%s: %s %v: %w: %s", h.Name, name, args, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Pdeathsig kills a child when the *thread* that forked it exits, and Go throws
// away threads (doInNS does, on purpose). So every child is forked from one
// goroutine locked to a thread that lives as long as the process.
var (
	spawnOnce sync.Once
	spawnReq  chan spawnCall
)

type spawnCall struct {
	cmd *exec.Cmd
	err chan error
}

func startOnSpawner(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawnCall)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must not exit
			for c := range spawnReq {
				c.err <- c.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReq <- spawnCall{cmd, errc}
	return <-errc
}

// Proc is a process started in a host. The lab stops it on Close.
type Proc struct {
	Cmd  *exec.Cmd
	Host *Host

	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
	waitEr error
}

// Start starts a background command in the host; its stdout and stderr are kept
// and returned by Output.
func (h *Host) Start(name string, args ...string) (*Proc, error) {
	return h.start(name, h.Command(context.Background(), name, args...))
}

func (h *Host) start(name string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Host: h, done: make(chan struct{})}
	p.Cmd = cmd
	p.Cmd.Stdout = (*lockedWriter)(p)
	p.Cmd.Stderr = (*lockedWriter)(p)

	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("start process: lab is closed")
	}
	if err := startOnSpawner(p.Cmd); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", h.Name, name, err)
	}
	l.procs = append(l.procs, p)
	go func() {
		p.waitEr = p.Cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

type lockedWriter Proc

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

// Output returns what the process has written so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Pid returns the process id of the process group leader.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process's whole group.
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Stop sends SIGTERM to the process group, waits up to grace for it to exit, then
// kills it. It returns the process's exit error, if any, other than being signalled.
func (p *Proc) Stop(grace time.Duration) error {
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
	return p.Wait()
}

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.waitEr
}

func (p *Proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}
