package health

import (
	"context"
	"errors"
	"log/slog"

	"github.com/xvrrp/xvrrp/vrrp/config"
)

// Trackers are the running trackers of a configuration.
type Trackers struct {
	// C carries every change of state.
	C <-chan Update
	// Initial is every tracker's state before the first change: scripts healthy
	// unless init_fail, files and processes as they are now.
	Initial []Update
}

// Start prepares and starts the trackers that an instance or sync group uses.
// Everything that can be refused (a script enable_script_security rejects, a
// missing program, a file that cannot be watched) is refused here, before any
// tracker runs. They stop with ctx.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Trackers, error) {
	used := usedTrackers(cfg)
	out := make(chan Update, 64)
	t := &Trackers{C: out}
	opt := Options(cfg)
	var starts []func()
	var errs []error
	for _, s := range cfg.Scripts {
		if !used[KindScript][s.Name] {
			continue
		}
		var p func(context.Context) (bool, error)
		if s.Check != nil {
			p = checkProbe(s)
		} else {
			prog, err := NewProgram("vrrp_script "+s.Name, s.Command, opt, timeout(s))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if prog.Missing != nil {
				// keepalived disables such a script; xvrrp counts each run
				// failed until the program exists, and under
				// enable_script_security checks it before every run.
				log.Warn("script not found: each run fails until it exists", "script", s.Name, "at", s.Command.Pos.String(), "error", prog.Missing)
			}
			p = prog.Run
		}
		t.Initial = append(t.Initial, Update{Kind: KindScript, Name: s.Name, OK: !s.InitFail})
		starts = append(starts, func() { go probeLoop(ctx, s, log, p, out) })
	}
	for _, f := range cfg.TrackFiles {
		if !used[KindFile][f.Name] {
			continue
		}
		w, err := newFileWatch(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.Initial = append(t.Initial, Update{Kind: KindFile, Name: f.Name, Value: w.value})
		starts = append(starts, func() { go w.run(ctx, out) })
	}
	var procs []*config.TrackProcess
	for _, p := range cfg.TrackProcesses {
		if !used[KindProcess][p.Name] {
			continue
		}
		procs = append(procs, p)
	}
	if len(procs) > 0 {
		w := newProcWatch(procs, log)
		for _, p := range procs {
			t.Initial = append(t.Initial, Update{Kind: KindProcess, Name: p.Name, OK: w.ok[p.Name]})
		}
		starts = append(starts, func() { go w.run(ctx, out) })
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, s := range starts {
		s()
	}
	return t, nil
}

// usedTrackers are the names of the trackers some instance or sync group
// tracks, by kind.
func usedTrackers(cfg *config.Config) map[Kind]map[string]bool {
	used := map[Kind]map[string]bool{KindScript: {}, KindFile: {}, KindProcess: {}}
	add := func(scripts, files, procs []config.TrackRef) {
		for _, r := range scripts {
			used[KindScript][r.Name] = true
		}
		for _, r := range files {
			used[KindFile][r.Name] = true
		}
		for _, r := range procs {
			used[KindProcess][r.Name] = true
		}
	}
	for _, in := range cfg.Instances {
		add(in.TrackScripts, in.TrackFiles, in.TrackProcesses)
	}
	for _, g := range cfg.SyncGroups {
		add(g.TrackScripts, g.TrackFiles, g.TrackProcesses)
	}
	return used
}

// Options are the configuration's script settings.
func Options(cfg *config.Config) ScriptOptions {
	return ScriptOptions{Security: cfg.Global.EnableScriptSecurity, User: cfg.Global.ScriptUser, Group: cfg.Global.ScriptGroup}
}
