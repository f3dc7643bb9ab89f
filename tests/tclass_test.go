package tests

import (
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

// TestIPv6AdvertTrafficClass: IPv6 adverts go out with traffic class 0xc0 (CS6),
// as keepalived's and FRR's do and as xvrrp's IPv4 adverts carry in their TOS.
// Before, they went out with 0.
func TestIPv6AdvertTrafficClass(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1}, "tcpdump")
	h := l.Hosts[0]
	capture, err := h.Capture("ip6 proto 112 or ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	x, err := h.StartXvrrp(xvrrpBin, v6Config(150))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_6) Entering MASTER STATE")
	time.Sleep(300 * time.Millisecond) // a few adverts at 50 ms
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range frames {
		if len(f.Data) < 14+40 || f.Data[12] != 0x86 || f.Data[13] != 0xdd || f.Data[14+6] != 112 {
			continue
		}
		n++
		if tc := f.Data[14]<<4 | f.Data[15]>>4; tc != 0xc0 {
			t.Errorf("IPv6 advert with traffic class %#02x, want 0xc0", tc)
		}
	}
	if n == 0 {
		t.Fatalf("no IPv6 advert captured among %d frames", len(frames))
	}
}
