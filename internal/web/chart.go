package web

import (
	"fmt"
	"math"
	"strings"
)

// The chart's colours: Okabe and Ito's palette, told apart with the
// common kinds of colour blindness; the legend and every bar's tooltip
// name them in words besides.
const (
	colorCompliant   = "#009e73" // bluish green
	colorFailed      = "#f0e442" // yellow
	colorQuarantined = "#e69f00" // orange
	colorRejected    = "#d55e00" // vermillion
	colorLine        = "#0072b2" // blue
)

// Chart geometry, in SVG user units (the SVG scales to the page's width).
const (
	chartWidth   = 960
	chartHeight  = 340
	chartLeft    = 64 // room for the message counts
	chartRight   = 56 // room for the percentages
	chartTop     = 16
	chartBottom  = 48 // room for the dates
	chartBarFill = 0.7
)

// chart is the compliance chart of a Summary, computed for the template:
// one stacked bar per day (compliant, failed but delivered, quarantined,
// rejected messages) and a line of the day's compliance in percent.
type chart struct {
	Width, Height int
	Title, Desc   string
	// The plot area.
	Left, Right, Top, Bottom float64
	Bars                     []bar
	YTicks, PctTicks         []tick
	XLabels                  []tick
	Line                     string // polyline points of the compliance line
	Points                   []point
	Legend                   []legendItem
	Empty                    bool
}

type bar struct {
	Date     string // 2006-01-02
	X, W     float64
	Title    string // the day in words, the tooltip
	Segments []segment
}

type segment struct {
	Class string // compliant, failed, quarantined, rejected
	Fill  string
	Y, H  float64
	Value int64
}

type tick struct {
	X, Y  float64
	Label string
}

type point struct {
	X, Y  float64
	Title string
}

type legendItem struct {
	Class, Fill, Label string
	Line               bool
}

// niceStep returns a round step (1, 2 or 5 times a power of ten) for
// about four intervals up to max.
func niceStep(max int64) int64 {
	if max <= 4 {
		return 1
	}
	raw := float64(max) / 4
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return int64(m * p)
		}
	}
	return int64(10 * p)
}

// newChart lays out the chart of s.
func newChart(s Summary) chart {
	c := chart{
		Width: chartWidth, Height: chartHeight,
		Left: chartLeft, Right: chartWidth - chartRight,
		Top: chartTop, Bottom: chartHeight - chartBottom,
	}
	scope := "all domains"
	if s.Domain != "" {
		scope = s.Domain
	}
	c.Title = fmt.Sprintf("DMARC compliance of %s, %s to %s", scope, s.From.Format("2 Jan 2006"), s.To.AddDate(0, 0, -1).Format("2 Jan 2006"))
	c.Legend = []legendItem{
		{"compliant", colorCompliant, "Compliant", false},
		{"failed", colorFailed, "Failed, delivered", false},
		{"quarantined", colorQuarantined, "Quarantined", false},
		{"rejected", colorRejected, "Rejected", false},
		{"compliance", colorLine, "Compliance %", true},
	}
	var top int64
	for _, d := range s.Days {
		top = max(top, d.Messages)
	}
	c.Empty = top == 0
	step := niceStep(top)
	top = max((top+step-1)/step*step, step)
	plotH := c.Bottom - c.Top
	y := func(v int64) float64 { return c.Bottom - float64(v)/float64(top)*plotH }
	pctY := func(f float64) float64 { return c.Bottom - f*plotH }
	for v := int64(0); v <= top; v += step {
		c.YTicks = append(c.YTicks, tick{X: c.Left - 8, Y: y(v), Label: formatInt(v)})
	}
	for p := 0; p <= 100; p += 25 {
		c.PctTicks = append(c.PctTicks, tick{X: c.Right + 8, Y: pctY(float64(p) / 100), Label: fmt.Sprintf("%d%%", p)})
	}

	n := len(s.Days)
	slot := (c.Right - c.Left) / float64(max(n, 1))
	w := slot * chartBarFill
	// Date labels: every day when they fit, else every k-th day.
	every := 1
	for slot*float64(every) < 44 {
		every++
	}
	var line []string
	for i, d := range s.Days {
		x := c.Left + slot*float64(i) + (slot-w)/2
		b := bar{Date: d.Date.Format("2006-01-02"), X: x, W: w}
		b.Title = fmt.Sprintf("%s: %s messages", d.Date.Format("Mon 2 Jan 2006"), formatInt(d.Messages))
		if d.Messages > 0 {
			b.Title += fmt.Sprintf(", %s compliant (%s), %s failed and delivered, %s quarantined, %s rejected",
				formatInt(d.Compliant), formatPercent(d.Compliance()), formatInt(d.Failed()),
				formatInt(d.Quarantined), formatInt(d.Rejected))
		}
		base := int64(0)
		compliant, failed, quarantined, rejected := d.Parts()
		for _, part := range []struct {
			class, fill string
			v           int64
		}{
			{"compliant", colorCompliant, compliant},
			{"failed", colorFailed, failed},
			{"quarantined", colorQuarantined, quarantined},
			{"rejected", colorRejected, rejected},
		} {
			if part.v == 0 {
				continue
			}
			y0, y1 := y(base), y(base+part.v)
			b.Segments = append(b.Segments, segment{Class: part.class, Fill: part.fill, Y: y1, H: y0 - y1, Value: part.v})
			base += part.v
		}
		c.Bars = append(c.Bars, b)
		if i%every == 0 {
			c.XLabels = append(c.XLabels, tick{X: x + w/2, Y: c.Bottom + 18, Label: d.Date.Format("Jan 2")})
		}
		if d.Messages > 0 {
			p := point{X: x + w/2, Y: pctY(d.Compliance()),
				Title: fmt.Sprintf("%s: %s compliant", d.Date.Format("2 Jan"), formatPercent(d.Compliance()))}
			c.Points = append(c.Points, p)
			line = append(line, fmt.Sprintf("%.1f,%.1f", p.X, p.Y))
		}
	}
	c.Line = strings.Join(line, " ")
	if c.Empty {
		c.Desc = "No reports in these days."
	} else {
		t := s.Totals
		c.Desc = fmt.Sprintf("%s messages in %d days: %s compliant (%s), %s failed and delivered, %s quarantined, %s rejected.",
			formatInt(t.Messages), n, formatInt(t.Compliant), formatPercent(t.Compliance()),
			formatInt(t.Failed()), formatInt(t.Quarantined), formatInt(t.Rejected))
	}
	return c
}

// formatInt writes n with thousands separators: 1,234,567.
func formatInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatPercent writes a share from 0 to 1 as a percentage with one
// decimal, never rounding a partial share to 100% or 0%.
func formatPercent(f float64) string {
	p := f * 100
	switch {
	case f > 0 && p < 0.1:
		return "<0.1%"
	case f < 1 && p >= 99.95:
		return ">99.9%"
	}
	return fmt.Sprintf("%.1f%%", p)
}
