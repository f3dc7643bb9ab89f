package loader

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// A backup's Master_Down_Timer in the kernel (down_timers, bpf/xvrrp.c
// hold_off): re-armed at each valid advert that holds the backup off, it
// pushes EventMasterDown when it runs out, and the daemon sleeps until then.

// EventMasterDown is the event a backup's kernel Master_Down_Timer pushes when
// it runs out.
const EventMasterDown = uint32(bpfXvrrpEventKindXVRRP_EVENT_MASTER_DOWN)

// DownTimer is what the kernel needs to run an instance's Master_Down_Timer
// as vrrp.Machine would, besides its instance (state, version, interval,
// effective priority).
type DownTimer struct {
	NoPreempt   bool
	DownAdverts int // down_timer_adverts; 0 means 3
}

// SetDownTimer hands an instance's Master_Down_Timer to the kernel, from the
// next valid advert that holds it off. Writing the entry cancels a timer the
// kernel was running for it: until that advert, the daemon times the instance.
func (d *Datapath) SetDownTimer(k Key, t DownTimer) error {
	if t.DownAdverts < 0 || t.DownAdverts > 255 {
		return fmt.Errorf("down timer %+v: down_timer_adverts %d out of range", k, t.DownAdverts)
	}
	v := bpfXvrrpDownTimer{DownAdverts: uint8(t.DownAdverts)}
	if t.NoPreempt {
		v.Flags |= uint8(bpfXvrrpDownFlagXVRRP_DOWN_NO_PREEMPT)
	}
	if err := d.objs.DownTimers.Put(k.kernel(), v); err != nil {
		return fmt.Errorf("put down timer %+v: %w", k, err)
	}
	return nil
}

// ForgetDownTimer takes an instance's Master_Down_Timer back from the kernel
// (cancelling it); no entry is no error.
func (d *Datapath) ForgetDownTimer(k Key) error {
	if err := d.objs.DownTimers.Delete(k.kernel()); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete down timer %+v: %w", k, err)
	}
	return nil
}

// DownTimerState is the kernel's side of an instance's Master_Down_Timer.
type DownTimerState struct {
	// Heard is the advert that last armed it, Interval the master's interval
	// it was armed with, Due when it runs out (CLOCK_MONOTONIC); all zero
	// until an advert arms it.
	Heard, Interval, Due time.Duration
	Fired                uint64 // MASTER_DOWN events pushed
	// InitErrors counts adverts that found the timer could not be set up
	// (bpf_timer_init: no memory in that context); the next one tries again.
	InitErrors uint32
}

// DownTimerOf reads the kernel's side of an instance's Master_Down_Timer. It
// returns an error wrapping ebpf.ErrKeyNotExist when the daemon times it.
func (d *Datapath) DownTimerOf(k Key) (DownTimerState, error) {
	var v bpfXvrrpDownTimer
	if err := d.objs.DownTimers.Lookup(k.kernel(), &v); err != nil {
		return DownTimerState{}, err
	}
	return DownTimerState{Heard: time.Duration(v.HeardNs), Interval: time.Duration(v.IntervalNs),
		Due: time.Duration(v.DueNs), Fired: v.Fired, InitErrors: v.InitErrors}, nil
}

// DownTimers is the kernel's side of every Master_Down_Timer handed to it.
func (d *Datapath) DownTimers() (map[Key]DownTimerState, error) {
	out := map[Key]DownTimerState{}
	var (
		k bpfXvrrpInstanceKey
		v bpfXvrrpDownTimer
	)
	it := d.objs.DownTimers.Iterate()
	for it.Next(&k, &v) {
		out[keyOf(k)] = DownTimerState{Heard: time.Duration(v.HeardNs), Interval: time.Duration(v.IntervalNs),
			Due: time.Duration(v.DueNs), Fired: v.Fired, InitErrors: v.InitErrors}
	}
	return out, it.Err()
}
