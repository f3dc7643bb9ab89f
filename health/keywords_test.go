package health

import (
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/vrrp/config"
)

// vrrp_track_process's matching keywords on real processes: full_command
// compares the path as run, not the name; param_match initial and partial take
// a prefix and a run of the arguments; quorum and quorum_max bound how many
// matching processes are healthy.
func TestProcessKeywords(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	var cmds []*exec.Cmd
	start := func(args ...string) int {
		cmd := exec.Command(sleep, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		// Until its exec is complete: its cmdline is then sleep's.
		for range 200 {
			if procMatch(&config.TrackProcess{Process: "sleep", Params: args[0], ParamMatch: "initial"}, cmd.Process.Pid) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return cmd.Process.Pid
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	// Arguments no other process has.
	pid := start("31.4159", "2")
	for _, tc := range []struct {
		name string
		p    config.TrackProcess
		want bool
	}{
		{"name", config.TrackProcess{Process: "sleep"}, true},
		{"params exact", config.TrackProcess{Process: "sleep", Params: "31.4159 2"}, true},
		{"params exact, a prefix", config.TrackProcess{Process: "sleep", Params: "31.4159"}, false},
		{"param_match initial", config.TrackProcess{Process: "sleep", Params: "31.4159", ParamMatch: "initial"}, true},
		{"param_match initial, not the start", config.TrackProcess{Process: "sleep", Params: "2", ParamMatch: "initial"}, false},
		{"param_match partial", config.TrackProcess{Process: "sleep", Params: "2", ParamMatch: "partial"}, true},
		{"full_command, the name", config.TrackProcess{Process: "sleep", FullCommand: true}, false},
		{"full_command, the path", config.TrackProcess{Process: sleep, FullCommand: true}, true},
		{"the path without full_command", config.TrackProcess{Process: sleep}, false},
	} {
		if got := procMatch(&tc.p, pid); got != tc.want {
			t.Errorf("%s: match %v, want %v", tc.name, got, tc.want)
		}
	}

	start("31.4159", "3")
	start("31.4159", "4")
	for _, tc := range []struct {
		quorum, max int
		want        bool
	}{{1, 0, true}, {3, 0, true}, {4, 0, false}, {1, 3, true}, {1, 2, false}} {
		p := &config.TrackProcess{Name: "s", Process: "sleep", Params: "31.4159", ParamMatch: "initial", Quorum: tc.quorum, QuorumMax: tc.max}
		w := newProcWatch([]*config.TrackProcess{p}, slog.New(slog.DiscardHandler))
		if got := w.healthy(p); got != tc.want {
			t.Errorf("3 processes, quorum %d quorum_max %d: healthy %v, want %v", tc.quorum, tc.max, got, tc.want)
		}
	}
}
