package health

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

func mustParse(t *testing.T, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("k.conf", text)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

// trackers is what the policy's tests track: scripts, processes and files
// of every weight, with and without reverse.
const trackers = `
vrrp_script up20 {
  script /bin/true
  weight 20
}
vrrp_script down30 {
  script /bin/true
  weight -30
}
vrrp_script rev20 {
  script /bin/true
  weight -20 reverse
}
vrrp_script must {
  script /bin/true
}
vrrp_track_process proc {
  process nginx
}
vrrp_track_process proc40 {
  process nginx
  weight -40
}
track_file f1 {
  file /run/f1
  weight -1
}
track_file f0 {
  file /run/f0
  weight 0
}
`

func instanceText(name string, vrid, prio int, body string) string {
	return "vrrp_instance " + name + " {\ninterface eth0\nvirtual_router_id " + strconv.Itoa(vrid) + "\npriority " + strconv.Itoa(prio) +
		"\nvirtual_ipaddress {\n192.0.2." + strconv.Itoa(vrid) + "\n}\n" + body + "\n}\n"
}

// TestRange: what trackers can do to an instance, as keepalived's rules and
// the daemon have it, where `xvrrp check` used to say otherwise.
func TestRange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prio     int
		body     string
		group    string // the body of a vrrp_sync_group holding the instance
		lo, hi   uint8
		canFault bool
	}{
		{name: "no trackers", prio: 100, lo: 100, hi: 100},
		{name: "weights add up, clamped", prio: 240, body: "track_script {\nup20\ndown30\n}\ntrack_interface {\neth1 weight -250\n}", lo: 1, hi: 254},
		{name: "owner never moves", prio: 255, body: "track_script {\ndown30\n}", lo: 255, hi: 255},
		{name: "owner can fault", prio: 255, body: "track_script {\nmust\n}", lo: 255, hi: 255, canFault: true},
		// check used to read the reference's reverse, not the script's.
		{name: "reverse inherited from the script", prio: 100, body: "track_script {\nrev20\n}", lo: 100, hi: 120},
		{name: "a reference's weight brings its own reverse", prio: 100, body: "track_script {\nrev20 weight -20\n}", lo: 80, hi: 100},
		{name: "reverse on an interface", prio: 100, body: "track_interface {\neth1 weight -10 reverse\n}", lo: 100, hi: 110},
		{name: "weight 0 reversed faults while up", prio: 100, body: "track_interface {\neth1 reverse\n}", lo: 100, hi: 100, canFault: true},
		// check used to count only interfaces and scripts as able to fault.
		{name: "a process of weight 0 faults", prio: 100, body: "track_process {\nproc\n}", lo: 100, hi: 100, canFault: true},
		{name: "a process's weight", prio: 100, body: "track_process {\nproc40\n}", lo: 60, hi: 100},
		{name: "a reversed reference to a process", prio: 100, body: "track_process {\nproc40 weight -10 reverse\n}", lo: 100, hi: 110},
		{name: "a file of weight 0 faults", prio: 100, body: "track_file {\nf0\n}", lo: 100, hi: 100, canFault: true},
		{name: "a file's value times its weight", prio: 100, body: "track_file {\nf1\n}", lo: 1, hi: 254, canFault: true},
		// A value times 254 is 0, or -254 and a FAULT, or 254 and more: it
		// can raise the priority, never lower it.
		{name: "a file of weight 254 never lowers", prio: 100, body: "track_file {\nf1 weight 254\n}", lo: 100, hi: 254, canFault: true},
		{name: "a file of weight 100 lowers by 200 at most", prio: 250, body: "track_file {\nf1 weight 100\n}", lo: 50, hi: 254, canFault: true},
		// check used to add a sync group's weights; without
		// sync_group_tracking_weight they only fault.
		{name: "group trackers only fault", prio: 100, group: "track_script {\ndown30\nup20\n}", lo: 100, hi: 100, canFault: true},
		{name: "group trackers with tracking weight", prio: 100, group: "sync_group_tracking_weight\ntrack_script {\ndown30\nup20\n}", lo: 70, hi: 120},
		// One state for two references: up20 up gives +20, down faults.
		{name: "the same script twice", prio: 100, body: "track_script {\nup20\n}", group: "track_script {\nup20\n}", lo: 120, hi: 120, canFault: true},
		{name: "no state runs", prio: 100, body: "track_interface {\neth1\n}", group: "track_interface {\neth1 reverse\n}", lo: 0, hi: 0, canFault: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := trackers + instanceText("I", 1, tc.prio, tc.body) + instanceText("J", 2, 100, "")
			if tc.group != "" {
				text += "vrrp_sync_group G {\ngroup {\nI\nJ\n}\n" + tc.group + "\n}\n"
			}
			c := mustParse(t, text)
			lo, hi, canFault := NewPolicy(c).Range(c.Instance("I"))
			if lo != tc.lo || hi != tc.hi || canFault != tc.canFault {
				t.Errorf("Range = %d, %d, fault %v; want %d, %d, fault %v", lo, hi, canFault, tc.lo, tc.hi, tc.canFault)
			}
		})
	}
}

// TestEvaluate: the daemon's verdict for given states, and which FAULT it
// names first.
func TestEvaluate(t *testing.T) {
	c := mustParse(t, trackers+instanceText("I", 1, 100, `track_interface {
eth1 weight -10
eth2
}
track_script {
up20
rev20
}
track_process {
proc40
}
track_file {
f1
}`)+instanceText("J", 2, 100, "")+"vrrp_sync_group G {\ngroup {\nI\nJ\n}\ntrack_script {\nmust\n}\n}\n")
	in := c.Instance("I")
	healthy := func() States {
		s := NewStates()
		s.Interfaces["eth1"], s.Interfaces["eth2"] = true, true
		s.Scripts["up20"], s.Scripts["rev20"], s.Scripts["must"] = true, true, true
		s.Processes["proc40"] = true
		return s
	}
	for _, tc := range []struct {
		name   string
		change func(States)
		fault  string
		prio   uint8
	}{
		{"healthy", func(States) {}, "", 120},
		{"eth1 down", func(s States) { s.Interfaces["eth1"] = false }, "", 110},
		{"rev20 failing adds", func(s States) { s.Scripts["rev20"] = false }, "", 140},
		{"process down", func(s States) { s.Processes["proc40"] = false }, "", 80},
		{"file 30", func(s States) { s.Files["f1"] = 30 }, "", 90},
		{"file -300", func(s States) { s.Files["f1"] = -300 }, "", 254},
		{"file 254", func(s States) { s.Files["f1"] = 254 }, "track_file f1 is 254", 120},
		{"eth2 down", func(s States) { s.Interfaces["eth2"] = false }, "tracked interface eth2 down", 120},
		{"group's script", func(s States) { s.Scripts["must"] = false }, "script must failed", 120},
		{"the instance's FAULT first", func(s States) { s.Scripts["must"], s.Interfaces["eth2"] = false, false }, "tracked interface eth2 down", 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := healthy()
			tc.change(s)
			fault, prio := NewPolicy(c).Evaluate(in, s)
			if fault != tc.fault || prio != tc.prio {
				t.Errorf("Evaluate = %q, %d; want %q, %d", fault, prio, tc.fault, tc.prio)
			}
		})
	}
}

// TestTrackers: references resolved as the daemon acts on them.
func TestTrackers(t *testing.T) {
	c := mustParse(t, trackers+instanceText("I", 1, 100, "track_script {\nrev20\nup20 weight -5 reverse\n}\ntrack_file {\nf1\n}\ntrack_process {\nproc\n}")+
		instanceText("J", 2, 100, "")+"vrrp_sync_group G {\ngroup {\nI\nJ\n}\ntrack_script {\ndown30\n}\n}\n")
	p := NewPolicy(c)
	want := []config.Effect{
		{Keyword: "track_script", Name: "rev20", Weight: -20, Reverse: true},
		{Keyword: "track_script", Name: "up20", Weight: -5, Reverse: true},
		{Keyword: "track_process", Name: "proc"},
		{Keyword: "track_file", Name: "f1", Weight: -1},
	}
	if diff := cmp.Diff(want, p.InstanceTrackers(c.Instance("I"))); diff != "" {
		t.Errorf("InstanceTrackers (-want +got):\n%s", diff)
	}
	want = []config.Effect{{Keyword: "track_script", Name: "down30"}}
	if diff := cmp.Diff(want, p.GroupTrackers(c.SyncGroups[0])); diff != "" {
		t.Errorf("GroupTrackers (-want +got):\n%s", diff)
	}
}

// FuzzPolicy: on any valid configuration and any tracker states, Evaluate
// stays within what Range says (a priority from lo to hi, or a FAULT only
// when canFault), and the configuration prints with the policy.
func FuzzPolicy(f *testing.F) {
	files, _ := filepath.Glob("../vrrp/config/testdata/compat/*.conf")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b), []byte{0, 1, 2, 3})
		}
	}
	f.Add(trackers+instanceText("I", 1, 100, "track_file {\nf1 weight 100\n}\ntrack_script {\nrev20\n}"), []byte{200, 7})
	f.Fuzz(func(t *testing.T, text string, states []byte) {
		c, err := config.Parse("k.conf", text)
		if err != nil {
			return
		}
		p := NewPolicy(c)
		c.Print(io.Discard, p)
		// Every tracker named anywhere gets a state from the fuzzer's bytes.
		s := NewStates()
		next := func() int {
			if len(states) == 0 {
				return 0
			}
			b := states[0]
			states = states[1:]
			return int(int8(b)) * 3
		}
		for _, in := range c.Instances {
			for _, e := range p.trackers(in) {
				set(s, e.Keyword, e.Name, next())
			}
		}
		for _, in := range c.Instances {
			lo, hi, canFault := p.Range(in)
			fault, prio := p.Evaluate(in, s)
			switch {
			case fault != "" && !canFault:
				t.Fatalf("%s: FAULT %q, but Range says none can happen", in.Name, fault)
			case fault == "" && (prio < lo || prio > hi):
				t.Fatalf("%s: priority %d outside Range %d to %d", in.Name, prio, lo, hi)
			}
		}
	})
}
