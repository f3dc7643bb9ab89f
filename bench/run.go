package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// Implementations.
const (
	Xvrrp      = "xvrrp"
	Keepalived = "keepalived"
	// XvrrpLiveness is xvrrp with fast_liveness on every node
	// (Options.Liveness), measured beside the other two.
	XvrrpLiveness = "xvrrp+liveness"
)

// Failure modes, in report order.
const (
	ModeLinkCut  = "linkcut"  // the master's link goes down
	ModeSIGKILL  = "sigkill"  // the master's daemon is killed
	ModeSIGSTOP  = "sigstop"  // the master's daemon is frozen, then resumed
	ModeGraceful = "graceful" // the master's daemon is stopped (SIGTERM)
	ModeHealth   = "health"   // the master's health check fails (track_file)
	ModeFailback = "failback" // the old master returns and preempts
)

// Modes is every failure mode, in report order.
var Modes = []string{ModeLinkCut, ModeSIGKILL, ModeSIGSTOP, ModeGraceful, ModeHealth, ModeFailback}

// Interval is an advert interval and the VRRP version that carries it.
type Interval struct {
	Version int
	Every   time.Duration
}

func (iv Interval) String() string {
	return fmt.Sprintf("%v/v%d", iv.Every, iv.Version)
}

// ParseInterval reads "1s/v2", "100ms" (VRRPv3 unless it says /v2) or "10ms/v3".
func ParseInterval(s string) (Interval, error) {
	d, ver, _ := strings.Cut(s, "/")
	every, err := time.ParseDuration(d)
	if err != nil {
		return Interval{}, fmt.Errorf("interval %q: %w", s, err)
	}
	iv := Interval{Version: 3, Every: every}
	switch ver {
	case "", "v3":
	case "v2":
		iv.Version = 2
	default:
		return Interval{}, fmt.Errorf("interval %q: version %q is not v2 or v3", s, ver)
	}
	switch {
	case iv.Version == 2 && (every < time.Second || every > 255*time.Second || every%time.Second != 0):
		return Interval{}, fmt.Errorf("interval %q: VRRPv2 counts whole seconds, 1s to 255s", s)
	case iv.Version == 3 && (every < vrrp.MinIntervalV3 || every > 40*time.Second || every%vrrp.IntervalUnitV3 != 0):
		return Interval{}, fmt.Errorf("interval %q: VRRPv3 counts 10ms steps, 10ms to 40.95s", s)
	}
	return iv, nil
}

// DefaultIntervals are those `xvrrp bench` measures unless told otherwise.
var DefaultIntervals = []Interval{{2, time.Second}, {3, 100 * time.Millisecond}, {3, 20 * time.Millisecond}, {3, 10 * time.Millisecond}}

// Options says what to measure.
type Options struct {
	XvrrpBin  string   // the xvrrp binary the nodes run
	Impls     []string // Xvrrp, Keepalived
	Modes     []string
	Intervals []Interval
	Trials    int
	Backups   int // backups besides the first (h3, h4, …)
	Cost      CostOptions
	Starve    StarveOptions
	// Progress, if set, is told of each step: steps done, steps in all, what.
	Progress func(done, total int, what string)
	// Hold is how long a failure lasts once the new master answers, before
	// the old master is brought back; what the old master does meanwhile
	// (answer for the VIP or not) is the dual-answer time.
	Hold time.Duration
	// VMAC lists the variants to measure: false, without use_vmac; true,
	// every node with use_vmac (none: without only). Results with a VMAC
	// are labelled IMPL+vmac.
	VMAC []bool
	// Liveness, when its interval is set, adds XvrrpLiveness to the
	// implementations measured, and LivenessCost how long its probes' CPU
	// cost is measured on the master and the backup (0: not).
	Liveness     Liveness
	LivenessCost time.Duration
}

// Liveness is the fast_liveness block XvrrpLiveness runs.
type Liveness struct {
	Interval   time.Duration
	Multiplier int
}

func (l Liveness) block() string {
	return fmt.Sprintf("    fast_liveness {\n        interval %s\n        multiplier %d\n    }\n", l.Interval, l.Multiplier)
}

// ProbeCost is what a pair of xvrrp daemons cost idle, with and without
// fast_liveness: the CPU of the master's and the backup's daemon processes.
// The master's answers run in its kernel's XDP (softirq), which no process
// is charged for: loader's BenchmarkLivenessAnswer measures them.
type ProbeCost struct {
	Impl     string `json:"impl"`
	Interval string `json:"interval"`
	Master   Usage  `json:"master"`
	Backup   Usage  `json:"backup"`
	// Probes the backup's kernel stamped and replies it took over the
	// window (xvrrp+liveness).
	Probes  uint64  `json:"probes"`
	Replies uint64  `json:"replies"`
	Counted float64 `json:"counted_seconds"` // between the two reads of the counts
}

// VMACSuffix marks the results of nodes running with use_vmac.
const VMACSuffix = "+vmac"

// vmac51 is the VMAC's MAC (VRID 51, IPv4): the sender of every gratuitous
// ARP in a VMAC cell, whichever node sends it.
var vmac51 = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 51}

// Result is one trial's metrics.
type Result struct {
	Impl     string                   `json:"impl"`
	Mode     string                   `json:"mode"`
	Interval string                   `json:"interval"`
	Trial    int                      `json:"trial"`
	Metrics  map[string]time.Duration `json:"metrics_ns"`
	// MasterDown is the new master's Master_Down_Interval: the floor of
	// detection when a master dies silently.
	MasterDown time.Duration `json:"master_down_ns"`
}

// Report is everything a run measured.
type Report struct {
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"duration_ns"`
	Machine  string         `json:"machine"`
	Command  string         `json:"command,omitempty"`
	Trials   int            `json:"trials"`
	Hold     time.Duration  `json:"hold_ns"`
	Impls    []string       `json:"impls"`
	Skipped  []string       `json:"skipped,omitempty"` // e.g. keepalived, not installed
	Results  []Result       `json:"results"`
	Cost     []CostResult   `json:"cost,omitempty"`
	Probe    []ProbeCost    `json:"probe_cost,omitempty"`
	Starve   []StarveResult `json:"starve,omitempty"`
}

// Run measures what opt asks for. It builds a lab per implementation and
// interval, and removes it before it returns, also when ctx is cancelled.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("bench: needs root to build network namespaces")
	}
	if opt.Trials <= 0 {
		opt.Trials = 1
	}
	if opt.Hold <= 0 {
		opt.Hold = 300 * time.Millisecond
	}
	r := &Report{Started: time.Now(), Machine: machine(), Trials: opt.Trials, Hold: opt.Hold}
	for _, impl := range opt.Impls {
		if impl == Keepalived {
			if _, err := exec.LookPath("keepalived"); err != nil {
				r.Skipped = append(r.Skipped, "keepalived: not installed")
				continue
			}
		}
		r.Impls = append(r.Impls, impl)
		if impl == Xvrrp && opt.Liveness.Interval > 0 {
			r.Impls = append(r.Impls, XvrrpLiveness)
		}
	}
	if len(opt.VMAC) == 0 {
		opt.VMAC = []bool{false}
	}
	total := len(r.Impls) * len(opt.VMAC) * len(opt.Intervals) * len(opt.Modes) * opt.Trials
	if opt.LivenessCost > 0 {
		for _, impl := range r.Impls {
			if impl != Keepalived {
				total += len(opt.VMAC) * len(opt.Intervals)
			}
		}
	}
	if opt.Cost.enabled() {
		total += len(r.Impls) * 2 * opt.Cost.runs()
	}
	costImpls := slices.DeleteFunc(slices.Clone(r.Impls), func(s string) bool { return s == XvrrpLiveness })
	if opt.Starve.enabled() {
		total += len(r.Impls) * len(opt.Starve.Variants)
	}
	step := 0
	progress := func(what string) {
		if opt.Progress != nil {
			opt.Progress(step, total, what)
		}
	}
	for _, impl := range r.Impls {
		for _, vm := range opt.VMAC {
			for _, iv := range opt.Intervals {
				if len(opt.Modes) == 0 {
					break
				}
				res, pc, err := runCell(ctx, opt, impl, vm, iv, func(what string) {
					progress(what)
					step++
				})
				r.Results = append(r.Results, res...)
				r.Probe = append(r.Probe, pc...)
				if err != nil {
					return r, fmt.Errorf("%s %v: %w", label(impl, vm), iv, err)
				}
			}
		}
	}
	if opt.Cost.enabled() {
		for run := 1; run <= opt.Cost.runs(); run++ {
			for _, impl := range costImpls {
				c, err := runCost(ctx, opt, impl, run, func(what string) {
					progress(what)
					step++
				})
				if err != nil {
					return r, fmt.Errorf("%s cost: %w", impl, err)
				}
				r.Cost = append(r.Cost, c)
			}
		}
	}
	if opt.Starve.enabled() {
		for _, impl := range costImpls {
			s, err := runStarve(ctx, opt, impl, func(what string) {
				progress(what)
				step++
			})
			r.Starve = append(r.Starve, s...)
			if err != nil {
				return r, fmt.Errorf("%s starve: %w", impl, err)
			}
		}
	}
	progress("done")
	r.Duration = time.Since(r.Started)
	return r, nil
}

func machine() string {
	var u unix.Utsname
	unix.Uname(&u)
	return fmt.Sprintf("Linux %s, %d CPUs", unix.ByteSliceToString(u.Release[:]), runtime.NumCPU())
}

var vip = netip.MustParseAddr("192.0.2.1")

// nodeConfig is the keepalived.conf both implementations run: one VRRP
// instance for the VIP, tracking a file that the health mode writes.
func nodeConfig(prio int, iv Interval, healthFile string, vmac bool, extra string) string {
	// The first node starts as master rather than waiting a
	// Master_Down_Interval (3.6 s at 1 s adverts), at the start of each lab
	// and when a daemon is started again after a trial.
	state := "BACKUP"
	if prio == prioOf(0) {
		state = "MASTER"
	}
	useVMAC := ""
	if vmac {
		useVMAC = "    use_vmac"
	}
	return fmt.Sprintf(`global_defs {
    router_id bench-%[1]d
}
vrrp_track_file health {
    file %[4]s
}
vrrp_instance VI_1 {
    state %[5]s
    interface eth0
    virtual_router_id 51
    priority %[1]d
    version %[2]d
    advert_int %[3]g
    track_file {
        health weight -100
    }
%[6]s
%[7]s    virtual_ipaddress {
        192.0.2.1/24
    }
}
`, prio, iv.Version, iv.Every.Seconds(), healthFile, state, useVMAC, extra)
}

// daemon is xvrrp or keepalived running on a lab host.
type daemon struct {
	impl string
	host *lab.Host
	bin  string
	conf string
	proc *lab.Proc
	dir  string // keepalived's own directory (its pid files)
}

func (d *daemon) start() error {
	switch d.impl {
	case Xvrrp, XvrrpLiveness:
		x, err := d.host.StartXvrrp(d.bin, d.conf)
		if err != nil {
			return err
		}
		d.proc = x.Proc
	case Keepalived:
		k, err := d.host.StartKeepalived(d.conf)
		if err != nil {
			return err
		}
		d.proc, d.dir = k.Proc, filepath.Dir(k.Config)
	}
	return nil
}

// pids are the daemon's processes that do VRRP: xvrrp's one, keepalived's VRRP
// child first and then its parent.
func (d *daemon) pids() []int {
	pids := []int{d.proc.Pid()}
	if d.impl == Keepalived {
		if b, err := os.ReadFile(filepath.Join(d.dir, "vrrp.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				pids = append([]int{pid}, pids...)
			}
		}
	}
	return pids
}

// signal sends sig to every process of the daemon (for SIGTERM, to the one an
// operator would: the main process).
func (d *daemon) signal(sig syscall.Signal) {
	if sig == syscall.SIGTERM {
		d.proc.Signal(sig)
		return
	}
	for _, pid := range d.pids() {
		syscall.Kill(pid, sig)
	}
}

// wait waits for the daemon to exit.
func (d *daemon) wait(timeout time.Duration) error {
	select {
	case <-d.proc.Done():
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s on %s did not exit within %v", d.impl, d.host.Name, timeout)
	}
}

func (d *daemon) waitLog(s string, timeout time.Duration) error { return d.proc.WaitLog(s, timeout) }

// cell is one implementation at one interval: a lab, its daemons, the client's
// capture and probes.
type cell struct {
	ctx      context.Context
	opt      Options
	impl     string
	iv       Interval
	l        *lab.Lab
	daemons  []*daemon
	health   []string // each host's health file
	probe    *lab.Prober
	directed *lab.DirectedProber
	tick     time.Duration
	// probeCosts are the idle costs measured before the trials.
	probeCosts []ProbeCost
}

const probeTick = time.Millisecond

func prioOf(i int) int {
	if i == 0 {
		return 150
	}
	return 100 - 10*(i-1)
}

// label is an implementation's name in the results: IMPL, or IMPL+vmac.
func label(impl string, vmac bool) string {
	if vmac {
		return impl + VMACSuffix
	}
	return impl
}

func runCell(ctx context.Context, opt Options, impl string, vm bool, iv Interval, step func(string)) (_ []Result, _ []ProbeCost, err error) {
	res, c, err := runCellIn(ctx, opt, impl, vm, iv, step)
	if c != nil {
		return res, c.probeCosts, err
	}
	return res, nil, err
}

func runCellIn(ctx context.Context, opt Options, impl string, vm bool, iv Interval, step func(string)) (_ []Result, _ *cell, err error) {
	l, err := lab.New(ctx, lab.Options{Hosts: 2 + opt.Backups, Client: true})
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	c := &cell{ctx: ctx, opt: opt, impl: impl, iv: iv, l: l, tick: probeTick}
	defer func() {
		if err != nil {
			for _, d := range c.daemons {
				err = fmt.Errorf("%w\n--- %s on %s:\n%s", err, d.impl, d.host.Name, lastLines(d.proc.Output(), 30))
			}
		}
	}()
	byIP := map[netip.Addr]string{}
	byMAC := map[string]string{}
	for i, h := range l.Hosts {
		byIP[h.IPv4.Addr()] = h.Name
		byMAC[h.MAC.String()] = h.Name
		hf := filepath.Join(l.Dir, "health-"+h.Name)
		if err := os.WriteFile(hf, []byte("0\n"), 0o644); err != nil {
			return nil, c, err
		}
		c.health = append(c.health, hf)
		if err := h.StartResponder(); err != nil {
			return nil, c, err
		}
		extra := ""
		if impl == XvrrpLiveness {
			extra = opt.Liveness.block()
		}
		c.daemons = append(c.daemons, &daemon{impl: impl, host: h, bin: opt.XvrrpBin, conf: nodeConfig(prioOf(i), iv, hf, vm, extra)})
	}
	capture, err := l.Client.Capture("arp or ip proto 112")
	if err != nil {
		return nil, c, err
	}
	defer func() {
		if capture != nil {
			capture.Stop()
		}
	}()
	// The first node becomes master, then the backups join.
	if err := c.daemons[0].start(); err != nil {
		return nil, c, err
	}
	if err := c.daemons[0].waitLog("(VI_1) Entering MASTER STATE", c.longWait()); err != nil {
		return nil, c, err
	}
	for _, d := range c.daemons[1:] {
		if err := d.start(); err != nil {
			return nil, c, err
		}
		if err := d.waitLog("(VI_1) Entering BACKUP STATE", c.longWait()); err != nil {
			return nil, c, err
		}
	}
	// Bounded: at most ten minutes of probes.
	const limit = 600_000
	if c.probe, err = l.Client.StartProber(vip, probeTick, limit); err != nil {
		return nil, c, err
	}
	defer c.probe.Stop()
	if c.directed, err = l.Client.StartDirectedProber(vip, l.Hosts, probeTick, limit); err != nil {
		return nil, c, err
	}
	defer c.directed.Stop()
	if err := c.answeredBy("h1"); err != nil {
		return nil, c, err
	}

	if opt.LivenessCost > 0 && (impl == Xvrrp || impl == XvrrpLiveness) {
		step(fmt.Sprintf("%s %v: idle CPU of master and backup", impl, iv))
		pc, err := c.probeCost()
		if err != nil {
			return nil, c, err
		}
		c.probeCosts = append(c.probeCosts, pc)
	}

	var trials []Trial
	var names []string
	for _, mode := range opt.Modes {
		for n := range opt.Trials {
			step(fmt.Sprintf("%s %s %v trial %d/%d", label(impl, vm), mode, iv, n+1, opt.Trials))
			t, err := c.trial(mode)
			if err != nil {
				return nil, c, fmt.Errorf("%s trial %d: %w", mode, n+1, err)
			}
			trials = append(trials, t)
			names = append(names, mode)
		}
	}
	c.probe.Stop()
	c.directed.Stop()
	frames, err := capture.Stop()
	capture = nil
	if err != nil {
		return nil, c, err
	}
	if vm {
		// Every node announces the VIP with the VMAC's MAC: within a
		// trial, the new master's are the ones there are.
		byMAC[vmac51.String()] = AnyNew
	}
	adverts, garps := DecodeFrames(frames, vip, byIP, byMAC)
	probes, rounds := c.probe.Answers(), c.directed.Rounds()
	var results []Result
	for i := range trials {
		t := &trials[i]
		t.Adverts, t.ARPs, t.Probes, t.Directed, t.Tick = adverts, garps, probes, rounds, probeTick
		results = append(results, Result{
			Impl: label(impl, vm), Mode: names[i], Interval: iv.String(), Trial: i%opt.Trials + 1,
			Metrics: t.Measure(), MasterDown: t.MasterDown,
		})
	}
	return results, c, nil
}

// longWait bounds every wait in a cell: several Master_Down_Intervals and the
// time a daemon takes to start.
func (c *cell) longWait() time.Duration {
	return 10*c.masterDown(100) + 10*time.Second
}

func (c *cell) masterDown(prio int) time.Duration {
	return vrrp.MasterDownInterval(uint8(c.iv.Version), uint8(prio), c.iv.Every, 3)
}

// answeredBy waits until the client's probes are answered by host.
func (c *cell) answeredBy(host string) error {
	deadline := time.Now().Add(c.longWait())
	for c.probe.Last() != host {
		if time.Now().After(deadline) {
			return fmt.Errorf("the VIP was not answered by %s within %v (last: %q)", host, c.longWait(), c.probe.Last())
		}
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func (c *cell) sleep(d time.Duration) error {
	select {
	case <-c.ctx.Done():
		return c.ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// trial breaks the master (h1) in the given way, waits for h2 to answer, holds
// the failure for opt.Hold, and brings h1 back until it answers again. A
// failback trial measures the return instead of the failure.
func (c *cell) trial(mode string) (Trial, error) {
	h1, d1 := c.l.Hosts[0], c.daemons[0]
	// Settled: a few adverts since the last change.
	if err := c.sleep(max(c.iv.Every, 100*time.Millisecond)); err != nil {
		return Trial{}, err
	}
	t := Trial{Old: "h1", New: "h2", MasterDown: c.masterDown(prioOf(1)), Start: time.Now()}
	var back func() error // brings h1 back
	switch mode {
	case ModeLinkCut, ModeFailback:
		if err := h1.Cut(); err != nil {
			return t, err
		}
		back = h1.Restore
	case ModeSIGKILL:
		d1.signal(syscall.SIGKILL)
		if err := d1.wait(5 * time.Second); err != nil {
			return t, err
		}
		back = c.restart(d1)
	case ModeSIGSTOP:
		d1.signal(syscall.SIGSTOP)
		back = func() error { d1.signal(syscall.SIGCONT); return nil }
	case ModeGraceful:
		d1.signal(syscall.SIGTERM)
		if err := d1.wait(10 * time.Second); err != nil {
			return t, err
		}
		back = c.restart(d1)
	case ModeHealth:
		if err := os.WriteFile(c.health[0], []byte("1\n"), 0o644); err != nil {
			return t, err
		}
		back = func() error { return os.WriteFile(c.health[0], []byte("0\n"), 0o644) }
	default:
		return t, fmt.Errorf("unknown mode %q", mode)
	}
	if err := c.answeredBy("h2"); err != nil {
		return t, err
	}
	if err := c.sleep(c.opt.Hold); err != nil {
		return t, err
	}
	if mode == ModeFailback {
		t = Trial{Old: "h2", New: "h1", MasterDown: c.masterDown(prioOf(0)), Start: time.Now()}
	} else if mode != ModeSIGSTOP {
		t.End = time.Now()
	}
	if err := back(); err != nil {
		return t, err
	}
	if err := c.answeredBy("h1"); err != nil {
		return t, err
	}
	if t.End.IsZero() {
		// A failback, or a frozen master that woke: its return is part of it.
		if err := c.sleep(c.opt.Hold); err != nil {
			return t, err
		}
		t.End = time.Now()
	}
	return t, nil
}

// restart starts a stopped daemon again and waits until it runs.
func (c *cell) restart(d *daemon) func() error {
	return func() error {
		if err := d.start(); err != nil {
			return err
		}
		return d.waitLog("(VI_1) Entering", c.longWait())
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
