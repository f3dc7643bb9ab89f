package agent

import (
	"fmt"
	"time"

	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
)

// A backup that sleeps. The kernel runs a backup's Master_Down_Timer
// (loader.SetDownTimer, hold_off in bpf/xvrrp.c): it restarts it at each
// valid advert that holds the backup off, by vrrp.Machine's rule, and tells
// us only when it runs out (a MASTER_DOWN event). We then read the last
// advert and let the machine decide, as when our own timer fires: a daemon
// that was descheduled still never declares a live master dead.
//
// The daemon keeps the machine's deadline on its own timer until it knows
// the kernel runs it:
//   - the kernel can arm the timer only from an advert it sees after the
//     entry was written (writing it cancels a running timer) and while its
//     instance is a BACKUP not handing over: armsSince;
//   - the machine's deadline must come from such an advert (HeldOffBy): not
//     from entering BACKUP, nor a resignation's Skew_Time;
//   - the kernel must say it armed it after armsSince (bpf_timer_init can
//     fail for want of memory, and then the next advert tries again).
// Then it is delegated, and the daemon sleeps through the machine's deadline,
// which goes stale as adverts re-arm the kernel's timer unseen. Instances
// with preempt_delay are never handed over: whether an advert holds them off
// depends on when the backup first heard a lower priority, which only the
// machine knows.

// sweepEvery is how often the daemon looks at the backups whose timers the
// kernel runs, in case a MASTER_DOWN never reached it. Nothing is known to
// lose one — the kernel retries a full ring buffer, the event loop never drops
// one, and a MASTER_DOWN that finds the master alive puts the deadline back on
// the daemon's timer — so the sweep is a backstop that bounds what an unknown
// loss would cost, at a wakeup per period: each wakeup of an idle Go daemon
// costs about a dozen context switches (the timer's reader, the loop, the
// runtime's sysmon polling until every P is idle again).
const sweepEvery = 30 * time.Second

// putDownTimer hands the instance's Master_Down_Timer to the kernel, or takes
// it back (preempt_delay), and forgets any delegation: writing the entry
// cancels what the kernel ran.
func (a *Agent) putDownTimer(in *instance, now time.Duration) {
	in.delegated = false
	var err error
	if in.cfg.PreemptDelay == 0 {
		err = a.dp.SetDownTimer(in.key, loader.DownTimer{NoPreempt: !in.cfg.Preempt, DownAdverts: in.cfg.DownTimerAdverts})
		in.kernelTimer = err == nil
	} else {
		in.kernelTimer = false
		err = a.dp.ForgetDownTimer(in.key)
	}
	if err != nil {
		a.log.Warn(fmt.Sprintf("(%s) Master_Down_Timer stays in the daemon: %v", in.cfg.Name, err))
	}
	in.armsSince = 0
	in.kernelWrote(in.kstate, now)
}

// kernelWrote follows what was written to the kernel's instance: the kernel
// arms the timer only for a BACKUP that is not handing over.
func (in *instance) kernelWrote(st loader.InstanceState, now time.Duration) {
	if in.kernelTimer && st.State == vrrp.Backup && !st.HandingOver {
		if in.armsSince == 0 {
			in.armsSince = now
		}
		return
	}
	in.armsSince, in.delegated = 0, false
}

// delegate decides, after the machine of a backup took the last advert,
// whether the kernel runs its Master_Down_Timer now, asking the kernel.
func (a *Agent) delegate(in *instance, now time.Duration) {
	in.delegated = false
	by := in.m.HeldOffBy()
	if !in.kernelTimer || in.armsSince == 0 || by == 0 || by < in.armsSince {
		return
	}
	st, err := a.dp.DownTimerOf(in.key)
	if err != nil {
		return
	}
	// Armed after we let it, and not run out: it will tell us.
	in.delegated = st.Heard >= in.armsSince && st.Due > now
}

// timedByKernel says the daemon need not wake for the machine's deadline.
func (in *instance) timedByKernel() bool { return in.delegated && in.m.HeldOffBy() != 0 }

// masterDown takes the kernel's word that an instance's Master_Down_Timer
// ran out, which the daemon received at got (its event reader's clock): the
// machine decides on the last advert, read now, as at that instant. A master
// heard since still holds it off. A daemon that was itself stalled got the
// word late and is graced (vrrp.StallGrace); one whose loop was merely busy —
// taking over the instances whose timers ran out with this one — is not:
// judged by when the loop got round to it, every instance after the first
// was graced and took over a Master_Down_Interval late.
func (a *Agent) masterDown(in *instance, got time.Duration) {
	if in.m.State() != vrrp.Backup {
		return
	}
	if now := a.now(); got <= 0 || got > now {
		got = now
	}
	a.expireBackup(in, got)
}

// expireBackup runs a backup's machine at or after its deadline with the
// kernel's last advert, then decides who times it next.
func (a *Agent) expireBackup(in *instance, now time.Duration) {
	var last *vrrp.Heard
	if h, err := a.dp.LastAdvert(in.key); err == nil {
		last = &h
	}
	a.apply(in, in.m.Expire(now, last))
	if in.m.State() == vrrp.Backup {
		a.delegate(in, now)
	}
}
