package agent

import (
	"fmt"

	"github.com/xvrrp/xvrrp/health"
	"github.com/xvrrp/xvrrp/vrrp"
)

// trackerStates is what the trackers last said, by name.
type trackerStates struct {
	ifUp     map[string]bool // track_interface, from link updates
	scriptOK map[string]bool // vrrp_script and xvrrp_check
	procOK   map[string]bool
	fileVal  map[string]int
}

func newHealth() trackerStates {
	return trackerStates{ifUp: map[string]bool{}, scriptOK: map[string]bool{}, procOK: map[string]bool{}, fileVal: map[string]int{}}
}

func (h trackerStates) states() health.States {
	return health.States{Interfaces: h.ifUp, Scripts: h.scriptOK, Processes: h.procOK, Files: h.fileVal}
}

func (h trackerStates) set(u health.Update) { h.states().Set(u) }

// carry keeps what prev's trackers said for the trackers of the same name,
// over the first states the new ones start with, so that a reload moves no
// priority by itself; interfaces were read afresh.
func (h trackerStates) carry(prev trackerStates) {
	for name := range h.scriptOK {
		if ok, seen := prev.scriptOK[name]; seen {
			h.scriptOK[name] = ok
		}
	}
	for name := range h.procOK {
		if ok, seen := prev.procOK[name]; seen {
			h.procOK[name] = ok
		}
	}
	for name := range h.fileVal {
		if v, seen := prev.fileVal[name]; seen {
			h.fileVal[name] = v
		}
	}
}

// verdict is an instance's trackers' verdict — its own and its sync group's:
// why it must be in FAULT (or ""), and its effective priority, by the policy
// that `xvrrp check` prints.
func (a *Agent) verdict(in *instance) (fault string, prio uint8) {
	if a.policy == nil {
		a.policy = health.NewPolicy(a.cfg)
	}
	return a.policy.Evaluate(in.cfg, a.health.states())
}

// track applies a tracker's change to every instance.
func (a *Agent) track(u health.Update) {
	a.health.set(u)
	a.reassess("")
}

// reassess brings every instance in line with its trackers: its priority, then
// FAULT in or out. why is logged when an instance leaves FAULT.
func (a *Agent) reassess(why string) {
	if !a.running {
		return // start() takes the states as they are then
	}
	now := a.now()
	for _, in := range a.insts {
		_, prio := a.verdict(in)
		if prio != in.m.Priority() {
			a.log.Info(fmt.Sprintf("(%s) Changing effective priority from %d to %d", in.cfg.Name, in.m.Priority(), prio))
			a.apply(in, in.m.SetPriority(now, prio))
			a.putKernel(in, in.kstate.State, now)
			if st := in.m.State(); (st == vrrp.Master || st == vrrp.Backup) && in.cfg.Notify.PriorityChanges {
				a.notify.priority(in.cfg, stateName(st), prio)
			}
		}
	}
	// A sync group, as keepalived's, is in FAULT while any member has a fault
	// of its own, and leaves it, all members together, when none has.
	for _, in := range a.insts {
		fault := a.groupFault(in)
		switch st := in.m.State(); {
		case fault != "" && st != vrrp.Fault:
			a.apply(in, in.m.SetFault(now, true, fault))
		case fault == "" && st == vrrp.Fault:
			if why == "" {
				why = "trackers healthy"
			}
			a.apply(in, in.m.SetFault(now, false, why))
		}
	}
}
