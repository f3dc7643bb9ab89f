package vrrp

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReasonsMatchKernel holds the Go list of drop reasons equal, name for name and
// in order, to enum xvrrp_reason in the header the BPF programs count with.
func TestReasonsMatchKernel(t *testing.T) {
	src, err := os.ReadFile("../bpf/xvrrp.h")
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile(`(?s)enum xvrrp_reason \{(.*?)\};`).FindSubmatch(src)
	if body == nil {
		t.Fatal("enum xvrrp_reason not found in bpf/xvrrp.h")
	}
	var c []string
	for _, m := range regexp.MustCompile(`XVRRP_REASON_(\w+)`).FindAllSubmatch(body[1], -1) {
		c = append(c, strings.ToLower(string(m[1])))
	}
	var golist []string
	for r := Reason(0); r < NumReasons; r++ {
		golist = append(golist, r.String())
	}
	golist = append(golist, "max")
	if diff := cmp.Diff(c, golist); diff != "" {
		t.Errorf("bpf/xvrrp.h and vrrp.Reason differ (-C +Go):\n%s", diff)
	}
}
