package bench

import (
	"bufio"
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
	// Pressure is what the memory variant held.
	PressureBytes uint64 `json:"pressure_bytes,omitempty"`
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
			res.PressureBytes, err = MemoryPressure(ctx, o.Duration, 2*time.Minute, 2<<30)
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

// MemoryPressure maps and touches anonymous memory, 64 MiB at a time, until
// the host has only headroom bytes available or fill has passed, holds it for
// d, and frees it. The kernel reclaims what it can meanwhile: page cache, and
// the pages of programs that did not lock theirs. It returns how much it held.
// (On a virtual machine whose memory the host backs lazily, filling runs at a
// few hundred MB/s: give it time.)
func MemoryPressure(ctx context.Context, d, fill time.Duration, headroom uint64) (uint64, error) {
	filling := time.Now().Add(fill)
	const chunk = 64 << 20
	var maps [][]byte
	defer func() {
		for _, m := range maps {
			unix.Munmap(m)
		}
	}()
	var held uint64
	for len(maps) < 4096 && time.Now().Before(filling) { // at most 256 GiB and d
		avail, err := memAvailable()
		if err != nil {
			return held, err
		}
		if avail < headroom+chunk {
			break
		}
		m, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			break
		}
		maps = append(maps, m)
		held += chunk
	}
	return held, sleepCtx(ctx, d)
}

func memAvailable() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no MemAvailable in /proc/meminfo")
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
