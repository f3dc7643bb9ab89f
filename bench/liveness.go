package bench

import (
	"net"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
)

// probeCost measures the master's and the backup's daemons idle for
// opt.LivenessCost, with the probes the backup's kernel sent and the replies
// it took meanwhile.
func (c *cell) probeCost() (ProbeCost, error) {
	pc := ProbeCost{Impl: c.impl, Interval: c.iv.String()}
	before, _ := livenessOf(c.l.Hosts[1])
	t0 := time.Now()
	var err error
	pc.Master, err = measure(c.daemons[0], func() error {
		var err error
		pc.Backup, err = measure(c.daemons[1], func() error { return c.sleep(c.opt.LivenessCost) })
		return err
	})
	if err != nil {
		return pc, err
	}
	after, _ := livenessOf(c.l.Hosts[1])
	pc.Probes, pc.Replies = after.Sent-before.Sent, after.Replies-before.Replies
	pc.Counted = time.Since(t0).Seconds()
	return pc, nil
}

// livenessOf reads the liveness record of the bench's instance on a host.
func livenessOf(h *lab.Host) (loader.Liveness, error) {
	var idx int
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Iface)
		if err == nil {
			idx = ifi.Index
		}
		return err
	}); err != nil {
		return loader.Liveness{}, err
	}
	pinDir, _ := h.XvrrpDirs()
	dp, err := loader.Load(loader.Options{PinDir: pinDir, Observe: true})
	if err != nil {
		return loader.Liveness{}, err
	}
	defer dp.Close()
	return dp.LivenessOf(loader.Key{Ifindex: idx, VRID: 51})
}
