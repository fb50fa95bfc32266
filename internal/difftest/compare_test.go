package difftest

import (
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
)

// tally counts the outcomes of one category.
type tally struct{ equal, allowed, unexpected int }

// compareAll compares each message's verdicts, one subtest per message,
// and logs the summary.
func compareAll(t *testing.T, c corpus, results []result) {
	t.Helper()
	if len(results) != len(c.messages) {
		t.Fatalf("%d verdicts for %d messages", len(results), len(c.messages))
	}
	byCategory := map[string]*tally{}
	var categories []string
	used := map[string]int{}
	var textDiffs []string
	var total tally
	for i, r := range results {
		m := c.messages[i]
		if r.Index != i || r.Name != m.Name {
			t.Fatalf("verdict %d is for %q, message %d is %q", r.Index, r.Name, i, m.Name)
		}
		tl := byCategory[m.Category]
		if tl == nil {
			tl = &tally{}
			byCategory[m.Category] = tl
			categories = append(categories, m.Category)
		}
		od, dd := r.OpenDMARC, r.Dmarcd
		t.Run(m.Name, func(t *testing.T) {
			for who, v := range map[string]verdict{"OpenDMARC": od, "dmarcd": dd} {
				if v.Err != "" {
					tl.unexpected++
					total.unexpected++
					t.Fatalf("%s: %s", who, v.Err)
				}
			}
			if same(od, dd) {
				tl.equal++
				total.equal++
				if od.Text != dd.Text {
					textDiffs = append(textDiffs, fmt.Sprintf("%s: OpenDMARC %q, dmarcd %q", m.Name, od.Text, dd.Text))
				}
				return
			}
			if a := allowed(m, od, dd); a != nil {
				tl.allowed++
				total.allowed++
				used[a.name]++
				t.Logf("allowed difference (%s): OpenDMARC %s; dmarcd %s", a.name, od, dd)
				return
			}
			tl.unexpected++
			total.unexpected++
			t.Errorf("unexpected difference\n%s", describe(m, od, dd))
		})
	}

	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "category\tmessages\tequal\tallowed difference\tunexpected\t\n")
	for _, cat := range categories {
		tl := byCategory[cat]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t\n", cat, tl.equal+tl.allowed+tl.unexpected, tl.equal, tl.allowed, tl.unexpected)
	}
	fmt.Fprintf(w, "all\t%d\t%d\t%d\t%d\t\n", total.equal+total.allowed+total.unexpected, total.equal, total.allowed, total.unexpected)
	w.Flush()
	b.WriteString("\nallow-list entries used:\n")
	for _, a := range allowList {
		fmt.Fprintf(&b, "  %4d  %s [%s]\n", used[a.name], a.name, a.rfc)
	}
	if len(textDiffs) > 0 {
		fmt.Fprintf(&b, "\nequal verdicts whose reply text differs (%d, not compared):\n", len(textDiffs))
		for _, d := range textDiffs {
			b.WriteString("  " + d + "\n")
		}
	}
	t.Logf("OpenDMARC and dmarcd on %d messages:\n%s", len(results), b.String())
}

// describe is the failure message for an unexpected difference: all one
// needs to reproduce it by hand.
func describe(m message, od, dd verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  client %s, HELO %s, MAIL FROM <%s>\n", m.Client, m.Helo, m.MailFrom)
	for _, h := range m.Headers {
		fmt.Fprintf(&b, "  | %s: %s\n", h[0], h[1])
	}
	if len(m.Features) > 0 {
		fmt.Fprintf(&b, "  features: %s\n", strings.Join(m.Features, ", "))
	}
	for _, x := range []struct {
		who string
		v   verdict
	}{{"OpenDMARC", od}, {"dmarcd", dd}} {
		fmt.Fprintf(&b, "  %-9s %s", x.who, x.v)
		if x.v.Text != "" {
			fmt.Fprintf(&b, " (reply %q)", x.v.Text)
		}
		if x.v.Removed > 0 {
			fmt.Fprintf(&b, " (removed %d Authentication-Results)", x.v.Removed)
		}
		b.WriteString("\n")
		for _, ins := range x.v.Inserted {
			fmt.Fprintf(&b, "            inserted Authentication-Results: %s\n", ins)
		}
	}
	return b.String()
}
