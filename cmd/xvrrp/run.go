package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/urfave/cli/v2"
	"github.com/xvrrp/xvrrp/health"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp/agent"
	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/sys/unix"
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
An instance with use_vmac creates its VMAC (a private macvlan, vrrp.VRID by
default, MAC 00:00:5e:00:01:VRID or 00:00:5e:00:02:VRID) at start and removes it
at stop; its VIPs live there and its adverts leave from it unless vmac_xmit_base.
Needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).`,
	Flags: append(append([]cli.Flag{}, configFlags...),
		&cli.StringFlag{Name: "pin-dir", Value: loader.DefaultPinDir, Usage: "bpffs directory for the pinned maps and links; one per daemon"},
		&cli.StringFlag{Name: "state-dir", Value: defaultStateDir, Usage: "directory for the pid file; one per daemon"},
		&cli.BoolFlag{Name: "keep-datapath", Usage: "on stop, leave the datapath, VIPs and leases for a restart"},
		&cli.StringFlag{Name: "tc", Value: "auto", Usage: "how to attach the fence: auto, tcx or clsact"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
		&cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9650); off when empty"},
		// For tests that overflow the link-update socket.
		&cli.IntFlag{Name: "netlink-rcvbuf", Hidden: true},
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
		var handler slog.Handler
		switch c.String("log-format") {
		case "text":
			handler = slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level})
		case "json":
			handler = slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level})
		default:
			return usageError(c, "--log-format %q: want text or json", c.String("log-format"))
		}
		log := slog.New(handler)

		setReload, stopHangups := onHangup(log)
		defer stopHangups()

		file := c.String("use-file")
		cfg, err := loadConfig(c.Context, file, config.Options{ConfigID: c.String("config-id")})
		if errors.Is(err, context.Canceled) {
			return &exitError{code: exitFailure, err: fmt.Errorf("stopped while reading %s", file)}
		}
		for _, w := range cfg.Warnings {
			log.Warn(w.String())
		}
		if err != nil {
			return configError(c.App.ErrWriter, file, err)
		}

		stateDir := c.String("state-dir")
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		unlock, err := lockStateDir(stateDir)
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		defer unlock()
		ms, err := listenMetrics(c.String("metrics-listen"))
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		defer ms.close()

		runHookScript(c.Context, log, cfg, "startup_script", cfg.Global.StartupScript, cfg.Global.StartupScriptTimeout)
		a, err := agent.New(cfg, agent.Options{
			PinDir:       c.String("pin-dir"),
			Logger:       log,
			KeepDatapath: c.Bool("keep-datapath"),
			TC:           tc,
			LinkRcvBuf:   c.Int("netlink-rcvbuf"),
			StatusSocket: filepath.Join(stateDir, "xvrrp.sock"),
			SysctlFile:   filepath.Join(stateDir, "sysctls.json"),
			ConfigFile:   file,
			Tuning:       agent.TuningOf(cfg.Global),
			Notify:       sdNotify(log),
			Watchdog:     sdWatchdog(),
		})
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		ms.serve(a, log)
		log.Info("xvrrp running", "config", file, "instances", len(cfg.Instances), "pin_dir", c.String("pin-dir"))
		setReload(func() { reload(log, a, file, config.Options{ConfigID: c.String("config-id")}) })
		err = a.Run(c.Context)
		// Once the instances have stopped, as keepalived runs it after its
		// children: the daemon's context is done, so it gets its own.
		runHookScript(context.Background(), log, cfg, "shutdown_script", cfg.Global.ShutdownScript, cfg.Global.ShutdownScriptTimeout)
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		log.Info("xvrrp stopped")
		return nil
	},
}

// ErrStateDirInUse is returned when another daemon holds the state directory.
var ErrStateDirInUse = errors.New("state directory in use by another xvrrp")

// lockStateDir takes the state directory for this daemon's life: an exclusive
// lock on its pid file, which then holds our pid. A second daemon on the same
// directory is refused, naming the holder, before it changes anything. The
// returned function removes the pid file and releases the lock.
func lockStateDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "xvrrp.pid")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open pid file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by pid %s; one daemon per state directory (give this one its own --state-dir and --pin-dir)",
				ErrStateDirInUse, dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock pid file %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write pid file %s: %w", path, err)
	}
	return func() {
		os.Remove(path) // while still holding the lock
		f.Close()
	}, nil
}

// loadConfig reads the configuration, or gives up with ctx.Err() when ctx ends
// first: a read that blocks (an include of a FIFO) must not keep SIGTERM from
// stopping the daemon.
func loadConfig(ctx context.Context, file string, opt config.Options) (*config.Config, error) {
	type result struct {
		cfg *config.Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := config.Load(file, opt)
		done <- result{cfg, err}
	}()
	select {
	case r := <-done:
		return r.cfg, r.err
	case <-ctx.Done():
		return &config.Config{}, ctx.Err()
	}
}

// onHangup answers SIGHUP, keepalived's reload signal (what `systemctl
// reload` sends): with the function setReload gives once the daemon runs;
// before that and while it stops, SIGHUP is logged and changes nothing. It
// never kills the daemon.
func onHangup(log *slog.Logger) (setReload func(func()), stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var fn atomic.Pointer[func()]
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if f := fn.Load(); f != nil {
					(*f)()
				} else {
					log.Warn("SIGHUP before the daemon runs: nothing reloaded")
				}
			case <-done:
				return
			}
		}
	}()
	return func(f func()) { fn.Store(&f) }, func() {
		signal.Ignore(syscall.SIGHUP) // still harmless while stopping
		close(done)
	}
}

// reload reads the configuration again and hands it to the agent. An invalid
// one changes nothing: every error is logged with file:line and the running
// configuration carries on.
func reload(log *slog.Logger, a *agent.Agent, file string, opt config.Options) {
	log.Info("SIGHUP: reloading the configuration", "config", file)
	cfg, err := config.Load(file, opt)
	for _, w := range cfg.Warnings {
		log.Warn(w.String())
	}
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, d := range cerr.Diags {
				log.Error(d.String())
			}
		} else {
			log.Error(err.Error())
		}
		log.Error("configuration not reloaded: the running one carries on", "config", file)
		return
	}
	if err := a.Reload(cfg); err != nil {
		log.Error("reload", "error", err)
	}
}

// sdNotify tells systemd (Type=notify) of the daemon's life; without a
// NOTIFY_SOCKET it does nothing.
func sdNotify(log *slog.Logger) func(string) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	return func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Warn("sd_notify", "state", state, "error", err)
		}
	}
}

// sdWatchdog is how often to tell systemd the daemon is alive: half its
// WatchdogSec, or 0 when it watches nothing.
func sdWatchdog() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// runHookScript runs global_defs' startup_script or shutdown_script, as
// keepalived does: once, as its user under the script settings, killed after
// its timeout; whatever becomes of it is logged and the daemon goes on.
func runHookScript(ctx context.Context, log *slog.Logger, cfg *config.Config, what string, c *config.Command, secs int) {
	if c == nil {
		return
	}
	timeout := config.ScriptTimeout(secs)
	p, err := health.NewProgram(what, c, health.Options(cfg), timeout)
	if err != nil {
		log.Error(fmt.Sprintf("%s not run: %v", what, err))
		return
	}
	ok, err := p.Run(ctx)
	switch {
	case errors.Is(err, health.ErrTimeout):
		log.Warn(fmt.Sprintf("%s %s timed out after %v: killed", what, c.Line, timeout))
	case err != nil:
		log.Error(fmt.Sprintf("%s %s: %v", what, c.Line, err))
	case !ok:
		log.Warn(fmt.Sprintf("%s %s failed", what, c.Line))
	default:
		log.Info(fmt.Sprintf("%s %s done", what, c.Line))
	}
}
