package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// transientSendRun is how many adverts in a row may fail with an error that
// can pass by itself (a full queue) before the instance goes to FAULT: as many
// as a backup misses before it takes over.
const transientSendRun = 3

// sendOutcome takes what became of an instance's adverts in one flush. Send
// errors are counted and logged, at most once a second per instance. An
// instance that cannot send behaves as on carrier loss: it goes to FAULT
// (resigning with priority 0 where that still leaves), its lease no longer
// renewed, so its fence closes no later than a backup takes over. It tries
// again after a Master_Down_Interval (at least a second), or as soon as its
// interface comes up.
func (a *Agent) sendOutcome(in *instance, ok bool, failures []error, now time.Duration) {
	if len(failures) > 0 {
		in.sendErrors += uint64(len(failures))
		a.logSendErrors(in, failures, now)
	}
	if ok {
		in.sendFailRun = 0
		return
	}
	if len(failures) == 0 {
		// Nothing left and nothing failed: the adverts were queued on a
		// socket closed since (a VMAC made again, remakeVMACs).
		return
	}
	last := failures[len(failures)-1]
	if name, gone := a.vmacMissing(in); gone && interfaceGone(last) {
		// Not the interface: its VMAC was deleted by something else,
		// which the link update will say too. Made again now, the next
		// advert leaves by the new one, and the instance stays as it is.
		a.log.Warn(fmt.Sprintf("(%s) VMAC interface %s was deleted by something else: re-creating it", in.cfg.Name, name))
		if a.remakeVMACs(in, now) {
			a.reassess("")
		}
		return
	}
	in.sendFailRun++
	if transient(last) && in.sendFailRun < transientSendRun {
		return
	}
	if in.cfg.DontTrackPrimary && interfaceGone(last) {
		// keepalived's dont_track_primary: its interface's faults are
		// ignored, and so are adverts that cannot leave by it. The lease is
		// not renewed meanwhile, so the fence closes, as on a stall.
		return
	}
	hold := max(time.Second, vrrp.MasterDownInterval(in.cfg.Version, in.m.Priority(), in.cfg.Interval, in.cfg.DownTimerAdverts))
	in.sendFaultUntil = now + hold
	if in.sendFault == "" {
		in.sendFault = fmt.Sprintf("adverts cannot be sent: %v", last)
		if interfaceGone(last) {
			in.up = false // as the link update that follows will say
		}
		a.reassess("")
	}
}

// transient reports whether a send error may pass by itself.
func transient(err error) bool {
	return errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EINTR)
}

func (a *Agent) logSendErrors(in *instance, failures []error, now time.Duration) {
	if now < in.sendLogAt {
		in.sendLogMuted += len(failures)
		return
	}
	in.sendLogAt = now + time.Second
	args := []any{"errors_total", in.sendErrors}
	if in.sendLogMuted > 0 {
		args = append(args, "not_logged", in.sendLogMuted)
		in.sendLogMuted = 0
	}
	a.log.Warn(fmt.Sprintf("(%s) %v", in.cfg.Name, errors.Join(failures...)), args...)
}
