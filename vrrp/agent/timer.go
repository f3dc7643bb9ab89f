package agent

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timer fires at absolute CLOCK_MONOTONIC deadlines, the kernel's clock. It is a
// timerfd read through Go's poller: the kernel's hrtimer wakes it within
// microseconds, where a Go timer may wake a millisecond late (the poller waits in
// whole milliseconds), and a millisecond is half the takeover budget.
type timer struct {
	f  *os.File
	C  chan struct{}
	at time.Duration // what it is armed for, so an unchanged deadline costs no syscall
}

func newTimer() (*timer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	t := &timer{f: os.NewFile(uintptr(fd), "timerfd"), C: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 8)
		for {
			if _, err := t.f.Read(buf); err != nil {
				return // closed
			}
			if binary.NativeEndian.Uint64(buf) > 0 {
				select {
				case t.C <- struct{}{}:
				default:
				}
			}
		}
	}()
	return t, nil
}

// set arms the timer for the monotonic time at, or disarms it when at is 0. A
// time already past fires at once. Receiving from C means the armed time passed:
// call fired before setting it again.
func (t *timer) set(at time.Duration) error {
	if at == t.at {
		return nil
	}
	t.at = at
	var spec unix.ItimerSpec
	if at > 0 {
		spec.Value = unix.NsecToTimespec(int64(max(at, 1)))
	}
	rc, err := t.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME, &spec, nil)
	})
	if err != nil {
		return err
	}
	return serr
}

// fired forgets the armed time, which has passed, so that set re-arms even for
// the same deadline.
func (t *timer) fired() { t.at = 0 }

func (t *timer) close() { t.f.Close() }
