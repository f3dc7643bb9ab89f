package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The generated types, under the names the rest of xvrrp uses.
type (
	InstanceKey = bpfXvrrpInstanceKey
	Instance    = bpfXvrrpInstance
	Peer        = bpfXvrrpPeer
	VIPKey      = bpfXvrrpVipKey
	UnicastKey  = bpfXvrrpUnicastKey
	Event       = bpfXvrrpEvent
)

// DefaultPinDir is where a single xvrrp on a host pins its maps and links.
const DefaultPinDir = "/sys/fs/bpf/xvrrp"

// ErrNotBPFFS is returned when the pin directory is not on a BPF file system.
var ErrNotBPFFS = errors.New("not on a BPF file system (bpffs)")

// Options configure Load.
type Options struct {
	// PinDir holds the pinned maps and links; DefaultPinDir when empty. Give each
	// daemon on a host its own.
	PinDir string
	Logger *slog.Logger
	// NoPin loads maps without pinning, for tests that run programs with prog.Run.
	NoPin bool
}

// Datapath is the loaded programs and maps.
type Datapath struct {
	objs   bpfObjects
	pinDir string
	log    *slog.Logger
	links  map[string]link.Link // by pin name, e.g. "2_xdp"
}

// Load loads the programs and the maps, creating or reusing pinned maps under the
// pin directory: maps pinned by an earlier run are adopted with their contents.
// It returns an error wrapping ErrNotBPFFS when the pin directory is not on bpffs;
// when its parent is /sys/fs/bpf and nothing is mounted there, it mounts bpffs, as
// systemd does.
func Load(opt Options) (*Datapath, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Datapath{pinDir: opt.PinDir, log: log, links: map[string]link.Link{}}
	if d.pinDir == "" {
		d.pinDir = DefaultPinDir
	}
	collOpts := &ebpf.CollectionOptions{}
	if !opt.NoPin {
		if err := ensureBPFFS(d.pinDir, log); err != nil {
			return nil, err
		}
		collOpts.Maps.PinPath = d.pinDir
	}
	spec, err := loadBpf()
	if err != nil {
		return nil, fmt.Errorf("load BPF spec: %w", err)
	}
	if opt.NoPin {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}
	if err := spec.LoadAndAssign(&d.objs, collOpts); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load BPF objects: %+v", ve)
		}
		return nil, fmt.Errorf("load BPF objects: %w", err)
	}
	return d, nil
}

func ensureBPFFS(dir string, log *slog.Logger) error {
	// Machines of this kind boot without /sys/fs/bpf mounted: mount it as systemd
	// would, but only there; anywhere else a pin directory must already be on bpffs.
	const root = "/sys/fs/bpf"
	if (dir == root || filepath.Dir(dir) == root) && !onBPFFS(root) {
		if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount bpffs on %s: %w", root, err)
		}
		log.Info("mounted bpffs", "path", root)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if !onBPFFS(dir) {
		return fmt.Errorf("pin directory %s: %w", dir, ErrNotBPFFS)
	}
	return nil
}

func onBPFFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

// PinDir returns the directory the maps and links are pinned in.
func (d *Datapath) PinDir() string { return d.pinDir }

// Attach attaches the XDP validator and both fence programs to the interface.
// Links pinned by an earlier run are adopted and switched to this run's programs
// in place, so the interface is never without them; a pin whose link is gone is
// replaced.
func (d *Datapath) Attach(ifindex int) error {
	for _, a := range []struct {
		name   string
		prog   *ebpf.Program
		attach func() (link.Link, error)
	}{
		{"xdp", d.objs.XdpVrrp, func() (link.Link, error) { return d.attachXDP(ifindex) }},
		{"tc_ingress", d.objs.TcFenceIngress, func() (link.Link, error) {
			return link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: d.objs.TcFenceIngress, Attach: ebpf.AttachTCXIngress})
		}},
		{"tc_egress", d.objs.TcFenceEgress, func() (link.Link, error) {
			return link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: d.objs.TcFenceEgress, Attach: ebpf.AttachTCXEgress})
		}},
	} {
		name := strconv.Itoa(ifindex) + "_" + a.name
		pin := filepath.Join(d.pinDir, "links", name)
		if l, err := link.LoadPinnedLink(pin, nil); err == nil {
			if err := l.Update(a.prog); err == nil {
				d.links[name] = l
				d.log.Info("adopted pinned link", "link", name)
				continue
			}
			l.Close()
		}
		// A stale pin (its link detached, ENOLINK) or none at all: attach anew.
		os.Remove(pin)
		l, err := a.attach()
		if err != nil {
			return fmt.Errorf("attach %s to ifindex %d: %w", a.name, ifindex, err)
		}
		if err := os.MkdirAll(filepath.Dir(pin), 0o700); err == nil && !d.unpinned() {
			if err := l.Pin(pin); err != nil {
				l.Close()
				return fmt.Errorf("pin %s: %w", name, err)
			}
		}
		d.links[name] = l
	}
	return nil
}

func (d *Datapath) unpinned() bool { return !onBPFFS(d.pinDir) }

func (d *Datapath) attachXDP(ifindex int) (link.Link, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.XdpVrrp, Interface: ifindex, Flags: link.XDPDriverMode})
	if err == nil {
		return l, nil
	}
	d.log.Warn("native XDP not available, using generic XDP", "ifindex", ifindex, "error", err)
	return link.AttachXDP(link.XDPOptions{Program: d.objs.XdpVrrp, Interface: ifindex, Flags: link.XDPGenericMode})
}

// Detach removes the programs from an interface and their pins.
func (d *Datapath) Detach(ifindex int) error {
	var errs []error
	for _, a := range []string{"xdp", "tc_ingress", "tc_egress"} {
		name := strconv.Itoa(ifindex) + "_" + a
		pin := filepath.Join(d.pinDir, "links", name)
		l, ok := d.links[name]
		if !ok {
			var err error
			if l, err = link.LoadPinnedLink(pin, nil); err != nil {
				continue
			}
		}
		if err := l.Unpin(); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		errs = append(errs, l.Close())
		delete(d.links, name)
	}
	return errors.Join(errs...)
}

// Close releases this process's handles; pinned links and maps stay, so the
// datapath keeps working for the next run to adopt.
func (d *Datapath) Close() error {
	for _, l := range d.links {
		l.Close()
	}
	return d.objs.Close()
}

// Remove detaches every link this datapath pinned and unpins every map, leaving
// nothing under the pin directory, then closes.
func (d *Datapath) Remove() error {
	var errs []error
	pins, _ := filepath.Glob(filepath.Join(d.pinDir, "links", "*"))
	for _, pin := range pins {
		if l, err := link.LoadPinnedLink(pin, nil); err == nil {
			errs = append(errs, l.Unpin(), l.Close())
		} else {
			os.Remove(pin)
		}
	}
	for _, l := range d.links {
		l.Close()
	}
	d.links = map[string]link.Link{}
	for _, m := range []*ebpf.Map{d.objs.Instances, d.objs.Peers, d.objs.Vips, d.objs.UnicastPeers, d.objs.Stats, d.objs.Events} {
		if m != nil && m.IsPinned() {
			errs = append(errs, m.Unpin())
		}
	}
	errs = append(errs, d.objs.Close())
	os.Remove(filepath.Join(d.pinDir, "links"))
	os.Remove(d.pinDir)
	return errors.Join(errs...)
}

// Programs, for tests and benchmarks that run them with prog.Run.
func (d *Datapath) XDP() *ebpf.Program          { return d.objs.XdpVrrp }
func (d *Datapath) FenceIngress() *ebpf.Program { return d.objs.TcFenceIngress }
func (d *Datapath) FenceEgress() *ebpf.Program  { return d.objs.TcFenceEgress }

// Typed map access.

func (d *Datapath) PutInstance(k InstanceKey, v Instance) error {
	return d.objs.Instances.Put(k, v)
}

func (d *Datapath) Instance(k InstanceKey) (Instance, error) {
	var v Instance
	return v, d.objs.Instances.Lookup(k, &v)
}

func (d *Datapath) DeleteInstance(k InstanceKey) error { return d.objs.Instances.Delete(k) }

func (d *Datapath) Peer(k InstanceKey) (Peer, error) {
	var v Peer
	return v, d.objs.Peers.Lookup(k, &v)
}

func (d *Datapath) PutVIP(k VIPKey, owner InstanceKey) error { return d.objs.Vips.Put(k, owner) }

func (d *Datapath) DeleteVIP(k VIPKey) error { return d.objs.Vips.Delete(k) }

func (d *Datapath) PutUnicastPeer(k UnicastKey) error { return d.objs.UnicastPeers.Put(k, uint8(1)) }

// Counters returns the stats map summed over CPUs, indexed by vrrp.Reason, then
// the fence counters (CounterFencedIngress, CounterFencedEgress).
func (d *Datapath) Counters() ([]uint64, error) {
	out := make([]uint64, CounterMax)
	for i := range out {
		var perCPU []uint64
		if err := d.objs.Stats.Lookup(uint32(i), &perCPU); err != nil {
			return nil, fmt.Errorf("read stats[%d]: %w", i, err)
		}
		for _, v := range perCPU {
			out[i] += v
		}
	}
	return out, nil
}

// Counter indexes beyond the reasons.
const (
	CounterFencedIngress = int(bpfXvrrpCounterXVRRP_COUNTER_FENCED_INGRESS)
	CounterFencedEgress  = int(bpfXvrrpCounterXVRRP_COUNTER_FENCED_EGRESS)
	CounterMax           = int(bpfXvrrpCounterXVRRP_COUNTER_MAX)
)

// States, families and event kinds as the kernel knows them.
const (
	StateInit   = uint8(bpfXvrrpStateXVRRP_STATE_INIT)
	StateBackup = uint8(bpfXvrrpStateXVRRP_STATE_BACKUP)
	StateMaster = uint8(bpfXvrrpStateXVRRP_STATE_MASTER)
	StateFault  = uint8(bpfXvrrpStateXVRRP_STATE_FAULT)

	FamilyIPv4 = uint8(bpfXvrrpFamilyXVRRP_FAMILY_IPV4)
	FamilyIPv6 = uint8(bpfXvrrpFamilyXVRRP_FAMILY_IPV6)

	FlagUnicast = 1

	EventNewSource = uint32(bpfXvrrpEventKindXVRRP_EVENT_NEW_SOURCE)
	EventPriority  = uint32(bpfXvrrpEventKindXVRRP_EVENT_PRIORITY)
	EventResign    = uint32(bpfXvrrpEventKindXVRRP_EVENT_RESIGN)
	EventContest   = uint32(bpfXvrrpEventKindXVRRP_EVENT_CONTEST)
)
