package milter

import "strings"

// headerCounts counts the header fields RFC 5322 §3.6 limits.
type headerCounts [len(countedFields)]int

// countedFields are the fields with a count rule (RFC 5322 §3.6), in the
// order OpenDMARC's RequiredHeaders checks them, plus Sender, which
// OpenDMARC 1.4 does not count; min is how many must be present.
var countedFields = [...]struct {
	name string
	min  int
}{
	{"From", 1}, {"Date", 1}, {"Sender", 0}, {"Reply-To", 0}, {"To", 0}, {"Cc", 0}, {"Bcc", 0},
	{"Message-Id", 0}, {"In-Reply-To", 0}, {"References", 0}, {"Subject", 0},
}

func (c *headerCounts) add(name string) {
	for i, f := range countedFields {
		if strings.EqualFold(name, f.name) {
			c[i]++
			return
		}
	}
}

// violation names the first count rule the message breaks, "" if none.
func (c *headerCounts) violation() string {
	for i, f := range countedFields {
		switch {
		case f.min == 1 && c[i] != 1:
			return "not exactly one " + f.name + " field"
		case c[i] > 1:
			return "multiple " + f.name + " fields"
		}
	}
	return ""
}
