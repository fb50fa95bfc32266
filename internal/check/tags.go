package check

import (
	"strconv"
	"strings"

	"github.com/dmarcd/dmarcd/dmarc"
)

// specTags are the tags each spec defines, in the order the table shows
// them.
var specTags = map[dmarc.Spec][]string{
	dmarc.RFC9989: {"v", "p", "sp", "np", "adkim", "aspf", "fo", "psd", "t", "rua", "ruf"},
	dmarc.RFC7489: {"v", "p", "sp", "adkim", "aspf", "pct", "fo", "rf", "ri", "rua", "ruf"},
}

// ignoredNote says why a tag written in the record has no effect under
// spec.
func ignoredNote(name string, spec dmarc.Spec) string {
	switch {
	case spec == dmarc.RFC9989 && (name == "pct" || name == "rf" || name == "ri"):
		return "ignored: removed by RFC 9989"
	case spec == dmarc.RFC7489 && (name == "np" || name == "psd" || name == "t"):
		return "ignored: an RFC 9989 tag, unknown to RFC 7489"
	}
	return "ignored: unknown tag"
}

// tagTable lists every tag of the spec with its effective value, then the
// other tags the record holds.
func tagTable(rec *dmarc.Record) []TagValue {
	names := specTags[rec.Spec]
	rows := make([]TagValue, 0, len(names)+2)
	known := make(map[string]bool, len(names))
	for _, name := range names {
		known[name] = true
		row := TagValue{Name: name}
		written, present := rec.Tag(name)
		row.Effective, row.Note = effective(rec, name, present)
		if present {
			row.Value = &written
			if row.Note == "" && !sameValue(name, written, row.Effective) {
				row.Note = "written " + strconv.Quote(written)
			}
		} else {
			row.Default = true
		}
		rows = append(rows, row)
	}
	for _, t := range rec.Tags {
		if known[t.Name] {
			continue
		}
		v := t.Value
		note := "written " + strconv.Quote(v) + ", " + ignoredNote(t.Name, rec.Spec)
		rows = append(rows, TagValue{Name: t.Name, Value: &v, Note: note})
	}
	return rows
}

// effective returns the value of a tag of the spec that applies, and a note
// when it is not the value as written.
func effective(rec *dmarc.Record, name string, present bool) (string, string) {
	def := func(v, note string) (string, string) {
		if present {
			return v, ""
		}
		return v, note
	}
	switch name {
	case "v":
		return "DMARC1", ""
	case "p":
		switch {
		case rec.PFallback:
			return rec.P.String(), "applied as p=none: the record's p, sp or np is invalid and it has a valid rua"
		case rec.P == dmarc.PolicyUnset:
			return "", "no valid p: the record is unusable"
		}
		return def(rec.P.String(), "missing")
	case "sp":
		if rec.SP == dmarc.PolicyUnset {
			return rec.P.String(), "default: same as p"
		}
		return rec.SP.String(), ""
	case "np":
		switch {
		case rec.NP != dmarc.PolicyUnset:
			return rec.NP.String(), ""
		case rec.SP != dmarc.PolicyUnset:
			return rec.SP.String(), "default: same as sp"
		}
		return rec.P.String(), "default: same as p"
	case "adkim":
		return def(rec.ADKIM.String(), "default (relaxed)")
	case "aspf":
		return def(rec.ASPF.String(), "default (relaxed)")
	case "fo":
		return def(rec.FO.String(), "default")
	case "psd":
		return def(rec.PSD.String(), "default")
	case "t":
		if rec.Testing {
			return "y", ""
		}
		return def("n", "default")
	case "pct":
		return def(strconv.Itoa(rec.Pct), "default")
	case "rf":
		return def(strings.Join(rec.RF, ":"), "default")
	case "ri":
		return def(strconv.FormatUint(uint64(rec.RI), 10), "default (one day)")
	case "rua":
		return def(joinURIs(rec.RUA), "default: no aggregate reports")
	case "ruf":
		return def(joinURIs(rec.RUF), "default: no failure reports")
	}
	return "", ""
}

func joinURIs(us []dmarc.URI) string {
	raw := make([]string, len(us))
	for i, u := range us {
		raw[i] = u.Raw
	}
	return strings.Join(raw, ",")
}

// sameValue reports whether the value written reads as the effective value
// shown: equal but for case, and for rua and ruf but for the blanks around
// commas.
func sameValue(name, written, eff string) bool {
	if name == "rua" || name == "ruf" {
		parts := strings.Split(written, ",")
		for i, p := range parts {
			parts[i] = strings.Trim(p, " \t")
		}
		written = strings.Join(parts, ",")
	}
	return strings.EqualFold(written, eff)
}
