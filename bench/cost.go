package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// CostOptions says how to measure what a backup costs: K instances at an
// interval, idle for Duration (the master measured over the same time), then
// under a flood of forged adverts at FloodRate packets per second for
// FloodDuration. Runs alternate the implementations that many times (A B A B
// …): a shared machine's load moves from run to run, and medians over
// alternating runs compare them under the same.
type CostOptions struct {
	Instances     int
	Interval      Interval
	Duration      time.Duration
	FloodRate     int
	FloodDuration time.Duration
	Runs          int // 0 means 1
}

// MaxCostInstances is the most instances the cost lab runs: VRIDs 1–255.
const MaxCostInstances = 255

func (o CostOptions) runs() int { return max(1, o.Runs) }

func (o CostOptions) enabled() bool { return o.Instances > 0 && o.Duration > 0 }

// CostResult is what the backup cost, idle and under the flood.
type CostResult struct {
	Impl      string `json:"impl"`
	Run       int    `json:"run"` // 1, 2, … in the order the runs alternated
	Instances int    `json:"instances"`
	Interval  string `json:"interval"`
	Idle      Usage  `json:"idle"`
	// Master is the master's usage over the backup's idle time: it sends
	// every instance's adverts.
	Master    Usage `json:"master"`
	Flood     Usage `json:"flood"`
	FloodRate int   `json:"flood_rate_pps"`
	// Forged adverts sent, and where they were dropped: the kernel's XDP
	// counters by reason (xvrrp), or nowhere before the daemon (keepalived,
	// which has no filter in the kernel).
	Forged       uint64            `json:"forged_sent"`
	KernelDrops  map[string]uint64 `json:"kernel_drops,omitempty"`
	DroppedWhere string            `json:"dropped_where"`
	// Transitions either node made during the flood: each is a false failover.
	FalseFailovers int `json:"false_failovers"`
}

// Usage is CPU time and wakeups over a time.
type Usage struct {
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Wakeups    int     `json:"wakeups"`
}

// CPUPercent is the CPU time as a share of one core; 0 for no measurement.
func (u Usage) CPUPercent() float64 {
	if u.Seconds <= 0 {
		return 0
	}
	return 100 * u.CPUSeconds / u.Seconds
}

// WakeupsPerSecond is how often the daemon woke up; 0 for no measurement.
func (u Usage) WakeupsPerSecond() float64 {
	if u.Seconds <= 0 {
		return 0
	}
	return float64(u.Wakeups) / u.Seconds
}

// ProcStats sums the CPU time (from the scheduler's nanosecond counts) and the
// voluntary context switches (its wakeups) of pid's threads.
func ProcStats(pid int) (cpu time.Duration, wakeups int) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, task := range tasks {
		if b, err := os.ReadFile(task + "/schedstat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				cpu += time.Duration(ns)
			}
		}
		if status, err := os.ReadFile(task + "/status"); err == nil {
			for _, line := range strings.Split(string(status), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					wakeups += n
				}
			}
		}
	}
	return cpu, wakeups
}

// measure samples the daemon's processes over fn's run.
func measure(d *daemon, fn func() error) (Usage, error) {
	us, err := measureAll([]*daemon{d}, fn)
	return us[0], err
}

// measureAll samples several daemons' processes over the same run of fn.
func measureAll(ds []*daemon, fn func() error) ([]Usage, error) {
	sample := func(d *daemon) (time.Duration, int) {
		var cpu time.Duration
		var w int
		for _, pid := range d.pids() {
			c, n := ProcStats(pid)
			cpu, w = cpu+c, w+n
		}
		return cpu, w
	}
	c0, w0 := make([]time.Duration, len(ds)), make([]int, len(ds))
	start := time.Now()
	for i, d := range ds {
		c0[i], w0[i] = sample(d)
	}
	err := fn()
	secs := time.Since(start).Seconds()
	us := make([]Usage, len(ds))
	for i, d := range ds {
		c1, w1 := sample(d)
		us[i] = Usage{Seconds: secs, CPUSeconds: (c1 - c0[i]).Seconds(), Wakeups: w1 - w0[i]}
	}
	return us, err
}

func manyConfig(k, prio int, iv Interval) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id cost-%d\n}\n", prio)
	for i := 1; i <= k; i++ {
		fmt.Fprintf(&b, `vrrp_instance VI_%[1]d {
    state BACKUP
    interface eth0
    virtual_router_id %[1]d
    priority %[2]d
    version %[3]d
    advert_int %[4]g
    virtual_ipaddress {
        198.51.100.%[1]d/32
    }
}
`, i, prio, iv.Version, iv.Every.Seconds())
	}
	return b.String()
}

func runCost(ctx context.Context, opt Options, impl string, run int, step func(string)) (_ CostResult, err error) {
	o := opt.Cost
	if o.Instances > MaxCostInstances {
		return CostResult{}, fmt.Errorf("at most %d instances, not %d", MaxCostInstances, o.Instances)
	}
	res := CostResult{Impl: impl, Run: run, Instances: o.Instances, Interval: o.Interval.String(), FloodRate: o.FloodRate}
	l, err := lab.New(ctx, lab.Options{Hosts: 2, Client: true})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var ds []*daemon
	for i, h := range l.Hosts {
		d := &daemon{impl: impl, host: h, bin: opt.XvrrpBin, conf: manyConfig(o.Instances, prioOf(i), o.Interval)}
		if err := d.start(); err != nil {
			return res, err
		}
		ds = append(ds, d)
		want := "MASTER"
		if i > 0 {
			want = "BACKUP"
		}
		if err := d.waitLog(fmt.Sprintf("(VI_%d) Entering %s STATE", o.Instances, want), time.Minute); err != nil {
			return res, err
		}
	}
	defer func() {
		if err != nil {
			for _, d := range ds {
				err = fmt.Errorf("%w\n--- %s on %s:\n%s", err, d.impl, d.host.Name, lastLines(d.proc.Output(), 30))
			}
		}
	}()
	backup := ds[1]
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	// Settle, then measure the idle backup, and the master over the same time.
	if err := sleep(time.Second); err != nil {
		return res, err
	}
	step(fmt.Sprintf("%s cost, run %d: backup of %d instances at %v, idle %v", impl, run, o.Instances, o.Interval, o.Duration))
	us, err := measureAll([]*daemon{backup, ds[0]}, func() error { return sleep(o.Duration) })
	if err != nil {
		return res, err
	}
	res.Idle, res.Master = us[0], us[1]

	step(fmt.Sprintf("%s cost: forged adverts, %d/s for %v", impl, o.FloodRate, o.FloodDuration))
	if o.FloodRate <= 0 || o.FloodDuration <= 0 {
		return res, nil
	}
	before := make([]int, len(ds))
	for i, d := range ds {
		before[i] = strings.Count(d.proc.Output(), "Entering")
	}
	var c0 []uint64
	if impl == Xvrrp {
		if c0, err = xdpCounters(l.Hosts[1]); err != nil {
			return res, err
		}
	}
	res.Flood, err = measure(backup, func() error {
		n, err := flood(ctx, l.Client, o)
		res.Forged = n
		return err
	})
	if err != nil {
		return res, err
	}
	if err := sleep(500 * time.Millisecond); err != nil { // late transitions
		return res, err
	}
	for i, d := range ds {
		res.FalseFailovers += strings.Count(d.proc.Output(), "Entering") - before[i]
	}
	switch impl {
	case Xvrrp:
		c1, err := xdpCounters(l.Hosts[1])
		if err != nil {
			return res, err
		}
		res.KernelDrops = map[string]uint64{}
		for r := vrrp.Reason(1); r < vrrp.NumReasons; r++ {
			if n := c1[r] - c0[r]; n > 0 && !r.Passes() {
				res.KernelDrops[r.String()] = n
			}
		}
		res.DroppedWhere = "kernel (XDP), before any socket"
	case Keepalived:
		res.DroppedWhere = "keepalived, after the kernel copied each to its socket (no kernel filter)"
	}
	return res, nil
}

// xdpCounters reads the counters of the xvrrp datapath pinned for host.
func xdpCounters(h *lab.Host) ([]uint64, error) {
	pinDir, _ := h.XvrrpDirs()
	dp, err := loader.Load(loader.Options{PinDir: pinDir, Observe: true})
	if err != nil {
		return nil, err
	}
	defer dp.Close()
	return dp.Counters()
}

// flood sends forged adverts from the client to the VRRP group: for VRID 1,
// claiming priority 254, in turn with TTL 64 (sent from off the link), with a
// bad checksum, and addressed to 224.0.0.19 (in a frame to the group's MAC).
// All three are aimed at our instances and dropped in XDP; a well-formed
// advert for a VRID nobody runs would pass, as another router's. It stops
// after rate × duration packets or when ctx ends, and returns how many it sent.
func flood(ctx context.Context, client *lab.Host, o CostOptions) (uint64, error) {
	src := client.IPv4.Addr()
	build := func(vrid uint8, ttl uint8, dst netip.Addr) []byte {
		a := vrrp.Advert{Version: uint8(o.Interval.Version), VRID: vrid, Priority: 254, Interval: o.Interval.Every,
			Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}
		if a.Version == 2 {
			a.Interval = time.Second
		}
		b, err := a.AppendPacket(nil, src, dst, ttl)
		if err != nil {
			panic(err)
		}
		return b
	}
	badSum := build(1, 255, vrrp.Group4)
	badSum[20+6] ^= 0xff
	pkts := [][]byte{build(1, 64, vrrp.Group4), badSum, build(1, 255, netip.MustParseAddr("224.0.0.19"))}
	total := uint64(o.FloodRate) * uint64(o.FloodDuration/time.Millisecond) / 1000
	var sent uint64
	err := client.WithRawIPv4(func(send func([]byte, netip.Addr) error) error {
		start := time.Now()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for sent < total && ctx.Err() == nil {
			// Catch up with the rate at each tick.
			due := min(total, uint64(time.Since(start).Seconds()*float64(o.FloodRate)))
			for ; sent < due; sent++ {
				if err := send(pkts[sent%3], vrrp.Group4); err != nil && !errors.Is(err, unix.ENOBUFS) {
					return err
				}
			}
			<-tick.C
		}
		return nil
	})
	return sent, err
}

// Spread is a median over runs and the range around it.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

func (s Spread) String() string {
	if s.Min == s.Max {
		return strconv.FormatFloat(s.Median, 'f', 1, 64)
	}
	return fmt.Sprintf("%.1f (%.1f–%.1f)", s.Median, s.Min, s.Max)
}

// CostSummary is an implementation's idle cost over its runs: the backup's
// CPU (% of a core) and wakeups per second, the master's CPU.
type CostSummary struct {
	Impl          string `json:"impl"`
	Runs          int    `json:"runs"`
	Instances     int    `json:"instances"`
	Interval      string `json:"interval"`
	BackupCPU     Spread `json:"backup_cpu_percent"`
	BackupWakeups Spread `json:"backup_wakeups_per_second"`
	MasterCPU     Spread `json:"master_cpu_percent"`
}

// CostSummaries summarises the cost runs per implementation, in the report's
// order of implementations.
func (r *Report) CostSummaries() []CostSummary {
	var out []CostSummary
	for _, impl := range r.Impls {
		var bc, bw, mc []float64
		s := CostSummary{Impl: impl}
		for _, c := range r.Cost {
			if c.Impl != impl {
				continue
			}
			s.Runs++
			s.Instances, s.Interval = c.Instances, c.Interval
			bc, bw, mc = append(bc, c.Idle.CPUPercent()), append(bw, c.Idle.WakeupsPerSecond()), append(mc, c.Master.CPUPercent())
		}
		if s.Runs == 0 {
			continue
		}
		s.BackupCPU, s.BackupWakeups, s.MasterCPU = spreadOf(bc), spreadOf(bw), spreadOf(mc)
		out = append(out, s)
	}
	return out
}

// CostGoal is one of xvrrp's cost goals, read off the medians of a run beside
// keepalived.
type CostGoal struct {
	Goal string `json:"goal"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// CostGoals are xvrrp's cost goals against keepalived's, from the summaries:
// an idle backup wakes at most once a second in all and costs at most a fifth
// of keepalived's backup; the master costs at most half of keepalived's.
// Without both implementations' summaries, only the first.
func CostGoals(sums []CostSummary) []CostGoal {
	var x, k *CostSummary
	for i := range sums {
		switch sums[i].Impl {
		case Xvrrp:
			x = &sums[i]
		case Keepalived:
			k = &sums[i]
		}
	}
	if x == nil {
		return nil
	}
	goals := []CostGoal{{Goal: "idle backup wakes ≤ 1/s",
		Got: fmt.Sprintf("%.1f/s", x.BackupWakeups.Median), Met: x.BackupWakeups.Median <= 1}}
	if k == nil {
		return goals
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	return append(goals,
		CostGoal{Goal: "idle backup CPU ≤ 1/5 of keepalived's",
			Got: fmt.Sprintf("%.1f%% vs %.1f%%: %s", x.BackupCPU.Median, k.BackupCPU.Median, ratio(x.BackupCPU.Median, k.BackupCPU.Median)),
			Met: x.BackupCPU.Median <= k.BackupCPU.Median/5},
		CostGoal{Goal: "master CPU ≤ 1/2 of keepalived's",
			Got: fmt.Sprintf("%.1f%% vs %.1f%%: %s", x.MasterCPU.Median, k.MasterCPU.Median, ratio(x.MasterCPU.Median, k.MasterCPU.Median)),
			Met: x.MasterCPU.Median <= k.MasterCPU.Median/2})
}
