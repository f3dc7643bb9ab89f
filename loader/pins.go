package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// A pinned map from another build of xvrrp may have another layout: the kernel
// checks only sizes (a peer with a lock in place of padding has the old size),
// so the programs would read it wrongly or fail verification. Such a map is
// replaced, except an instances map that holds a live lease (see
// replaceIncompatible).

// oldSuffix names a replaced map's pin while the new maps are loaded, so that a
// failed load can put it back.
const oldSuffix = "_old" // bpffs refuses dots in names

// pinSwap is the incompatible pins moved aside by replaceIncompatible.
type pinSwap struct {
	paths []string // the maps' pins, each moved to path+oldSuffix
}

// restore puts the moved pins back, after a failed load.
func (s *pinSwap) restore() {
	for _, p := range s.paths {
		os.Rename(p+oldSuffix, p)
	}
}

// drop unpins the moved maps: the programs and links of the old build that
// still use them keep them alive until they are replaced.
func (s *pinSwap) drop() {
	for _, p := range s.paths {
		os.Remove(p + oldSuffix)
	}
}

// replaceIncompatible moves aside every map pinned under dir that spec would not
// use as it is, so that loading the collection makes a new one. What those maps
// hold the agent writes again at start, or the next advert does: peers,
// unicast_peers, vips (all written before the programs are attached), stats
// (counters start again from zero), events.
//
// instances is different: it holds the lease of a master, and a node that
// restarts within its lease keeps its VIPs without a flap. Dropping a live lease
// would fence the VIPs until this node is elected again, or a backup takes over.
// So an incompatible instances map is replaced only when no entry in it is a
// master whose lease runs; otherwise replaceIncompatible returns an error
// wrapping ebpf.ErrMapIncompatible that says when the lease ends and what to do.
// The lease is short (a Master_Down_Interval), so a supervisor that restarts the
// daemon gets through once it has run out, after a backup took over.
//
// With observe, nothing is moved: an incompatible map is an error.
func replaceIncompatible(spec *ebpf.CollectionSpec, dir string, observe bool, log *slog.Logger) (*pinSwap, error) {
	swap := &pinSwap{}
	for name, ms := range spec.Maps {
		if ms.Pinning != ebpf.PinByName {
			continue
		}
		path := filepath.Join(dir, name)
		if !observe {
			// A move a crashed run left behind: its checks were passed.
			os.Remove(path + oldSuffix)
		}
		m, err := ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			if observe {
				// A map the daemon's build has not (an older one's: no
				// instance_stats): an empty one of the observer's own,
				// not pinned into the daemon's directory.
				ms.Pinning = ebpf.PinNone
			}
			continue
		}
		if err != nil {
			swap.restore()
			return nil, fmt.Errorf("load pinned map %s: %w", name, err)
		}
		why := incompatible(ms, m)
		if why == nil {
			m.Close()
			continue
		}
		if observe {
			m.Close()
			swap.restore()
			return nil, fmt.Errorf("use pinned map %s: %w", name, why)
		}
		if name == "instances" {
			err := noLiveLease(m)
			m.Close()
			if err != nil {
				swap.restore()
				return nil, fmt.Errorf("replace pinned map %s, from another build of xvrrp (%w): %w", path, why, err)
			}
		} else {
			m.Close()
		}
		if err := os.Rename(path, path+oldSuffix); err != nil {
			swap.restore()
			return nil, fmt.Errorf("move pinned map %s aside: %w", name, err)
		}
		swap.paths = append(swap.paths, path)
		log.Warn("replacing a pinned map from another build of xvrrp", "map", name, "pin", path, "difference", why.Error())
	}
	return swap, nil
}

// incompatible says why spec would not use the pinned map m: what the kernel
// checks (type, sizes, flags), and the layout of its key and value as BTF
// describes them. A map without BTF is incompatible: bpf_spin_lock and
// bpftool's field names need it.
func incompatible(spec *ebpf.MapSpec, m *ebpf.Map) error {
	if err := spec.Compatible(m); err != nil {
		return err
	}
	if spec.Key == nil && spec.Value == nil {
		return nil // a ring buffer: sizes say it all
	}
	info, err := m.Info()
	if err != nil {
		return fmt.Errorf("read map info: %w", err)
	}
	id, ok := info.BTFID()
	if !ok {
		return fmt.Errorf("no BTF: %w", ebpf.ErrMapIncompatible)
	}
	h, err := btf.NewHandleFromID(id)
	if err != nil {
		return fmt.Errorf("load the map's BTF: %w", err)
	}
	defer h.Close()
	pinned, err := h.Spec(nil)
	if err != nil {
		return fmt.Errorf("load the map's BTF: %w", err)
	}
	for _, t := range []btf.Type{spec.Key, spec.Value} {
		if t == nil {
			continue
		}
		// The map's BTF is its whole object's; a struct key or value is
		// found in it by name, which the C gives every struct we key or
		// store. Of a scalar the size says it all.
		s, ok := btf.UnderlyingType(t).(*btf.Struct)
		if !ok {
			continue
		}
		name := s.Name
		var old *btf.Struct
		if err := pinned.TypeByName(name, &old); err != nil {
			return fmt.Errorf("struct %s not in its BTF: %w", name, ebpf.ErrMapIncompatible)
		}
		if was, is := layout(old), layout(s); was != is {
			return fmt.Errorf("%s was %s, is %s: %w", name, was, is, ebpf.ErrMapIncompatible)
		}
	}
	return nil
}

// layout describes a type's memory layout: members by name, offset and type,
// recursively, so that any change a program would misread shows.
func layout(t btf.Type) string {
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		return "struct " + t.Name + members(t.Members)
	case *btf.Union:
		return "union " + t.Name + members(t.Members)
	case *btf.Array:
		return fmt.Sprintf("[%d]%s", t.Nelems, layout(t.Type))
	case *btf.Int:
		return fmt.Sprintf("int%d", t.Size*8)
	case *btf.Enum:
		return fmt.Sprintf("enum%d", t.Size*8)
	case *btf.Pointer:
		return "pointer"
	default:
		return fmt.Sprintf("%T", t)
	}
}

func members(ms []btf.Member) string {
	var b strings.Builder
	b.WriteString("{")
	for i, m := range ms {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s@%d:%s", m.Name, m.Offset.Bytes(), layout(m.Type))
		if m.BitfieldSize != 0 {
			fmt.Fprintf(&b, ":%d", m.BitfieldSize)
		}
	}
	b.WriteString("}")
	return b.String()
}

// noLiveLease returns nil when no entry of the pinned instances map m is a
// master whose lease runs. It reads the entries as the map's own BTF lays them
// out (the members state and lease_until_ns), since their layout is not this
// build's; it returns an error when it cannot tell.
func noLiveLease(m *ebpf.Map) error {
	info, err := m.Info()
	if err != nil {
		return fmt.Errorf("read map info: %w", err)
	}
	id, _ := info.BTFID()
	h, err := btf.NewHandleFromID(id)
	if err != nil {
		return fmt.Errorf("cannot tell whether it holds a live lease (load its BTF: %w); %s", err, leaseRemedy)
	}
	defer h.Close()
	pinned, err := h.Spec(nil)
	if err != nil {
		return fmt.Errorf("cannot tell whether it holds a live lease (load its BTF: %w); %s", err, leaseRemedy)
	}
	var value *btf.Struct
	if err := pinned.TypeByName("xvrrp_instance", &value); err != nil {
		return fmt.Errorf("cannot tell whether it holds a live lease (no struct xvrrp_instance); %s", leaseRemedy)
	}
	stateAt, leaseAt := -1, -1
	for _, mem := range value.Members {
		switch {
		case mem.Name == "state" && btf.UnderlyingType(mem.Type).(*btf.Int) != nil:
			stateAt = int(mem.Offset.Bytes())
		case mem.Name == "lease_until_ns":
			leaseAt = int(mem.Offset.Bytes())
		}
	}
	if stateAt < 0 || leaseAt < 0 || leaseAt+8 > int(m.ValueSize()) {
		return fmt.Errorf("cannot tell whether it holds a live lease (no state or lease_until_ns); %s", leaseRemedy)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("read the kernel's clock: %w", err)
	}
	now := uint64(ts.Nano())
	var until uint64
	k, v := make([]byte, m.KeySize()), make([]byte, m.ValueSize())
	it := m.Iterate()
	for it.Next(k, v) {
		lease := uint64(0)
		for i := 7; i >= 0; i-- { // the host's order: little-endian, as bpfel is
			lease = lease<<8 | uint64(v[leaseAt+i])
		}
		if v[stateAt] == StateMaster && lease > now && lease > until {
			until = lease
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("cannot tell whether it holds a live lease (read it: %w); %s", err, leaseRemedy)
	}
	if until == 0 {
		return nil
	}
	left := time.Duration(until - now)
	return fmt.Errorf("it holds the lease of a master for another %v, which replacing it would drop, fencing the VIPs at once; start again once the lease has run out (a backup takes over meanwhile), or remove the pin to drop the lease now", left.Round(time.Millisecond))
}

// leaseRemedy says what to do when the lease cannot be read.
const leaseRemedy = "if this node is not master, or its VIPs may be fenced until an election, remove the pin and start again"
