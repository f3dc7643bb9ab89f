package agent

import (
	"fmt"

	"github.com/xvrrp/xvrrp/health"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
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

func (h trackerStates) set(u health.Update) {
	switch u.Kind {
	case health.KindScript:
		h.scriptOK[u.Name] = u.OK
	case health.KindProcess:
		h.procOK[u.Name] = u.OK
	case health.KindFile:
		h.fileVal[u.Name] = u.Value
	}
}

// adjust is one tracker's effect, as keepalived computes it: with weight 0 a
// failure is a FAULT; otherwise a positive weight is added while healthy, a
// negative one while failed, and reverse negates it.
func adjust(ok bool, weight int, reverse bool) (delta int, fault bool) {
	if weight == 0 {
		return 0, ok == reverse
	}
	m := 1
	if reverse {
		m = -1
	}
	switch {
	case weight > 0 && ok, weight < 0 && !ok:
		return weight * m, false
	}
	return 0, false
}

// verdict is an instance's trackers' verdict — its own and its sync group's:
// why it must be in FAULT (or ""), and its effective priority. The priority is
// the base plus the weights, kept within 1–254, and an address owner's 255
// never moves (keepalived's rules).
func (a *Agent) verdict(in *instance) (fault string, prio uint8) {
	c := a.cfg
	sum := 0
	try := func(what string, ok bool, weight int, reverse bool) {
		d, f := adjust(ok, weight, reverse)
		sum += d
		if f && fault == "" {
			fault = what
		}
	}
	refs := func(ti []config.TrackInterface, ts, tf, tp []config.TrackRef, groupWeights bool) {
		w := func(n int) int {
			if !groupWeights {
				return 0 // a sync group's trackers only fault, unless sync_group_tracking_weight
			}
			return n
		}
		for _, t := range ti {
			up := a.health.ifUp[t.Name]
			try("tracked interface "+t.Name+" down", up, w(t.Weight), t.Reverse)
		}
		for _, t := range ts {
			rev := t.Reverse
			if s := c.Script(t.Name); s != nil && t.Weight == nil {
				rev = s.Reverse
			}
			try("script "+t.Name+" failed", a.health.scriptOK[t.Name], w(c.ScriptWeight(t)), rev)
		}
		for _, t := range tp {
			rev := t.Reverse
			if p := c.TrackProcess(t.Name); p != nil && t.Weight == nil {
				rev = p.Reverse
			}
			try("process "+t.Name+" down", a.health.procOK[t.Name], w(c.ProcessWeight(t)), rev)
		}
		for _, t := range tf {
			rev := t.Reverse
			if f := c.TrackFile(t.Name); f != nil && t.Weight == nil {
				rev = f.Reverse
			}
			v, weight := a.health.fileVal[t.Name], w(c.FileWeight(t))
			d := v * weight
			if rev {
				d = -d
			}
			switch {
			case weight == 0 && v != 0, weight != 0 && d <= -254:
				if fault == "" {
					fault = fmt.Sprintf("track_file %s is %d", t.Name, v)
				}
			default:
				sum += d
			}
		}
	}
	refs(in.cfg.TrackInterfaces, in.cfg.TrackScripts, in.cfg.TrackFiles, in.cfg.TrackProcesses, true)
	for _, g := range c.SyncGroups {
		if g.Name == in.cfg.SyncGroup {
			refs(g.TrackInterfaces, g.TrackScripts, g.TrackFiles, g.TrackProcesses, g.TrackingWeight)
		}
	}
	base := int(in.cfg.Priority)
	if base == 255 { // the address owner
		return fault, 255
	}
	return fault, uint8(max(1, min(254, base+sum)))
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
			a.putKernel(in, in.kernel.State, now)
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
