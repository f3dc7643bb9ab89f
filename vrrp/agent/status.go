package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
)

// Status is what a running daemon says of itself on its status socket, and
// what `xvrrp status --json` prints. docs/status.md describes every field; the
// names are stable: fields may be added, never renamed or given another
// meaning.
type Status struct {
	PID       int              `json:"pid"`
	Config    string           `json:"config"`
	Started   time.Time        `json:"started"`
	Instances []InstanceStatus `json:"instances"`
	// Kernel is what the kernel counted on every interface together.
	Kernel *KernelCounterStatus `json:"kernel_counters,omitempty"`
}

// InstanceStatus is one vrrp_instance.
type InstanceStatus struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	VRID      uint8  `json:"vrid"`
	Family    string `json:"family"` // "IPv4" or "IPv6"
	Version   uint8  `json:"version"`
	State     string `json:"state"` // INIT, BACKUP, MASTER, FAULT
	// Fault says why the instance is in FAULT.
	Fault             string `json:"fault,omitempty"`
	BasePriority      uint8  `json:"base_priority"`
	EffectivePriority uint8  `json:"effective_priority"`
	// Master is the last advert the kernel accepted for the instance: from the
	// master a backup follows, or from a router that contested ours.
	Master *AdvertStatus `json:"last_advert,omitempty"`
	// LeaseLeft is how long the kernel lets the VIPs through without another
	// advert from us; 0 when not master.
	LeaseLeft time.Duration   `json:"lease_left_ns"`
	VIPs      []VIPStatus     `json:"vips"`
	Trackers  []TrackerStatus `json:"trackers,omitempty"`
	// SendErrors counts adverts the kernel refused to send.
	SendErrors uint64 `json:"send_errors"`
	// LastTransition is when the instance last changed state, if it has.
	LastTransition *time.Time     `json:"last_transition,omitempty"`
	Counters       *CounterStatus `json:"counters,omitempty"`
	// Restored counts addresses put back after something else removed them
	// while master.
	Restored uint64 `json:"restored"`
}

// AdvertStatus is an advert as the kernel recorded it.
type AdvertStatus struct {
	Address  string        `json:"address"`
	Priority uint8         `json:"priority"`
	Interval time.Duration `json:"interval_ns"`
	// Age is how long before the status was taken the kernel received it.
	Age time.Duration `json:"age_ns"`
}

// VIPStatus is one virtual address.
type VIPStatus struct {
	Address string `json:"address"` // with its prefix length
	Dev     string `json:"dev"`
	Present bool   `json:"present"` // configured on Dev
	// Fenced: the kernel drops traffic to and from it here (not MASTER, or
	// the lease ran out).
	Fenced bool `json:"fenced"`
}

// TrackerStatus is one tracker an instance follows, with what it says now.
type TrackerStatus struct {
	Kind    string `json:"kind"` // interface, script, file, process
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Value   int    `json:"value,omitempty"` // track_file's number
}

// status is taken on the event loop, the only goroutine that may read the
// instances.
func (a *Agent) status() Status {
	now := a.now()
	st := Status{PID: os.Getpid(), Config: a.opt.ConfigFile, Started: a.started}
	for _, in := range a.insts {
		is := InstanceStatus{
			Name: in.cfg.Name, Interface: in.cfg.Interface, VRID: in.cfg.VRID, Family: in.cfg.Family.String(),
			Version: in.cfg.Version, State: in.m.State().String(), BasePriority: in.cfg.Priority,
			EffectivePriority: in.m.Priority(), SendErrors: in.sendErrors, Restored: in.restored,
		}
		if in.m.State() == vrrp.Fault {
			is.Fault = a.groupFault(in)
		}
		is.Master = advertStatus(a.dp, in.key, now)
		open := false
		if k, err := a.dp.State(in.key); err == nil && k.State == vrrp.Master && k.LeaseUntil > now {
			is.LeaseLeft, open = k.LeaseUntil-now, true
		}
		for _, v := range in.vips {
			is.VIPs = append(is.VIPs, VIPStatus{Address: v.addr.IPNet.String(), Dev: v.link.Attrs().Name, Present: a.addrs.present(v), Fenced: !open})
		}
		is.Trackers = a.trackerStatus(in)
		st.Instances = append(st.Instances, is)
	}
	// An instance waiting for its interface (dynamic_interfaces) is not
	// run; keepalived shows such an instance in FAULT, and so does this.
	for _, nc := range a.pending {
		st.Instances = append(st.Instances, InstanceStatus{
			Name: nc.Name, Interface: nc.Interface, VRID: nc.VRID, Family: nc.Family.String(),
			Version: nc.Version, State: vrrp.Fault.String(), BasePriority: nc.Priority,
			Fault: "interface " + nc.Interface + " does not exist (dynamic_interfaces: waiting for it)",
		})
	}
	a.counters(&st)
	return st
}

func (a *Agent) trackerStatus(in *instance) []TrackerStatus {
	var ts []TrackerStatus
	for _, t := range in.cfg.TrackInterfaces {
		ts = append(ts, TrackerStatus{Kind: "interface", Name: t.Name, Healthy: a.health.ifUp[t.Name]})
	}
	for _, t := range in.cfg.TrackScripts {
		ts = append(ts, TrackerStatus{Kind: "script", Name: t.Name, Healthy: a.health.scriptOK[t.Name]})
	}
	for _, t := range in.cfg.TrackFiles {
		v := a.health.fileVal[t.Name]
		ts = append(ts, TrackerStatus{Kind: "file", Name: t.Name, Healthy: v == 0, Value: v})
	}
	for _, t := range in.cfg.TrackProcesses {
		ts = append(ts, TrackerStatus{Kind: "process", Name: t.Name, Healthy: a.health.procOK[t.Name]})
	}
	return ts
}

// serveStatus answers each connection to a unix socket at path (mode 0600)
// with the daemon's Status as JSON, until ctx ends. The status is taken on the
// event loop; the encoding and the writing are not.
func (a *Agent) serveStatus(ctx context.Context, path string) error {
	os.Remove(path) // a crash's leftover: the state directory's lock is ours
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("status socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("status socket: %w", err)
	}
	context.AfterFunc(ctx, func() { l.Close(); os.Remove(path) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					a.log.Warn("status socket", "error", err)
				}
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Second))
				reply := make(chan Status, 1)
				select {
				case a.statusReq <- reply:
				case <-ctx.Done():
					return
				}
				select {
				case st := <-reply:
					json.NewEncoder(c).Encode(st)
				case <-time.After(time.Second):
				}
			}()
		}
	}()
	return nil
}

func advertStatus(dp interface {
	LastAdvert(loader.Key) (vrrp.Heard, error)
}, k loader.Key, now time.Duration) *AdvertStatus {
	h, err := dp.LastAdvert(k)
	if err != nil || h.At == 0 {
		return nil
	}
	return &AdvertStatus{Address: h.Addr.String(), Priority: h.Priority, Interval: h.Interval, Age: now - h.At}
}

// KernelStatus is what the kernel enforces with no daemon running, read from
// a datapath's pinned maps: each instance's state and lease, the last advert
// it accepted, and whether its VIPs pass the fence. Names and priorities the
// kernel does not keep are left out.
func KernelStatus(dp *loader.Datapath) (Status, error) {
	insts, err := dp.Instances()
	if err != nil {
		return Status{}, err
	}
	vips, err := dp.VIPs()
	if err != nil {
		return Status{}, err
	}
	now := Monotonic()
	var st Status
	for key, k := range insts {
		is := InstanceStatus{VRID: key.VRID, Family: "IPv4", State: k.State.String(), EffectivePriority: k.Priority}
		if key.IPv6 {
			is.Family = "IPv6"
		}
		is.Interface = fmt.Sprintf("ifindex %d", key.Ifindex)
		if ifi, err := net.InterfaceByIndex(key.Ifindex); err == nil {
			is.Interface = ifi.Name
		}
		open := k.State == vrrp.Master && k.LeaseUntil > now
		if open {
			is.LeaseLeft = k.LeaseUntil - now
		}
		is.Master = advertStatus(dp, key, now)
		for ip, owner := range vips {
			if owner == key {
				is.VIPs = append(is.VIPs, VIPStatus{Address: ip.String(), Fenced: !open})
			}
		}
		slices.SortFunc(is.VIPs, func(a, b VIPStatus) int { return cmp.Compare(a.Address, b.Address) })
		is.Counters = kernelOnlyCounters(dp, key)
		st.Instances = append(st.Instances, is)
	}
	st.Kernel = kernelCounterStatus(dp)
	slices.SortFunc(st.Instances, func(a, b InstanceStatus) int {
		return cmp.Or(cmp.Compare(a.Interface, b.Interface), cmp.Compare(a.VRID, b.VRID), cmp.Compare(a.Family, b.Family))
	})
	return st, nil
}
