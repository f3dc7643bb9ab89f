package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/xvrrp/xvrrp/bench"
	"golang.org/x/sys/unix"
)

var benchCommand = &cli.Command{
	Name:      "bench",
	Usage:     "measure failover latency in a namespace lab, side by side with keepalived",
	ArgsUsage: " ",
	Description: `Builds two VRRP nodes (and --backups more) and a client in network namespaces,
and for each failure mode and advert interval runs --trials trials with xvrrp,
then the same lab and configuration with keepalived when it is installed.
Measures, from a packet capture on the client and 1 ms client probes:

  detect   the old master's last advert that held the backup back → the new
           master's first advert (Master_Down_Interval is the floor when a
           master dies silently)
  garp     Master_Down expiry → the new master's first gratuitous ARP
           (negative when a priority-0 advert or a lower priority cut it short)
  answer   that gratuitous ARP → the first probe the new master answered
  outage   the longest gap between answered probes the client saw
  dual     how long two nodes answered probes sent to each node's MAC for the VIP

Then what a backup costs with --cost-instances at --cost-interval, idle (and
what its master costs meanwhile) and under a bounded flood of forged adverts,
--cost-runs times alternating the implementations, with medians and the cost
goals against keepalived. Needs root; removes the lab when done
or interrupted.

With --liveness, every xvrrp measurement is repeated with fast_liveness on
both nodes (implementation xvrrp+liveness), and the idle CPU of the master's
and the backup's daemons is measured with and without it at each interval.

Modes: linkcut, sigkill, sigstop (frozen, then resumed), graceful (SIGTERM),
health (a tracked file says the service failed), failback (the old master
returns and preempts); and starve, which fails nothing: a master and a backup of
--starve-instances are kept busy (--starve-load) for --starve-time, and it counts
takeovers and the gaps between the master's adverts as the backup received them.`,
	Flags: []cli.Flag{
		&cli.IntFlag{Name: "trials", Value: 2, Usage: "trials per mode and interval"},
		&cli.StringFlag{Name: "intervals", Value: "1s/v2,100ms,20ms,10ms", Usage: "advert intervals: DURATION[/v2|/v3] (v3 unless /v2)"},
		&cli.StringFlag{Name: "modes", Value: "graceful,health,failback,sigkill,sigstop", Usage: "failure modes, or all: " + strings.Join(bench.Modes, ",")},
		&cli.StringFlag{Name: "impls", Value: "xvrrp,keepalived", Usage: "implementations (keepalived is skipped when not installed)"},
		&cli.IntFlag{Name: "backups", Value: 0, Usage: "backups besides the first"},
		&cli.StringFlag{Name: "vmac", Value: "off", Usage: "nodes with use_vmac: off, on, or both (each measured, labelled IMPL+vmac)"},
		&cli.DurationFlag{Name: "hold", Value: 300 * time.Millisecond, Usage: "how long a failure lasts after the new master answers"},
		&cli.IntFlag{Name: "cost-instances", Value: 20, Usage: "instances on the backup whose cost is measured (0: skip)"},
		&cli.StringFlag{Name: "cost-interval", Value: "20ms", Usage: "their advert interval"},
		&cli.DurationFlag{Name: "cost-time", Value: 2 * time.Second, Usage: "how long the idle backup (and its master) is measured"},
		&cli.IntFlag{Name: "cost-runs", Value: 1, Usage: "cost runs, alternating the implementations; medians are reported"},
		&cli.IntFlag{Name: "flood-rate", Value: 20000, Usage: "forged adverts per second"},
		&cli.DurationFlag{Name: "flood-time", Value: time.Second, Usage: "how long the flood lasts"},
		&cli.IntFlag{Name: "starve-instances", Value: 50, Usage: "starve mode: instances on the master and the backup"},
		&cli.StringFlag{Name: "starve-interval", Value: "10ms", Usage: "starve mode: their advert interval"},
		&cli.DurationFlag{Name: "starve-time", Value: 8 * time.Second, Usage: "starve mode: how long the hosts are kept busy"},
		&cli.StringFlag{Name: "starve-load", Value: "cpu,memory", Usage: "starve mode: cpu (a nice -20 loop per core), memory (all but 1 GiB of the available memory reserved as huge pages, 512 MiB touched: the kernel reclaims)"},
		&cli.DurationFlag{Name: "liveness", Usage: "also measure xvrrp with fast_liveness probing every `INTERVAL` (e.g. 1ms), as implementation xvrrp+liveness"},
		&cli.IntFlag{Name: "liveness-multiplier", Value: 3, Usage: "fast_liveness multiplier for --liveness"},
		&cli.DurationFlag{Name: "liveness-cost-time", Value: 3 * time.Second, Usage: "with --liveness, how long the idle master and backup are measured, with and without it, at each interval (0: skip)"},
		&cli.StringFlag{Name: "json", Usage: "write the report as JSON to `FILE` (- for standard output)"},
		&cli.StringFlag{Name: "csv", Usage: "write every trial's metrics as CSV to `FILE` (- for standard output)"},
		&cli.StringFlag{Name: "svg", Usage: "draw the outage CDF per implementation and interval into `FILE`"},
	},
	Action: func(c *cli.Context) error {
		if c.Args().Present() {
			return usageError(c, "unexpected argument %q", c.Args().First())
		}
		opt, err := benchOptions(c)
		if err != nil {
			return usageError(c, "%v", err)
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		opt.XvrrpBin = self
		opt.Progress = progressBar(c.App.ErrWriter)
		report, err := bench.Run(c.Context, opt)
		if report == nil {
			return &exitError{code: exitFailure, err: err}
		}
		report.Command = "xvrrp " + strings.Join(os.Args[1:], " ")
		if werr := writeReport(c, report); werr != nil && err == nil {
			err = werr
		}
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		return nil
	},
}

func benchOptions(c *cli.Context) (bench.Options, error) {
	opt := bench.Options{Trials: c.Int("trials"), Backups: c.Int("backups"), Hold: c.Duration("hold")}
	if opt.Trials < 1 || opt.Trials > 1000 {
		return opt, fmt.Errorf("--trials %d: want 1 to 1000", opt.Trials)
	}
	if opt.Backups < 0 || opt.Backups > 5 {
		return opt, fmt.Errorf("--backups %d: want 0 to 5", opt.Backups)
	}
	if opt.Hold < 0 || opt.Hold > time.Minute {
		return opt, fmt.Errorf("--hold %v: want 0 to 1m", opt.Hold)
	}
	for _, s := range list(c.String("intervals")) {
		iv, err := bench.ParseInterval(s)
		if err != nil {
			return opt, fmt.Errorf("--intervals: %w", err)
		}
		opt.Intervals = append(opt.Intervals, iv)
	}
	modes := list(c.String("modes"))
	if slices.Equal(modes, []string{"all"}) {
		modes = append(slices.Clone(bench.Modes), bench.ModeStarve)
	}
	starve := false
	for _, m := range modes {
		switch {
		case m == bench.ModeStarve:
			starve = true
		case slices.Contains(bench.Modes, m):
			opt.Modes = append(opt.Modes, m)
		default:
			return opt, fmt.Errorf("--modes: %q is not one of %s, %s", m, strings.Join(bench.Modes, ", "), bench.ModeStarve)
		}
	}
	switch c.String("vmac") {
	case "off":
		opt.VMAC = []bool{false}
	case "on":
		opt.VMAC = []bool{true}
	case "both":
		opt.VMAC = []bool{false, true}
	default:
		return opt, fmt.Errorf("--vmac %q: want off, on or both", c.String("vmac"))
	}
	opt.Impls = list(c.String("impls"))
	for _, i := range opt.Impls {
		if i != bench.Xvrrp && i != bench.Keepalived {
			return opt, fmt.Errorf("--impls: %q is not xvrrp or keepalived", i)
		}
	}
	if d := c.Duration("liveness"); d != 0 {
		if d < 100*time.Microsecond || d > 10*time.Second {
			return opt, fmt.Errorf("--liveness %v: want 100µs to 10s", d)
		}
		if !slices.Contains(opt.Impls, bench.Xvrrp) {
			return opt, fmt.Errorf("--liveness needs xvrrp among --impls")
		}
		opt.Liveness = bench.Liveness{Interval: d, Multiplier: c.Int("liveness-multiplier")}
		if opt.Liveness.Multiplier < 1 || opt.Liveness.Multiplier > 255 {
			return opt, fmt.Errorf("--liveness-multiplier %d: want 1 to 255", opt.Liveness.Multiplier)
		}
		opt.LivenessCost = c.Duration("liveness-cost-time")
		if opt.LivenessCost < 0 || opt.LivenessCost > time.Minute {
			return opt, fmt.Errorf("--liveness-cost-time %v: want 0 to 1m", opt.LivenessCost)
		}
	}
	if len(opt.Intervals) == 0 || len(modes) == 0 || len(opt.Impls) == 0 {
		return opt, fmt.Errorf("--intervals, --modes and --impls each need at least one")
	}
	if starve {
		siv, err := bench.ParseInterval(c.String("starve-interval"))
		if err != nil {
			return opt, fmt.Errorf("--starve-interval: %w", err)
		}
		opt.Starve = bench.StarveOptions{Instances: c.Int("starve-instances"), Interval: siv, Duration: c.Duration("starve-time"),
			Variants: list(c.String("starve-load"))}
		for _, v := range opt.Starve.Variants {
			if v != bench.StarveCPU && v != bench.StarveMemory {
				return opt, fmt.Errorf("--starve-load: %q is not cpu or memory", v)
			}
		}
		switch {
		case opt.Starve.Instances < 1 || opt.Starve.Instances > 250:
			return opt, fmt.Errorf("--starve-instances %d: want 1 to 250", opt.Starve.Instances)
		case opt.Starve.Duration <= 0 || opt.Starve.Duration > time.Minute:
			return opt, fmt.Errorf("--starve-time %v: want up to 1m", opt.Starve.Duration)
		}
	}
	iv, err := bench.ParseInterval(c.String("cost-interval"))
	if err != nil {
		return opt, fmt.Errorf("--cost-interval: %w", err)
	}
	opt.Cost = bench.CostOptions{Instances: c.Int("cost-instances"), Interval: iv, Duration: c.Duration("cost-time"),
		FloodRate: c.Int("flood-rate"), FloodDuration: c.Duration("flood-time"), Runs: c.Int("cost-runs")}
	switch {
	case opt.Cost.Instances < 0 || opt.Cost.Instances > bench.MaxCostInstances:
		return opt, fmt.Errorf("--cost-instances %d: want 0 to %d", opt.Cost.Instances, bench.MaxCostInstances)
	case opt.Cost.Runs < 1 || opt.Cost.Runs > 20:
		return opt, fmt.Errorf("--cost-runs %d: want 1 to 20", opt.Cost.Runs)
	case opt.Cost.FloodRate < 0 || opt.Cost.FloodRate > 1_000_000:
		return opt, fmt.Errorf("--flood-rate %d: want 0 to 1000000", opt.Cost.FloodRate)
	case opt.Cost.Duration < 0 || opt.Cost.Duration > 10*time.Minute || opt.Cost.FloodDuration < 0 || opt.Cost.FloodDuration > time.Minute:
		return opt, fmt.Errorf("--cost-time wants 0 to 10m, --flood-time 0 to 1m")
	}
	return opt, nil
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// progressBar draws a bar on w when it is a terminal, and prints a line per
// step otherwise.
func progressBar(w io.Writer) func(done, total int, what string) {
	tty := false
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		tty = err == nil
	}
	start := time.Now()
	return func(done, total int, what string) {
		elapsed := time.Since(start).Round(time.Second)
		if !tty {
			fmt.Fprintf(w, "[%d/%d %v] %s\n", done, total, elapsed, what)
			return
		}
		const width = 30
		n := 0
		if total > 0 {
			n = width * done / total
		}
		fmt.Fprintf(w, "\r\033[K[%s%s] %d/%d %v %s", strings.Repeat("#", n), strings.Repeat(".", width-n), done, total, elapsed, what)
		if what == "done" {
			fmt.Fprintln(w)
		}
	}
}

func writeReport(c *cli.Context, r *bench.Report) error {
	out := c.App.Writer
	if err := r.WriteTable(out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s; %s in %v\n", r.Machine, r.Command, r.Duration.Round(time.Second))
	for _, f := range []struct {
		flag  string
		write func(io.Writer) error
	}{{"json", r.WriteJSON}, {"csv", r.WriteCSV}, {"svg", r.WriteSVG}} {
		path := c.String(f.flag)
		if path == "" {
			continue
		}
		if path == "-" && f.flag != "svg" {
			if err := f.write(out); err != nil {
				return err
			}
			continue
		}
		file, err := os.Create(path)
		if err != nil {
			return err
		}
		err = f.write(file)
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("--%s %s: %w", f.flag, path, err)
		}
	}
	return nil
}
