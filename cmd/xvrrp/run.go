package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp/agent"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

const defaultStateDir = "/run/xvrrp"

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "run the VRRP instances of a keepalived.conf (the daemon, in the foreground)",
	ArgsUsage: " ",
	Description: `Loads the eBPF datapath onto the instances' interfaces, runs the instances and
logs their transitions as keepalived does, e.g. "(VI_1) Entering MASTER STATE".
SIGTERM or SIGINT stops it: each master sends a priority-0 advert, the VIPs are
removed and so is the datapath. With --keep-datapath, the datapath, the VIPs and
the masters' leases stay for a restarted daemon to take over without a gap.
Needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).`,
	Flags: append(append([]cli.Flag{}, configFlags...),
		&cli.StringFlag{Name: "pin-dir", Value: loader.DefaultPinDir, Usage: "bpffs directory for the pinned maps and links; one per daemon"},
		&cli.StringFlag{Name: "state-dir", Value: defaultStateDir, Usage: "directory for the pid file; one per daemon"},
		&cli.BoolFlag{Name: "keep-datapath", Usage: "on stop, leave the datapath, VIPs and leases for a restart"},
		&cli.StringFlag{Name: "tc", Value: "auto", Usage: "how to attach the fence: auto, tcx or clsact"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
	),
	Action: func(c *cli.Context) error {
		if c.Args().Present() {
			return usageError(c, "unexpected argument %q (the file goes after -f)", c.Args().First())
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
			return usageError(c, "--log-level %q: want debug, info, warn or error", c.String("log-level"))
		}
		tc, ok := map[string]loader.TCMode{"auto": loader.TCAuto, "tcx": loader.TCX, "clsact": loader.TCClsact}[c.String("tc")]
		if !ok {
			return usageError(c, "--tc %q: want auto, tcx or clsact", c.String("tc"))
		}
		log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))

		file := c.String("use-file")
		cfg, err := config.Load(file, config.Options{ConfigID: c.String("config-id")})
		for _, w := range cfg.Warnings {
			log.Warn(w.String())
		}
		if err != nil {
			return configError(c.App.ErrWriter, file, err)
		}
		for _, w := range noReloadWarnings(cfg) {
			log.Warn(w)
		}

		stateDir := c.String("state-dir")
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		pidFile := filepath.Join(stateDir, "xvrrp.pid")
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		defer os.Remove(pidFile)

		a, err := agent.New(cfg, agent.Options{
			PinDir:       c.String("pin-dir"),
			Logger:       log,
			KeepDatapath: c.Bool("keep-datapath"),
			TC:           tc,
		})
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		log.Info("xvrrp running", "config", file, "instances", len(cfg.Instances), "pin_dir", c.String("pin-dir"))
		if err := a.Run(c.Context); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		log.Info("xvrrp stopped")
		return nil
	},
}

// noReloadWarnings says what in the configuration never happens because xvrrp
// does not reload: notify_deleted is for an instance removed by a reload.
func noReloadWarnings(cfg *config.Config) []string {
	var w []string
	check := func(pos config.Pos, owner string, n config.Notify) {
		if n.Deleted != nil {
			w = append(w, fmt.Sprintf("%s: %s: notify_deleted has no effect: xvrrp does not reload, so no instance is deleted while it runs", pos, owner))
		}
	}
	for _, in := range cfg.Instances {
		check(in.Pos, in.Name, in.Notify)
	}
	for _, g := range cfg.SyncGroups {
		check(g.Pos, g.Name, g.Notify)
	}
	return w
}
