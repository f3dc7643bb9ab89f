package vrrp

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// The simulation: routers running Machines on one segment, exchanging adverts
// with small random delays, while random faults happen; after the faults stop and
// every router hears every other for long enough, there is exactly one master.

type simEvent struct {
	at   time.Duration
	seq  int
	node int
	// an advert delivered to node, or (heard == nil) node's timer
	heard *Heard
	gen   int // the timer generation it was armed for
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simNode struct {
	m        *Machine
	addr     netip.Addr
	interval time.Duration
	cut      bool          // hears and is heard by no one
	kernel   *Heard        // the kernel's peers record: the last advert it accepted
	gen      int           // timer generation: re-arming invalidates older timer events
	armed    time.Duration // the deadline the pending timer event is for
}

type sim struct {
	r     *rand.Rand
	now   time.Duration
	seq   int
	q     simQueue
	nodes []*simNode
	log   []string
}

func (s *sim) push(e simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

// apply carries out a machine's actions: adverts go to every router that hears
// this one; the timer is re-armed.
func (s *sim) apply(i int, acts []Action) {
	n := s.nodes[i]
	for _, a := range acts {
		s.log = append(s.log, fmt.Sprintf("%v r%d %v", s.now, i, a))
		if a.Kind != ActAdvert || n.cut {
			continue
		}
		for j, o := range s.nodes {
			if j == i || o.cut {
				continue
			}
			h := Heard{Addr: n.addr, Priority: a.Priority, Interval: n.interval}
			s.push(simEvent{at: s.now + time.Duration(s.r.IntN(3000))*time.Microsecond, node: j, heard: &h})
		}
	}
	if d := n.m.Deadline(); d != 0 && d != n.armed {
		n.gen++
		n.armed = d
		s.push(simEvent{at: max(d, s.now), node: i, gen: n.gen})
	}
}

func (s *sim) runUntil(t time.Duration) {
	for len(s.q) > 0 && s.q[0].at <= t {
		e := heap.Pop(&s.q).(simEvent)
		s.now = e.at
		n := s.nodes[e.node]
		if e.heard != nil {
			if n.cut {
				continue
			}
			h := *e.heard
			h.At = s.now
			if h.Priority > 0 {
				n.kernel = &h
			}
			s.apply(e.node, n.m.Advert(s.now, h))
			continue
		}
		if e.gen != n.gen {
			continue
		}
		n.armed = 0
		var last *Heard
		if n.kernel != nil {
			k := *n.kernel
			last = &k
		}
		s.apply(e.node, n.m.Expire(s.now, last))
	}
	s.now = t
}

func (s *sim) masters() (masters, running int) {
	for _, n := range s.nodes {
		switch n.m.State() {
		case Master:
			masters++
			running++
		case Backup:
			running++
		}
	}
	return masters, running
}

// chaos runs one random fault at a random time for each of count steps.
func (s *sim) chaos(count int) {
	for range count {
		s.runUntil(s.now + time.Duration(s.r.IntN(400))*time.Millisecond)
		i := s.r.IntN(len(s.nodes))
		n := s.nodes[i]
		switch s.r.IntN(6) {
		case 0:
			n.cut = !n.cut
			s.log = append(s.log, fmt.Sprintf("%v r%d cut=%v", s.now, i, n.cut))
		case 1:
			if n.m.State() == Init {
				s.apply(i, n.m.Start(s.now))
			} else {
				s.apply(i, n.m.Stop(s.now))
			}
		case 2:
			s.apply(i, n.m.SetFault(s.now, n.m.State() != Fault, "chaos"))
		case 3:
			s.apply(i, n.m.SetPriority(s.now, uint8(1+s.r.IntN(254))))
		default:
			// time passes
		}
	}
}

// calm ends the faults: every router is connected, running and healthy.
func (s *sim) calm() {
	for i, n := range s.nodes {
		n.cut = false
		if n.m.State() == Fault {
			s.apply(i, n.m.SetFault(s.now, false, "calm"))
		}
		if n.m.State() == Init {
			s.apply(i, n.m.Start(s.now))
		}
	}
}

func newSim(seed uint64) *sim {
	s := &sim{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	count := 2 + s.r.IntN(3)
	interval := []time.Duration{10 * ms, 100 * ms, time.Second}[s.r.IntN(3)]
	for i := range count {
		p := Params{
			Version:  3,
			Priority: uint8(1 + s.r.IntN(255)),
			Interval: interval,
			Addr:     netip.AddrFrom4([4]byte{192, 0, 2, byte(11 + i)}),
		}
		if s.r.IntN(4) == 0 {
			p.Priority = 100 // equal priorities: the address breaks the tie
		}
		switch s.r.IntN(3) {
		case 0:
			p.NoPreempt = true
		case 1:
			p.PreemptDelay = time.Duration(s.r.IntN(2000)) * ms
		}
		s.nodes = append(s.nodes, &simNode{m: NewMachine(p), addr: p.Addr, interval: interval})
	}
	for i, n := range s.nodes {
		s.apply(i, n.m.Start(0))
	}
	return s
}

func checkOneMaster(t *testing.T, seed uint64) {
	s := newSim(seed)
	for round := range 3 {
		s.chaos(10)
		s.calm()
		// Every router now hears every other: within the longest
		// Master_Down_Interval (plus a preempt_delay) they agree.
		s.runUntil(s.now + 3*time.Second + 4*s.nodes[0].interval*2)
		if m, r := s.masters(); m != 1 || r != len(s.nodes) {
			tail := s.log
			if len(tail) > 40 {
				tail = tail[len(tail)-40:]
			}
			t.Fatalf("seed %d round %d: %d masters among %d running routers\n%s", seed, round, m, r, joinLines(tail))
		}
	}
}

func joinLines(l []string) string {
	var b []byte
	for _, s := range l {
		b = append(b, s...)
		b = append(b, '\n')
	}
	return string(b)
}

func TestNoTwoMasters(t *testing.T) {
	for seed := range uint64(300) {
		checkOneMaster(t, seed)
	}
}

func FuzzNoTwoMasters(f *testing.F) {
	f.Add(uint64(1))
	f.Add(uint64(42))
	f.Fuzz(func(t *testing.T, seed uint64) { checkOneMaster(t, seed) })
}
