package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is one metric's distribution over the trials of an implementation,
// mode and interval.
type Summary struct {
	Impl     string        `json:"impl"`
	Mode     string        `json:"mode"`
	Interval string        `json:"interval"`
	Metric   string        `json:"metric"`
	N        int           `json:"n"`
	P50      time.Duration `json:"p50_ns"`
	P95      time.Duration `json:"p95_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
}

type groupKey struct{ impl, mode, interval, metric string }

// columns are the implementations as the results name them, in report order:
// each, then each with a VMAC (IMPL+vmac) when measured.
func (r *Report) columns() []string {
	var cols []string
	for _, impl := range r.Impls {
		for _, l := range []string{impl, impl + VMACSuffix} {
			if slices.ContainsFunc(r.Results, func(res Result) bool { return res.Impl == l }) {
				cols = append(cols, l)
			}
		}
	}
	return cols
}

// Summaries sums the results up, in report order.
func (r *Report) Summaries() []Summary {
	values := map[groupKey][]time.Duration{}
	var order []groupKey
	for _, res := range r.Results {
		for _, m := range Metrics {
			v, ok := res.Metrics[m]
			if !ok {
				continue
			}
			k := groupKey{res.Impl, res.Mode, res.Interval, m}
			if _, seen := values[k]; !seen {
				order = append(order, k)
			}
			values[k] = append(values[k], v)
		}
	}
	rank := func(list []string, s string) int { return slices.Index(list, s) }
	var intervals []string // in the order first measured
	for _, res := range r.Results {
		if !slices.Contains(intervals, res.Interval) {
			intervals = append(intervals, res.Interval)
		}
	}
	slices.SortStableFunc(order, func(a, b groupKey) int {
		if c := rank(Modes, a.mode) - rank(Modes, b.mode); c != 0 {
			return c
		}
		if c := rank(intervals, a.interval) - rank(intervals, b.interval); c != 0 {
			return c
		}
		if c := rank(Metrics, a.metric) - rank(Metrics, b.metric); c != 0 {
			return c
		}
		cols := r.columns()
		return rank(cols, a.impl) - rank(cols, b.impl)
	})
	var out []Summary
	for _, k := range order {
		v := values[k]
		out = append(out, Summary{Impl: k.impl, Mode: k.mode, Interval: k.interval, Metric: k.metric, N: len(v),
			P50: Percentile(v, 50), P95: Percentile(v, 95), P99: Percentile(v, 99), Max: Percentile(v, 100)})
	}
	return out
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// WriteTable prints the side-by-side table: per mode and interval, a row per
// metric with p50, p95, p99 and max for each implementation, in milliseconds,
// and the ratio of the p50s (keepalived / xvrrp).
func (r *Report) WriteTable(w io.Writer) error {
	var tw *tabwriter.Writer
	newTable := func(title string) {
		if tw != nil {
			tw.Flush()
		}
		fmt.Fprintf(w, "\n%s\n", title)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	}
	sums := r.Summaries()
	by := map[groupKey]Summary{}
	type section struct{ mode, interval string }
	var sections []section
	for _, s := range sums {
		by[groupKey{s.Impl, s.Mode, s.Interval, s.Metric}] = s
		if sec := (section{s.Mode, s.Interval}); !slices.Contains(sections, sec) {
			sections = append(sections, sec)
		}
	}
	md := map[string]time.Duration{}
	for _, res := range r.Results {
		md[res.Mode+" "+res.Interval] = res.MasterDown
	}
	ratio := slices.Contains(r.Impls, Xvrrp) && slices.Contains(r.Impls, Keepalived)
	for _, sec := range sections {
		newTable(fmt.Sprintf("%s, %s: milliseconds over %d trial(s); the new master's Master_Down_Interval is %s ms",
			sec.mode, sec.interval, r.Trials, ms(md[sec.mode+" "+sec.interval])))
		head := []string{"metric"}
		for _, impl := range r.columns() {
			head = append(head, impl+" p50", "p95", "p99", "max")
		}
		if ratio {
			head = append(head, "ratio p50")
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, m := range Metrics {
			row := []string{m}
			any := false
			for _, impl := range r.columns() {
				s, ok := by[groupKey{impl, sec.mode, sec.interval, m}]
				if !ok {
					row = append(row, "-", "-", "-", "-")
					continue
				}
				any = true
				row = append(row, ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max))
			}
			if !any {
				continue
			}
			if ratio {
				x, k := by[groupKey{Xvrrp, sec.mode, sec.interval, m}], by[groupKey{Keepalived, sec.mode, sec.interval, m}]
				row = append(row, ratioOf(k.P50, x.P50))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	if len(r.Cost) > 0 {
		newTable("cost of a backup (and of its master while the backup is idle)")
		fmt.Fprintln(tw, "impl\trun\tinstances\tinterval\tidle CPU %\tidle wakeups/s\tmaster CPU %\tmaster wakeups/s\tflood pps\tflood CPU %\tflood wakeups/s\tfalse failovers\tdropped in kernel\t")
		for _, c := range r.Cost {
			var drops uint64
			for _, n := range c.KernelDrops {
				drops += n
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.1f\t%.1f\t%.1f\t%.0f\t%d\t%.1f\t%.0f\t%d\t%d of %d\t\n", c.Impl, c.Run, c.Instances, c.Interval,
				c.Idle.CPUPercent(), c.Idle.WakeupsPerSecond(), c.Master.CPUPercent(), c.Master.WakeupsPerSecond(),
				c.FloodRate, c.Flood.CPUPercent(), c.Flood.WakeupsPerSecond(), c.FalseFailovers, drops, c.Forged)
		}
		costSums := r.CostSummaries()
		newTable("idle cost, median (range) over alternating runs")
		fmt.Fprintln(tw, "impl\truns\tinstances\tinterval\tbackup CPU %\tbackup wakeups/s\tmaster CPU %\t")
		for _, s := range costSums {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%v\t%v\t%v\t\n", s.Impl, s.Runs, s.Instances, s.Interval, s.BackupCPU, s.BackupWakeups, s.MasterCPU)
		}
		if goals := CostGoals(costSums); len(goals) > 0 {
			newTable("cost goals, on those medians")
			fmt.Fprintln(tw, "goal\tmeasured\tmet\t")
			for _, g := range goals {
				met := "no"
				if g.Met {
					met = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t\n", g.Goal, g.Got, met)
			}
		}
	}
	if len(r.Probe) > 0 {
		newTable("idle daemons of a pair, with and without fast_liveness (the master's answers run in its XDP: no process is charged)")
		fmt.Fprintln(tw, "impl\tinterval\tfor\tmaster CPU %\tmaster wakeups/s\tbackup CPU %\tbackup wakeups/s\tprobes/s\treplies/s\t")
		for _, p := range r.Probe {
			fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%.2f\t%.0f\t%.2f\t%.0f\t%.0f\t%.0f\t\n", p.Impl, p.Interval, p.Backup.Seconds,
				p.Master.CPUPercent(), p.Master.WakeupsPerSecond(), p.Backup.CPUPercent(), p.Backup.WakeupsPerSecond(),
				float64(p.Probes)/p.Counted, float64(p.Replies)/p.Counted)
		}
	}
	if len(r.Starve) > 0 {
		newTable("busy hosts: takeovers and the master's advert gaps as the backup received them")
		fmt.Fprintln(tw, "impl\tload\tinstances\tinterval\tfor\ttakeovers\tgap p50\tp99\tp99.9\tmax\tMaster_Down\t")
		for _, s := range r.Starve {
			load := s.Variant
			if m := s.Memory; m != nil {
				load = fmt.Sprintf("%s (%.1f GiB reserved, %.1f filled, %.2f left; %d pages reclaimed, %v waiting)", load,
					float64(m.Reserved)/(1<<30), float64(m.Filled)/(1<<30), float64(m.MinAvailable)/(1<<30), m.Reclaimed, m.Stalled.Round(time.Millisecond))
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%v\t%d\t%s\t%s\t%s\t%s\t%s\t\n", s.Impl, load, s.Instances, s.Interval, s.Duration,
				s.Takeovers, ms(s.GapP50), ms(s.GapP99), ms(s.GapP999), ms(s.GapMax), ms(s.MasterDown))
		}
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "\nskipped: %s\n", s)
	}
	return nil
}

func ratioOf(k, x time.Duration) string {
	if x <= 0 || k <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(k)/float64(x), 'f', 1, 64) + "x"
}

// WriteJSON writes the report, its summaries included.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(struct {
		*Report
		Summaries     []Summary     `json:"summaries"`
		CostSummaries []CostSummary `json:"cost_summaries,omitempty"`
		CostGoals     []CostGoal    `json:"cost_goals,omitempty"`
	}{r, r.Summaries(), r.CostSummaries(), CostGoals(r.CostSummaries())})
}

// WriteCSV writes one row per trial and metric: impl, mode, interval, trial,
// metric, value in milliseconds.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"impl", "mode", "interval", "trial", "metric", "ms"})
	for _, res := range r.Results {
		for _, m := range Metrics {
			if v, ok := res.Metrics[m]; ok {
				cw.Write([]string{res.Impl, res.Mode, res.Interval, strconv.Itoa(res.Trial), m, ms(v)})
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteSVG draws the client-observed outage as a CDF, a line per
// implementation and interval over all modes, on a logarithmic time axis.
func (r *Report) WriteSVG(w io.Writer) error {
	type series struct {
		name   string
		impl   string
		values []float64 // ms, sorted
	}
	var all []*series
	idx := map[string]*series{}
	for _, res := range r.Results {
		v, ok := res.Metrics[MetricOutage]
		if !ok {
			continue
		}
		name := res.Impl + " " + res.Interval
		s := idx[name]
		if s == nil {
			s = &series{name: name, impl: res.Impl}
			idx[name] = s
			all = append(all, s)
		}
		s.values = append(s.values, max(float64(v)/float64(time.Millisecond), 0.1))
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range all {
		slices.Sort(s.values)
		lo, hi = min(lo, s.values[0]), max(hi, s.values[len(s.values)-1])
	}
	if len(all) == 0 {
		lo, hi = 1, 10
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	const W, H, left, right, top, bottom = 720, 420, 60, 200, 30, 50
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	x := func(v float64) float64 {
		return left + pw*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	y := func(f float64) float64 { return top + ph*(1-f) }
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">Client-observed outage, CDF over all failure modes (xvrrp bench)</text>`+"\n", left)
	for d := lo; d <= hi*1.0001; d *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(d), top, x(d), H-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", x(d), H-bottom+16, d)
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(f), W-right, y(f))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(f)+4, f)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">outage (ms, log scale)</text>`+"\n", left+pw/2, H-12)
	fmt.Fprintf(&b, `<text x="14" y="%.1f" transform="rotate(-90 14 %.1f)" text-anchor="middle">fraction of trials</text>`+"\n", top+ph/2, top+ph/2)
	ivColor := map[string]string{}
	for i, s := range all {
		iv := strings.TrimPrefix(s.name, s.impl+" ")
		col, ok := ivColor[iv]
		if !ok {
			col = colors[len(ivColor)%len(colors)]
			ivColor[iv] = col
		}
		dash := ""
		if s.impl != Xvrrp {
			dash = ` stroke-dasharray="6 4"`
		}
		// A step function: at each value the fraction rises by 1/n.
		pts := []string{fmt.Sprintf("%.1f,%.1f", x(lo), y(0))}
		n := float64(len(s.values))
		for j, v := range s.values {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(v), y(float64(j)/n)), fmt.Sprintf("%.1f,%.1f", x(v), y(float64(j+1)/n)))
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(hi), y(1)))
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"><title>%s</title></polyline>`+"\n", col, dash, strings.Join(pts, " "), xmlEscape(s.name))
		ly := top + 10 + 18*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", W-right+12, ly, W-right+40, ly, col, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s (n=%d)</text>`+"\n", W-right+46, ly+4, xmlEscape(s.name), len(s.values))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
