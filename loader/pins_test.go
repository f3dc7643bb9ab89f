package loader

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"golang.org/x/sys/unix"
)

// The maps as an older build pinned them: a peer with padding where the lock is
// now (the same size, so the kernel's own checks pass), an instance before the
// group, local address and MAC.
var (
	u8, u16, u32, u64 = &btf.Int{Name: "__u8", Size: 1}, &btf.Int{Name: "__u16", Size: 2},
		&btf.Int{Name: "__u32", Size: 4}, &btf.Int{Name: "__u64", Size: 8}
	oldKey = &btf.Struct{Name: "xvrrp_instance_key", Size: 8, Members: []btf.Member{
		{Name: "ifindex", Type: u32, Offset: 0},
		{Name: "vrid", Type: u8, Offset: 32},
		{Name: "family", Type: u8, Offset: 40},
		{Name: "pad", Type: &btf.Array{Index: u32, Type: u8, Nelems: 2}, Offset: 48},
	}}
	oldPeer = &btf.Struct{Name: "xvrrp_peer", Size: 40, Members: []btf.Member{
		{Name: "addr", Type: &btf.Array{Index: u32, Type: u8, Nelems: 16}, Offset: 0},
		{Name: "priority", Type: u8, Offset: 128},
		{Name: "version", Type: u8, Offset: 136},
		{Name: "interval_cs", Type: u16, Offset: 144},
		{Name: "pad", Type: u32, Offset: 160},
		{Name: "last_seen_ns", Type: u64, Offset: 192},
		{Name: "count", Type: u64, Offset: 256},
	}}
	oldInstance = &btf.Struct{Name: "xvrrp_instance", Size: 32, Members: []btf.Member{
		{Name: "version", Type: u8, Offset: 0},
		{Name: "auth_type", Type: u8, Offset: 8},
		{Name: "state", Type: u8, Offset: 16},
		{Name: "priority", Type: u8, Offset: 24},
		{Name: "auth_data", Type: &btf.Array{Index: u32, Type: u8, Nelems: 8}, Offset: 32},
		{Name: "min_interval_cs", Type: u16, Offset: 96},
		{Name: "max_interval_cs", Type: u16, Offset: 112},
		{Name: "flags", Type: u32, Offset: 128},
		{Name: "lease_until_ns", Type: u64, Offset: 192},
	}}
)

// pinOld pins a map named name under dir as an older build made it, holding one
// entry for k.
func pinOld(t *testing.T, dir, name string, value *btf.Struct, k InstanceKey, v []byte) {
	t.Helper()
	m, err := ebpf.NewMapWithOptions(&ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: 8, ValueSize: value.Size,
		MaxEntries: 1024, Key: oldKey, Value: value, Pinning: ebpf.PinByName}, ebpf.MapOptions{PinPath: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Put(k, v); err != nil {
		t.Fatal(err)
	}
}

// oldInstanceValue is an entry of the old instances map in state, with its lease
// ending at lease (kernel monotonic time).
func oldInstanceValue(state uint8, lease time.Duration) []byte {
	v := make([]byte, oldInstance.Size)
	v[0], v[2] = 3, state
	binary.LittleEndian.PutUint64(v[24:], uint64(lease))
	return v
}

func monotonic(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// TestLoadReplacesIncompatiblePins: maps an older build pinned, with another
// layout, are replaced (the peer's is the same size, so only the layout tells),
// and no trace of the old ones is left; an old instances map too, when no
// master's lease runs in it. An observing Load refuses them instead.
func TestLoadReplacesIncompatiblePins(t *testing.T) {
	labtest.Require(t)
	dir := testPinDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k := key(51, FamilyIPv4)
	pinOld(t, dir, "peers", oldPeer, k, make([]byte, oldPeer.Size))
	// A master whose lease ran out a second ago.
	pinOld(t, dir, "instances", oldInstance, k, oldInstanceValue(StateMaster, monotonic(t)-time.Second))

	// An observer changes nothing: it refuses.
	if o, err := Load(Options{PinDir: dir, Observe: true}); !errors.Is(err, ebpf.ErrMapIncompatible) {
		if err == nil {
			o.Close()
		}
		t.Errorf("observing Load over an older build's pins: %v, want ErrMapIncompatible", err)
	}
	d, err := Load(Options{PinDir: dir})
	if err != nil {
		t.Fatalf("Load over an older build's pins: %v", err)
	}
	defer d.Remove()
	// A locked lookup of a map without a lock would fail with EINVAL.
	if _, err := d.Peer(k); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("Peer in the replaced map: %v, want ErrKeyNotExist", err)
	}
	if _, err := d.Instance(k); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("Instance in the replaced map: %v, want ErrKeyNotExist", err)
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "*"+oldSuffix)); len(old) > 0 {
		t.Errorf("old maps left pinned: %v", old)
	}
}

// TestLoadKeepsLiveLease: an older build's instances map that holds a master's
// running lease is neither replaced nor used: Load says what to do, and leaves
// the pin as it was.
func TestLoadKeepsLiveLease(t *testing.T) {
	labtest.Require(t)
	dir := testPinDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k := key(51, FamilyIPv4)
	pinOld(t, dir, "peers", oldPeer, k, make([]byte, oldPeer.Size))
	pinOld(t, dir, "instances", oldInstance, k, oldInstanceValue(StateMaster, monotonic(t)+time.Minute))

	d, err := Load(Options{PinDir: dir})
	if err == nil {
		d.Remove()
		t.Fatal("Load replaced an instances map holding a live lease")
	}
	t.Log(err)
	if !errors.Is(err, ebpf.ErrMapIncompatible) {
		t.Errorf("err = %v, want ErrMapIncompatible", err)
	}
	for _, want := range []string{filepath.Join(dir, "instances"), "lease", "remove the pin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, does not say %q", err, want)
		}
	}
	for _, name := range []string{"instances", "peers"} {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			t.Fatalf("pin %s: %v", name, err)
		}
		var v = make([]byte, m.ValueSize())
		if err := m.Lookup(k, v); err != nil {
			t.Errorf("the old %s lost its entry: %v", name, err)
		}
		m.Close()
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "*"+oldSuffix)); len(old) > 0 {
		t.Errorf("old maps left aside: %v", old)
	}
}
