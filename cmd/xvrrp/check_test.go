package main

import (
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/xvrrp/xvrrp/health"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

// TestCheckPrintsWhatRunDoes: over the configuration corpus, the priorities
// `xvrrp check` prints for each instance, and whether it says trackers can put
// it in FAULT, are what the daemon's policy (health.Policy.Evaluate, which the
// agent calls) gives over every state of the instance's trackers.
func TestCheckPrintsWhatRunDoes(t *testing.T) {
	files, _ := filepath.Glob("../../vrrp/config/testdata/compat/*.conf")
	if len(files) == 0 {
		t.Fatal("no configurations in vrrp/config/testdata/compat")
	}
	// Debian's keepalived samples, where installed (vrrp/config's
	// TestDebianSamples insists on them in CI): those xvrrp accepts.
	samples, _ := filepath.Glob("/usr/share/doc/keepalived/samples/keepalived.conf.*")
	files = append(files, samples...)
	instances := 0
	for _, f := range files {
		cfg, err := config.Load(f, config.Options{})
		if err != nil {
			// Keywords not implemented yet are refused; config.TestCorpus
			// names them file by file.
			if !strings.Contains(f, "/samples/") && !onlyNotImplemented(err) {
				t.Errorf("%s: %v", f, err)
			}
			continue
		}
		code, out, errOut := runCLI(t, "check", "-f", f)
		if code != 0 {
			t.Errorf("%s: check exit %d\n%s", f, code, errOut)
			continue
		}
		printed := printedPriorities(t, out)
		for _, in := range cfg.Instances {
			instances++
			want := everyState(t, cfg, in)
			if got, ok := printed[in.Name]; !ok || got != want {
				t.Errorf("%s: vrrp_instance %s: check prints %+v, the daemon's policy gives %+v", f, in.Name, got, want)
			}
		}
	}
	if instances < 10 {
		t.Errorf("%d instances in the corpus: too few to mean anything", instances)
	}
}

// onlyNotImplemented says whether every error is a keyword refused as not
// implemented.
func onlyNotImplemented(err error) bool {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return false
	}
	for _, d := range ce.Diags {
		if !strings.Contains(d.Msg, ": not implemented") {
			return false
		}
	}
	return true
}

// reach is what an instance's trackers can do to it.
type reach struct {
	Lo, Hi   int  // the effective priorities outside FAULT
	Always   bool // every state is a FAULT
	CanFault bool
}

var priorityLine = regexp.MustCompile(`^  priority (\d+)(?: \(effective (\d+) to (\d+) with trackers\))?(, always FAULT[^,]*)?(, FAULT when its trackers say so)?$`)

// printedPriorities reads check's priority line of each instance.
func printedPriorities(t *testing.T, out string) map[string]reach {
	t.Helper()
	got := map[string]reach{}
	name := ""
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "vrrp_instance "); ok {
			name, _, _ = strings.Cut(rest, " ")
			continue
		}
		if !strings.HasPrefix(line, "  priority ") {
			continue
		}
		m := priorityLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("priority line %q is not as the test reads it", line)
		}
		base, _ := strconv.Atoi(m[1])
		r := reach{Lo: base, Hi: base, Always: m[4] != "", CanFault: m[5] != "" || m[4] != ""}
		if m[2] != "" {
			r.Lo, _ = strconv.Atoi(m[2])
			r.Hi, _ = strconv.Atoi(m[3])
		}
		if r.Always {
			r.Lo, r.Hi = 0, 0
		}
		got[name] = r
	}
	return got
}

// everyState runs the daemon's policy over every state of the instance's
// trackers, its own and its sync group's: interfaces and scripts up and down,
// files from -300 to 300 (past where any weight, at most 254, clamps or
// faults).
func everyState(t *testing.T, cfg *config.Config, in *config.Instance) reach {
	t.Helper()
	type key struct {
		kind byte // i, s, p, f
		name string
	}
	var keys []key
	seen := map[key]bool{}
	add := func(k key) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	collect := func(ti []config.TrackInterface, ts, tf, tp []config.TrackRef) {
		for _, x := range ti {
			add(key{'i', x.Name})
		}
		for _, x := range ts {
			add(key{'s', x.Name})
		}
		for _, x := range tp {
			add(key{'p', x.Name})
		}
		for _, x := range tf {
			add(key{'f', x.Name})
		}
	}
	collect(in.TrackInterfaces, in.TrackScripts, in.TrackFiles, in.TrackProcesses)
	if g := in.Group; g != nil {
		collect(g.TrackInterfaces, g.TrackScripts, g.TrackFiles, g.TrackProcesses)
	}
	values := func(k key) []int {
		if k.kind != 'f' {
			return []int{0, 1}
		}
		var vs []int
		for v := -300; v <= 300; v++ {
			vs = append(vs, v)
		}
		return vs
	}
	n := 1
	for _, k := range keys {
		if n *= len(values(k)); n > 1<<22 {
			t.Fatalf("vrrp_instance %s: too many tracker states to try them all", in.Name)
		}
	}
	p := health.NewPolicy(cfg)
	r := reach{Always: true}
	s := health.NewStates()
	var try func(i int)
	try = func(i int) {
		if i == len(keys) {
			fault, prio := p.Evaluate(in, s)
			switch {
			case fault != "":
				r.CanFault = true
			case r.Always:
				r.Lo, r.Hi, r.Always = int(prio), int(prio), false
			default:
				r.Lo, r.Hi = min(r.Lo, int(prio)), max(r.Hi, int(prio))
			}
			return
		}
		k := keys[i]
		for _, v := range values(k) {
			switch k.kind {
			case 'i':
				s.Interfaces[k.name] = v == 1
			case 's':
				s.Scripts[k.name] = v == 1
			case 'p':
				s.Processes[k.name] = v == 1
			case 'f':
				s.Files[k.name] = v
			}
			try(i + 1)
		}
	}
	try(0)
	return r
}

// check says what fast_liveness will do, and refuses a bad block with its
// file:line.
func TestCheckFastLiveness(t *testing.T) {
	conf := `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    fast_liveness {
        interval %s
        multiplier 3
    }
    virtual_ipaddress {
        192.0.2.1/24
    }
}
`
	p := writeConf(t, strings.Replace(conf, "%s", "1ms", 1))
	code, out, errOut := runCLI(t, "check", "-f", p)
	want := "fast_liveness: as backup, probes the master every 1ms (UDP port 7112, from the kernel's record of its adverts) and takes over once 3 in a row go unanswered (looked at 3.609375ms after the last reply)"
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("check exit %d, output\n%s\n%s\nwant it to say %q", code, out, errOut, want)
	}
	p = writeConf(t, strings.Replace(conf, "%s", "1us", 1))
	code, _, errOut = runCLI(t, "check", "-f", p)
	if want := p + ":6: interval: '1us' is not a duration from 100µs to 10s"; code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("check exit %d, errors\n%s\nwant %q", code, errOut, want)
	}
}
