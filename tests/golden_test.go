package tests

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

var update = flag.Bool("update", false, "rewrite golden files from real keepalived")

// goldenConfig makes keepalived 2.2.7 send the three kinds of advert the golden
// vectors cover: v2 with PASS authentication (as the address owner, so it is master
// at once), v3 over IPv4 at 100 ms with two VIPs, and v3 over IPv6 at 50 ms. Stopping
// it adds the priority-0 adverts of each.
const goldenConfig = `
global_defs {
    router_id golden
}
vrrp_instance V2 {
    interface eth0
    virtual_router_id 51
    priority 255
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret12
    }
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_instance V3 {
    version 3
    interface eth0
    virtual_router_id 52
    priority 100
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.2/24
        192.0.2.3/24
    }
}
vrrp_instance V6 {
    version 3
    interface eth0
    virtual_router_id 53
    priority 200
    advert_int 0.05
    virtual_ipaddress {
        2001:db8::1/64
        2001:db8::2/64
    }
}
`

var goldenPcap = filepath.Join("..", "vrrp", "testdata", "keepalived-2.2.7.pcap")

// TestKeepalivedGolden captures real keepalived adverts, checks that the decoder
// takes every one and re-encodes it byte for byte, and that they are the adverts
// committed as golden vectors (which -update rewrites).
func TestKeepalivedGolden(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1}, "keepalived", "tcpdump")
	h := l.Hosts[0]
	capture, err := h.Capture("ip proto 112 or ip6 proto 112")
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.StartKeepalived(goldenConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"V2", "V3", "V6"} {
		if err := k.WaitLog("("+inst+") Entering MASTER STATE", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if err := k.Stop(5 * time.Second); err != nil {
		t.Fatalf("keepalived: %v\n%s", err, k.Output())
	}
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}

	// One frame per kind of advert: VRID and priority.
	type kind struct{ vrid, prio uint8 }
	var (
		golden []lab.Frame
		seen   = map[kind]bool{}
	)
	for _, f := range frames {
		p, err := vrrp.DecodeFrame(f.Data)
		if err != nil {
			t.Errorf("keepalived advert does not decode: %v\n%x", err, f.Data)
			continue
		}
		checkReencode(t, f.Data, p)
		if k := (kind{p.VRID, p.Priority}); !seen[k] {
			seen[k] = true
			golden = append(golden, lab.Frame{Time: f.Time, Data: f.Data})
		}
	}
	if len(golden) != 6 {
		t.Fatalf("captured %d kinds of advert, want 6 (3 instances, running and stopping):\n%s", len(golden), k.Output())
	}
	slices.SortFunc(golden, func(a, b lab.Frame) int { return a.Time.Compare(b.Time) })

	if *update {
		f, err := os.Create(goldenPcap)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := lab.WritePcap(f, golden); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed := readAdverts(t, goldenPcap)
	live := make([]*vrrp.Packet, len(golden))
	for i, f := range golden {
		live[i], _ = vrrp.DecodeFrame(f.Data)
	}
	sortPackets(committed)
	sortPackets(live)
	if diff := cmp.Diff(committed, live, cmp.Comparer(func(a, b interface{ String() string }) bool { return a.String() == b.String() })); diff != "" {
		t.Errorf("live keepalived adverts differ from the golden vectors (-committed +live):\n%s", diff)
	}
}

func checkReencode(t *testing.T, frame []byte, p *vrrp.Packet) {
	t.Helper()
	msg, err := p.Advert.Marshal(p.Src, p.Dst)
	if err != nil {
		t.Errorf("re-encode: %v", err)
		return
	}
	ipLen := 20
	if p.Src.Is6() {
		ipLen = 40
	}
	got := frame[14+ipLen : 14+ipLen+len(msg)]
	if !slices.Equal(got, msg) {
		t.Errorf("re-encoded advert differs:\nwire %x\nours %x", got, msg)
	}
}

func readAdverts(t *testing.T, path string) []*vrrp.Packet {
	t.Helper()
	frames, err := lab.ReadPcapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*vrrp.Packet
	for _, fr := range frames {
		p, err := vrrp.DecodeFrame(fr.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func sortPackets(ps []*vrrp.Packet) {
	slices.SortFunc(ps, func(a, b *vrrp.Packet) int {
		if a.VRID != b.VRID {
			return int(a.VRID) - int(b.VRID)
		}
		return int(a.Priority) - int(b.Priority)
	})
}
