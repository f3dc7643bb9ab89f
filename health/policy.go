package health

import (
	"fmt"

	"github.com/xvrrp/xvrrp/vrrp/config"
)

// States are what the trackers last said, by name.
type States struct {
	Interfaces map[string]bool // track_interface: up
	Scripts    map[string]bool // vrrp_script and xvrrp_check: healthy
	Processes  map[string]bool // track_process: running, quorum met
	Files      map[string]int  // track_file: the number in the file
}

// NewStates returns empty States: every tracker down, every file 0.
func NewStates() States {
	return States{Interfaces: map[string]bool{}, Scripts: map[string]bool{}, Processes: map[string]bool{}, Files: map[string]int{}}
}

// Set records a tracker's update.
func (s States) Set(u Update) {
	switch u.Kind {
	case KindScript:
		s.Scripts[u.Name] = u.OK
	case KindProcess:
		s.Processes[u.Name] = u.OK
	case KindFile:
		s.Files[u.Name] = u.Value
	}
}

// Policy is the one rule that turns trackers' states into an instance's
// effective priority or a FAULT, as keepalived has it: with weight 0 a failure
// is a FAULT; otherwise a positive weight is added while healthy, a negative
// one while failed, and reverse negates it; a track_file adds its value times
// its weight and is a FAULT at -254 or below; a sync group's trackers only
// fault unless sync_group_tracking_weight; the sum is kept within 1–254 and an
// address owner's 255 never moves. The daemon judges by Evaluate; `xvrrp
// check` prints the trackers as Evaluate reads them and the Range that
// Evaluate gives on the extreme states, so what check says is what run does.
type Policy struct {
	cfg *config.Config
}

// NewPolicy returns the policy of a validated configuration.
func NewPolicy(cfg *config.Config) *Policy { return &Policy{cfg: cfg} }

// Keywords that name the kinds of tracker in a config.Effect.
const (
	trackInterface = "track_interface"
	trackScript    = "track_script"
	trackProcess   = "track_process"
	trackFile      = "track_file"
)

// InstanceTrackers are the instance's own trackers as they act on it.
func (p *Policy) InstanceTrackers(in *config.Instance) []config.Effect {
	return p.effects(in.TrackInterfaces, in.TrackScripts, in.TrackFiles, in.TrackProcesses, true)
}

// GroupTrackers are a sync group's trackers as they act on each member: with
// weight 0, unless sync_group_tracking_weight.
func (p *Policy) GroupTrackers(g *config.SyncGroup) []config.Effect {
	if g == nil {
		return nil
	}
	return p.effects(g.TrackInterfaces, g.TrackScripts, g.TrackFiles, g.TrackProcesses, g.TrackingWeight)
}

// trackers are every tracker that acts on the instance, its own then its
// sync group's; the first that faults names the FAULT.
func (p *Policy) trackers(in *config.Instance) []config.Effect {
	return append(p.InstanceTrackers(in), p.GroupTrackers(in.Group)...)
}

// effects resolves references: a reference's weight is its own, else the
// tracker's; its reverse is the tracker's when it gives no weight. Without
// weighted, every weight is 0. The order, interfaces, scripts, processes,
// files, is the order in which a FAULT is named.
func (p *Policy) effects(ti []config.TrackInterface, ts, tf, tp []config.TrackRef, weighted bool) []config.Effect {
	c := p.cfg
	var out []config.Effect
	add := func(kw string, name string, weight int, reverse bool) {
		if !weighted {
			weight = 0
		}
		out = append(out, config.Effect{Keyword: kw, Name: name, Weight: weight, Reverse: reverse})
	}
	// ref adds a reference to a tracker whose own weight and reverse are w
	// and r, unless the reference gives a weight.
	ref := func(kw string, t config.TrackRef, w int, r bool) {
		if t.Weight != nil {
			w, r = *t.Weight, t.Reverse
		}
		add(kw, t.Name, w, r)
	}
	for _, t := range ti {
		add(trackInterface, t.Name, t.Weight, t.Reverse)
	}
	// Validation leaves no reference to a missing tracker; the defaults
	// below are what the daemon has always taken for one.
	for _, t := range ts {
		w, r := 0, t.Reverse
		if s := c.Script(t.Name); s != nil {
			w, r = s.Weight, s.Reverse
		}
		ref(trackScript, t, w, r)
	}
	for _, t := range tp {
		w, r := 0, t.Reverse
		if pr := c.TrackProcess(t.Name); pr != nil {
			w, r = pr.Weight, pr.Reverse
		}
		ref(trackProcess, t, w, r)
	}
	for _, t := range tf {
		w, r := 1, t.Reverse
		if f := c.TrackFile(t.Name); f != nil {
			w, r = f.Weight, f.Reverse
		}
		ref(trackFile, t, w, r)
	}
	return out
}

// Evaluate is the instance's trackers' verdict, its own and its sync
// group's: why it must be in FAULT (or ""), and its effective priority.
func (p *Policy) Evaluate(in *config.Instance, s States) (fault string, prio uint8) {
	sum := 0
	for _, e := range p.trackers(in) {
		d, f := effect(e, s)
		sum += d
		if f != "" && fault == "" {
			fault = f
		}
	}
	base := int(in.Priority)
	if base == 255 { // the address owner
		return fault, 255
	}
	return fault, uint8(max(1, min(254, base+sum)))
}

// effect is one tracker's part in a verdict: what it adds to the priority,
// or why it is a FAULT.
func effect(e config.Effect, s States) (delta int, fault string) {
	if e.Keyword == trackFile {
		v := s.Files[e.Name]
		d := v * e.Weight
		if e.Reverse {
			d = -d
		}
		if e.Weight == 0 && v != 0 || e.Weight != 0 && d <= -254 {
			return 0, fmt.Sprintf("track_file %s is %d", e.Name, v)
		}
		return d, ""
	}
	var ok bool
	var why string
	switch e.Keyword {
	case trackInterface:
		ok, why = s.Interfaces[e.Name], "tracked interface "+e.Name+" down"
	case trackScript:
		ok, why = s.Scripts[e.Name], "script "+e.Name+" failed"
	case trackProcess:
		ok, why = s.Processes[e.Name], "process "+e.Name+" down"
	}
	if e.Weight == 0 {
		if ok == e.Reverse {
			return 0, why
		}
		return 0, ""
	}
	if e.Weight > 0 && ok || e.Weight < 0 && !ok {
		if e.Reverse {
			return -e.Weight, ""
		}
		return e.Weight, ""
	}
	return 0, ""
}

// Range is what the trackers can do to the instance: the lowest and highest
// effective priority Evaluate gives it outside FAULT, and whether some states
// put it in FAULT. lo and hi are 0 when every state does. Both come from
// Evaluate on the states that give them, so they are priorities the daemon
// does reach.
func (p *Policy) Range(in *config.Instance) (lo, hi uint8, canFault bool) {
	// A tracker named twice (by the instance and its group, say) has one
	// state for both: the extremes are chosen per state, over every
	// reference to it. Different states are independent, and a verdict is a
	// sum, so the lowest priority is every state at its lowest.
	type key struct{ kw, name string }
	var keys []key
	refs := map[key][]config.Effect{}
	for _, e := range p.trackers(in) {
		k := key{e.Keyword, e.Name}
		if refs[k] == nil {
			keys = append(keys, k)
		}
		refs[k] = append(refs[k], e)
	}
	low, high := NewStates(), NewStates()
	for _, k := range keys {
		found := false
		var min, max, argMin, argMax int
		for _, v := range candidates(k.kw, refs[k]) {
			one := NewStates()
			set(one, k.kw, k.name, v)
			sum, faults := 0, false
			for _, e := range refs[k] {
				d, f := effect(e, one)
				sum += d
				faults = faults || f != ""
			}
			if faults {
				canFault = true
				continue
			}
			if !found || sum < min {
				min, argMin = sum, v
			}
			if !found || sum > max {
				max, argMax = sum, v
			}
			found = true
		}
		if !found {
			return 0, 0, true
		}
		set(low, k.kw, k.name, argMin)
		set(high, k.kw, k.name, argMax)
	}
	_, lo = p.Evaluate(in, low)
	_, hi = p.Evaluate(in, high)
	return lo, hi, canFault
}

// far is a file value past every bound: a weight is at most 254 in size.
const far = 1 << 20

// candidates are the states of one tracker among which its extremes are:
// up and down; for a file, 0, a value far either way, and the last values
// either way before a weight's -254 makes it a FAULT (between them the
// priority moves monotonically).
func candidates(kw string, refs []config.Effect) []int {
	if kw != trackFile {
		return []int{1, 0}
	}
	vs := []int{0, far, -far}
	for _, e := range refs {
		if e.Weight != 0 {
			last := 253 / abs(e.Weight)
			vs = append(vs, last, -last)
		}
	}
	return vs
}

func set(s States, kw, name string, v int) {
	switch kw {
	case trackInterface:
		s.Interfaces[name] = v != 0
	case trackScript:
		s.Scripts[name] = v != 0
	case trackProcess:
		s.Processes[name] = v != 0
	case trackFile:
		s.Files[name] = v
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
