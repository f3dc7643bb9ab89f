package loader

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

func TestRefusesPinDirNotOnBPFFS(t *testing.T) {
	labtest.Require(t)
	_, err := Load(Options{PinDir: t.TempDir()})
	if !errors.Is(err, ErrNotBPFFS) {
		t.Fatalf("Load on a tmpfs directory: err = %v, want ErrNotBPFFS", err)
	}
}

// TestReasonsMatchGenerated holds the enum bpf2go exported from bpf/xvrrp.h to the
// Go list of reasons, value for value.
func TestReasonsMatchGenerated(t *testing.T) {
	for _, tc := range []struct {
		c   bpfXvrrpReason
		go_ vrrp.Reason
	}{
		{bpfXvrrpReasonXVRRP_REASON_VALID, vrrp.ReasonValid},
		{bpfXvrrpReasonXVRRP_REASON_LENGTH, vrrp.ReasonLength},
		{bpfXvrrpReasonXVRRP_REASON_IP_VERSION, vrrp.ReasonIPVersion},
		{bpfXvrrpReasonXVRRP_REASON_IP_CHECKSUM, vrrp.ReasonIPChecksum},
		{bpfXvrrpReasonXVRRP_REASON_VERSION, vrrp.ReasonVersion},
		{bpfXvrrpReasonXVRRP_REASON_TYPE, vrrp.ReasonType},
		{bpfXvrrpReasonXVRRP_REASON_TTL, vrrp.ReasonTTL},
		{bpfXvrrpReasonXVRRP_REASON_CHECKSUM, vrrp.ReasonChecksum},
		{bpfXvrrpReasonXVRRP_REASON_ADDR_COUNT, vrrp.ReasonAddrCount},
		{bpfXvrrpReasonXVRRP_REASON_SOURCE, vrrp.ReasonSource},
		{bpfXvrrpReasonXVRRP_REASON_FOREIGN, vrrp.ReasonForeign},
		{bpfXvrrpReasonXVRRP_REASON_DESTINATION, vrrp.ReasonDestination},
		{bpfXvrrpReasonXVRRP_REASON_OWN_SOURCE, vrrp.ReasonOwnSource},
		{bpfXvrrpReasonXVRRP_REASON_INTERVAL, vrrp.ReasonInterval},
		{bpfXvrrpReasonXVRRP_REASON_AUTH_TYPE, vrrp.ReasonAuthType},
		{bpfXvrrpReasonXVRRP_REASON_AUTH_KEY, vrrp.ReasonAuthKey},
		{bpfXvrrpReasonXVRRP_REASON_UNICAST_PEER, vrrp.ReasonUnicastPeer},
		{bpfXvrrpReasonXVRRP_REASON_MAX, vrrp.NumReasons},
	} {
		if uint32(tc.c) != uint32(tc.go_) {
			t.Errorf("kernel %d, Go %v (%d)", tc.c, tc.go_, tc.go_)
		}
	}
}

func TestEventsStopWithContext(t *testing.T) {
	d := newDatapath(t)
	configure(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Event, 4)
	done := make(chan error, 1)
	go func() { done <- d.ReadEvents(ctx, func(e Event) { got <- e }) }()
	f := advert(t, v3(), src4, vrrp.Group4, 255)
	if _, err := d.XDP().Run(&ebpf.RunOptions{Data: f}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Kind != EventNewSource {
			t.Errorf("event kind %d, want new source", e.Kind)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ReadEvents returned %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ReadEvents did not stop with its context")
	}
}
