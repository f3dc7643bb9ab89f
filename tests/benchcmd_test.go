package tests

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
)

// TestBenchCommand runs a small `xvrrp bench`, xvrrp against keepalived, and
// checks the report: every trial measured, JSON, CSV and SVG written, the lab
// gone. And what the bench exists to show: while a frozen master sleeps past its
// lease, keepalived's keeps answering for the VIP beside the new master, and
// xvrrp's (fenced) does not.
func TestBenchCommand(t *testing.T) {
	labtest.Require(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Fatal("keepalived is not installed (make deps installs it)")
	}
	dir := t.TempDir()
	js, cs, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv"), filepath.Join(dir, "r.svg")
	const hold = 400 * time.Millisecond
	var out bytes.Buffer
	cmd := exec.Command(xvrrpBin, "bench", "--trials", "2", "--intervals", "100ms", "--modes", "linkcut,sigstop",
		"--hold", hold.String(), "--cost-instances", "3", "--cost-time", "500ms", "--flood-rate", "2000", "--flood-time", "500ms",
		"--json", js, "--csv", cs, "--svg", svg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("xvrrp bench: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"[12/12", "linkcut, 100ms/v3", "sigstop, 100ms/v3", "keepalived p50", "ratio p50", "cost of a backup"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	var r struct {
		bench.Report
		Summaries []bench.Summary `json:"summaries"`
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Results) != 2*2*2 || len(r.Cost) != 2 {
		t.Fatalf("%d results and %d cost results, want 8 and 2:\n%s", len(r.Results), len(r.Cost), text)
	}
	dual := map[string]time.Duration{}
	for _, res := range r.Results {
		for _, m := range bench.Metrics {
			if _, ok := res.Metrics[m]; !ok {
				t.Errorf("%s %s trial %d: no %s", res.Impl, res.Mode, res.Trial, m)
			}
		}
		if d := res.Metrics[bench.MetricDetect]; d <= 0 {
			t.Errorf("%s %s: detect %v", res.Impl, res.Mode, d)
		}
		if res.Mode == bench.ModeSIGSTOP {
			dual[res.Impl] = max(dual[res.Impl], res.Metrics[bench.MetricDual])
		}
	}
	if dual[bench.Xvrrp] >= hold/4 {
		t.Errorf("a frozen xvrrp master answered beside the new one for %v", dual[bench.Xvrrp])
	}
	if dual[bench.Keepalived] < hold/4 {
		t.Errorf("a frozen keepalived master answered beside the new one for only %v: is the measure broken?", dual[bench.Keepalived])
	}
	for _, c := range r.Cost {
		if c.Forged != 1000 {
			t.Errorf("%s: %d forged adverts sent, want 2000/s × 0.5 s", c.Impl, c.Forged)
		}
		if c.Impl == bench.Xvrrp {
			var n uint64
			for _, v := range c.KernelDrops {
				n += v
			}
			if n < c.Forged {
				t.Errorf("xvrrp: %d of %d forged adverts dropped in the kernel", n, c.Forged)
			}
		}
	}

	f, err := os.Open(cs)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 1+8*len(bench.Metrics) {
		t.Errorf("CSV: %d rows, %v", len(rows), err)
	}
	f, err = os.Open(svg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG: %v", err)
		}
	}

	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("%s%d-", lab.NamePrefix, cmd.Process.Pid)) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestBenchVMAC: `xvrrp bench --vmac both` measures each cell without and with
// use_vmac on every node, the latter labelled xvrrp+vmac, every metric
// measured in both — the gratuitous ARPs, which with a VMAC all carry the same
// MAC, counted as the new master's.
func TestBenchVMAC(t *testing.T) {
	labtest.Require(t)
	js := filepath.Join(t.TempDir(), "r.json")
	var out bytes.Buffer
	cmd := exec.Command(xvrrpBin, "bench", "--impls", "xvrrp", "--vmac", "both", "--trials", "1", "--intervals", "100ms",
		"--modes", "linkcut", "--cost-instances", "0", "--json", js)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("xvrrp bench: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "xvrrp+vmac p50") {
		t.Errorf("the table has no xvrrp+vmac column:\n%s", out.String())
	}
	var r bench.Report
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	impls := map[string]int{}
	for _, res := range r.Results {
		impls[res.Impl]++
		for _, m := range bench.Metrics {
			if _, ok := res.Metrics[m]; !ok {
				t.Errorf("%s %s: no %s", res.Impl, res.Mode, m)
			}
		}
	}
	if impls[bench.Xvrrp] != 1 || impls[bench.Xvrrp+bench.VMACSuffix] != 1 {
		t.Errorf("results by implementation %v, want one xvrrp and one xvrrp+vmac", impls)
	}
}
