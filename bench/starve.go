package bench

import (
	"context"
	"encoding/binary"
	"fmt"
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

// ModeStarve is not a failure: a master and a backup that are merely busy.
// It is measured apart from the failure modes (see StarveOptions).
const ModeStarve = "starve"

// Starvation variants.
const (
	StarveCPU    = "cpu"    // a loop at nice -20 on every core
	StarveMemory = "memory" // anonymous memory touched until the host is near its limit
)

// StarveOptions says how to starve a master and a backup of K instances at
// an interval: for Duration, with each variant.
type StarveOptions struct {
	Instances int
	Interval  Interval
	Duration  time.Duration
	Variants  []string
}

func (o StarveOptions) enabled() bool {
	return o.Instances > 0 && o.Duration > 0 && len(o.Variants) > 0
}

// StarveResult is what a busy host did to VRRP: takeovers (the backup
// becoming master of an instance, the master stepping down) while it lasted,
// and the gaps between consecutive adverts of each instance as the backup's
// interface received them.
type StarveResult struct {
	Impl      string        `json:"impl"`
	Variant   string        `json:"variant"`
	Instances int           `json:"instances"`
	Interval  string        `json:"interval"`
	Duration  time.Duration `json:"duration_ns"`
	Takeovers int           `json:"takeovers"`
	Gaps      int           `json:"gaps"`
	GapP50    time.Duration `json:"gap_p50_ns"`
	GapP99    time.Duration `json:"gap_p99_ns"`
	GapP999   time.Duration `json:"gap_p999_ns"`
	GapMax    time.Duration `json:"gap_max_ns"`
	// MasterDown is the backup's Master_Down_Interval: a gap as long is a
	// takeover.
	MasterDown time.Duration `json:"master_down_ns"`
	// Memory is what the memory variant did to the host.
	Memory *MemoryLoad `json:"memory,omitempty"`
}

func runStarve(ctx context.Context, opt Options, impl string, step func(string)) (_ []StarveResult, err error) {
	o := opt.Starve
	l, err := lab.New(ctx, lab.Options{Hosts: 2})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var ds []*daemon
	defer func() {
		if err != nil {
			for _, d := range ds {
				err = fmt.Errorf("%w\n--- %s on %s:\n%s", err, d.impl, d.host.Name, lastLines(d.proc.Output(), 30))
			}
		}
	}()
	for i, h := range l.Hosts {
		d := &daemon{impl: impl, host: h, bin: opt.XvrrpBin, conf: manyConfig(o.Instances, prioOf(i), o.Interval)}
		if err := d.start(); err != nil {
			return nil, err
		}
		ds = append(ds, d)
		want := "MASTER"
		if i > 0 {
			want = "BACKUP"
		}
		if err := d.waitLog(fmt.Sprintf("(VI_%d) Entering %s STATE", o.Instances, want), time.Minute); err != nil {
			return nil, err
		}
	}
	master, backup := ds[0], ds[1]
	var results []StarveResult
	for _, variant := range o.Variants {
		step(fmt.Sprintf("%s starve %s: %d instances at %v for %v", impl, variant, o.Instances, o.Interval, o.Duration))
		if err := sleepCtx(ctx, time.Second); err != nil { // settled
			return results, err
		}
		res := StarveResult{Impl: impl, Variant: variant, Instances: o.Instances, Interval: o.Interval.String(), Duration: o.Duration,
			MasterDown: vrrp.MasterDownInterval(uint8(o.Interval.Version), uint8(prioOf(1)), o.Interval.Every, 3)}
		// The capture runs real-time with a large buffer, so the load cannot
		// make it lose the frames this judges by; their times are the kernel's.
		pcap := filepath.Join(l.Dir, fmt.Sprintf("starve-%s-%s.pcap", impl, variant))
		capture, err := l.Hosts[1].Start("chrt", "-r", "50", "tcpdump", "-i", "eth0", "-nn", "-B", "65536", "--immediate-mode",
			"-U", "-s", "128", "-Z", "root", "-w", pcap, "ip", "proto", "112", "and", "src", l.Hosts[0].IPv4.Addr().String())
		if err != nil {
			return results, err
		}
		if err := capture.WaitLog("listening on", 10*time.Second); err != nil {
			return results, err
		}
		before := strings.Count(backup.proc.Output(), "Entering MASTER STATE") + strings.Count(master.proc.Output(), "Entering BACKUP STATE")
		switch variant {
		case StarveCPU:
			err = BusyLoops(ctx, o.Duration)
		case StarveMemory:
			var load MemoryLoad
			load, err = MemoryPressure(ctx, o.Duration, MemoryFill, MemoryHeadroom)
			res.Memory = &load
		default:
			err = fmt.Errorf("unknown starve variant %q", variant)
		}
		if err != nil {
			capture.Signal(syscall.SIGKILL)
			return results, err
		}
		sleepCtx(ctx, 300*time.Millisecond) // late transitions
		capture.Signal(syscall.SIGINT)
		capture.Wait()
		res.Takeovers = strings.Count(backup.proc.Output(), "Entering MASTER STATE") + strings.Count(master.proc.Output(), "Entering BACKUP STATE") - before
		frames, err := lab.ReadPcapFile(pcap)
		if err != nil {
			return results, err
		}
		gaps := AdvertGaps(frames)
		if len(gaps) > 0 {
			res.Gaps = len(gaps)
			res.GapP50, res.GapP99, res.GapP999 = Percentile(gaps, 50), Percentile(gaps, 99), Percentile(gaps, 99.9)
			res.GapMax = gaps[len(gaps)-1]
		}
		results = append(results, res)
		// A takeover under load leaves the pair mid-flap: let it settle back.
		sleepCtx(ctx, 2*res.MasterDown+time.Second)
	}
	return results, nil
}

// AdvertGaps is, sorted, the time between consecutive IPv4 VRRP adverts of
// the same VRID in frames.
func AdvertGaps(frames []lab.Frame) []time.Duration {
	last := map[uint8]time.Time{}
	var gaps []time.Duration
	for _, f := range frames {
		if len(f.Data) < 14+20+2 || binary.BigEndian.Uint16(f.Data[12:14]) != 0x0800 || f.Data[14+9] != 112 {
			continue
		}
		ihl := int(f.Data[14]&0x0f) * 4
		if len(f.Data) < 14+ihl+2 {
			continue
		}
		vrid := f.Data[14+ihl+1]
		if prev, ok := last[vrid]; ok {
			gaps = append(gaps, f.Time.Sub(prev))
		}
		last[vrid] = f.Time
	}
	slices.Sort(gaps)
	return gaps
}

// BusyLoops runs one shell loop per core at nice -20 for d and waits for them.
// Each is killed by timeout(1) at d whatever becomes of this process.
func BusyLoops(ctx context.Context, d time.Duration) error {
	var cmds []*exec.Cmd
	for range runtime.NumCPU() {
		cmd := exec.CommandContext(ctx, "timeout", "-s", "KILL", strconv.FormatFloat(d.Seconds(), 'f', 3, 64),
			"nice", "-n", "-20", "sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			for _, c := range cmds {
				c.Process.Kill()
				c.Wait()
			}
			return fmt.Errorf("start busy loop: %w", err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		c.Wait() // killed by timeout: that status is the expected one
	}
	return ctx.Err()
}

// MemoryLoad is what MemoryPressure did to the host.
type MemoryLoad struct {
	// Reserved is what the host was made smaller by: huge pages taken from
	// its free memory, never touched.
	Reserved uint64 `json:"reserved_bytes"`
	// Filled is the anonymous memory touched on top of that.
	Filled uint64 `json:"filled_bytes"`
	// MinAvailable is the least MemAvailable seen while it held.
	MinAvailable uint64 `json:"min_available_bytes"`
	// Reclaimed is the pages the kernel reclaimed meanwhile (pgsteal), and
	// Stalled the time some task waited on memory (PSI "some").
	Reclaimed uint64        `json:"reclaimed_pages"`
	Stalled   time.Duration `json:"stalled_ns"`
}

// The memory variant's load: the host made smaller until MemoryFill plus
// MemoryHeadroom is available, then MemoryFill touched — a few seconds' work
// even where memory is backed lazily — leaving about MemoryHeadroom, reclaimed
// page cache included, for everything else on the host.
const (
	MemoryFill     = 512 << 20
	MemoryHeadroom = 512 << 20
)

// hugePages is the host's pool of default-size huge pages.
const hugePages = "/proc/sys/vm/nr_hugepages"

// MemoryPressure holds the host near its memory limit for d, and lets go. It
// makes the host smaller first: it reserves all but fill+headroom of the
// available memory as huge pages, which the kernel takes off its free lists
// without touching them (on a virtual machine whose host backs memory lazily,
// touching many GiB takes a minute and stalls the whole machine; reserving
// them takes a second). Then it maps and touches fill bytes of anonymous
// memory (and up to 2 GiB more when the pool could not take all it asked),
// 64 MiB at a time, so that free memory runs out and the kernel
// reclaims: page cache, and the pages of programs that did not lock theirs;
// tasks that allocate wait for it. It stops filling when MemAvailable falls
// below headroom or d has passed, holds until d, and gives everything back.
//
// Bounded whatever becomes of this process: the pool is put back by a
// detached shell d+10 s later if this process dies first.
func MemoryPressure(ctx context.Context, d time.Duration, fill, headroom uint64) (load MemoryLoad, err error) {
	end := time.Now().Add(d)
	prevPool, err := os.ReadFile(hugePages)
	if err != nil {
		return load, err
	}
	prev := strings.TrimSpace(string(prevPool))
	pageSize, err := meminfo("Hugepagesize:")
	if err != nil {
		return load, err
	}
	avail, err := memAvailable()
	if err != nil {
		return load, err
	}
	steal0, stall0 := reclaimed(), memoryStalled()
	if reserve := int64(avail) - int64(fill) - int64(headroom); reserve >= int64(pageSize) {
		guard := exec.Command("setsid", "sh", "-c", fmt.Sprintf("sleep %.0f; echo %s > %s", (d+10*time.Second).Seconds(), prev, hugePages))
		if err := guard.Start(); err != nil {
			return load, fmt.Errorf("start the guard that gives back huge pages: %w", err)
		}
		defer func() {
			if werr := os.WriteFile(hugePages, []byte(prev), 0o644); werr != nil && err == nil {
				err = fmt.Errorf("give back huge pages: %w", werr)
			}
			guard.Process.Kill()
			guard.Wait()
		}()
		// Others on the host allocate meanwhile, and a pool that cannot grow
		// at once (page cache to reclaim first, free memory in pieces smaller
		// than a huge page) grows on later tries, after the kernel reclaims
		// and compacts: tries, each for what is still available beyond fill
		// and headroom, until three in a row add nothing.
		base, _ := strconv.ParseUint(prev, 10, 64)
		pool := base
		for stuck := 0; stuck < 3 && reserve >= int64(pageSize) && time.Now().Before(end); {
			if err := os.WriteFile(hugePages, []byte(strconv.FormatUint(pool+uint64(reserve)/pageSize, 10)), 0o644); err != nil {
				return load, fmt.Errorf("reserve huge pages: %w", err)
			}
			was := pool
			if pool, err = meminfo("HugePages_Total:"); err != nil {
				return load, err
			}
			if pool == was {
				stuck++
			}
			if avail, err = memAvailable(); err != nil {
				return load, err
			}
			reserve = int64(avail) - int64(fill) - int64(headroom)
		}
		load.Reserved = (pool - base) * pageSize
	}
	const chunk = 64 << 20
	var maps [][]byte
	defer func() {
		for _, m := range maps {
			unix.Munmap(m)
		}
	}()
	if load.MinAvailable, err = memAvailable(); err != nil {
		return load, err
	}
	// What the pool could not take (page cache the kernel would not give up
	// in time, memory in pieces) is filled instead, up to maxShortfall more.
	const maxShortfall = 2 << 30
	if short := int64(load.MinAvailable) - int64(fill) - int64(headroom); short > 0 {
		fill += min(uint64(short), maxShortfall)
	}
	for load.Filled+chunk <= fill && time.Now().Before(end) {
		avail, err := memAvailable()
		if err != nil {
			return load, err
		}
		load.MinAvailable = min(load.MinAvailable, avail)
		if avail < headroom+chunk {
			break
		}
		m, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			break
		}
		maps = append(maps, m)
		load.Filled += chunk
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		if avail, err := memAvailable(); err == nil {
			load.MinAvailable = min(load.MinAvailable, avail)
		}
		sleepCtx(ctx, min(100*time.Millisecond, time.Until(end)))
	}
	load.Reclaimed, load.Stalled = reclaimed()-steal0, memoryStalled()-stall0
	return load, ctx.Err()
}

// reclaimed is the pages the kernel has reclaimed since boot.
func reclaimed() uint64 {
	b, _ := os.ReadFile("/proc/vmstat")
	var n uint64
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && strings.HasPrefix(k, "pgsteal_") {
			x, _ := strconv.ParseUint(v, 10, 64)
			n += x
		}
	}
	return n
}

// memoryStalled is the time some task has waited on memory since boot (PSI),
// 0 without PSI.
func memoryStalled() time.Duration {
	b, _ := os.ReadFile("/proc/pressure/memory")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "some "); ok {
			if _, v, ok := strings.Cut(rest, "total="); ok {
				us, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return time.Duration(us) * time.Microsecond
			}
		}
	}
	return 0
}

func memAvailable() (uint64, error) { return meminfo("MemAvailable:") }

// meminfo reads a field of /proc/meminfo: bytes for those in kB, else the
// number.
func meminfo(field string) (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			v = strings.TrimSpace(v)
			kb := strings.HasSuffix(v, " kB")
			n, err := strconv.ParseUint(strings.TrimSuffix(v, " kB"), 10, 64)
			if kb {
				n <<= 10
			}
			return n, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/meminfo", field)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
