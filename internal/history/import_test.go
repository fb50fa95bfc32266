package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// This file re-implements the parsing half of OpenDMARC 1.4.2's
// opendmarc-import (reports/opendmarc-import.in, as Debian installs it in
// /usr/sbin), line for line, and the checks its INSERTs meet in MySQL
// (db/schema.mysql, strict mode), so that every build checks our output
// imports, with or without Perl. perl_test.go runs the real script.

// pv is a Perl scalar: nil is undef.
type pv = *string

func def(s string) pv { return &s }

// importedSig is one signatures row before the id lookups.
type importedSig struct {
	domain, selector, result pv
	errFlag                  int
}

// importedMsg is what update_db() sees for one record.
type importedMsg struct {
	line                                               int // the lineno update_db logs
	action, adkim, alignDKIM, alignSPF, arc, arcPolicy pv
	aspf, envdomain, fdomain, ipaddr, jobid, p, pct    pv
	pdomain, policy, received, reporter, sp, spf       pv
	sigs                                               []importedSig
	arcData                                            []map[string]any
	rua                                                []string
	sigcount                                           int
}

// importResult is the outcome of reading one history file.
type importResult struct {
	msgs     []importedMsg // records update_db would insert
	dropped  []string      // records update_db would silently skip, and why
	warnings []string      // what the script prints to stderr
}

// perlSplit is Perl's split / /, $s, limit: on every single space, keeping
// empty fields; an empty string gives no field at all; limit 0 strips
// trailing empty fields.
func perlSplit(s string, limit int) []string {
	if s == "" {
		return nil
	}
	var f []string
	if limit > 0 {
		f = strings.SplitN(s, " ", limit)
	} else {
		f = strings.Split(s, " ")
		for len(f) > 0 && f[len(f)-1] == "" {
			f = f[:len(f)-1]
		}
	}
	return f
}

func at(f []string, i int) pv {
	if i < len(f) {
		return def(f[i])
	}
	return nil
}

func lc(v pv) pv {
	if v == nil {
		return def("") // lc(undef) is "" (with a warning under use warnings)
	}
	return def(strings.ToLower(*v))
}

// importHistory reads a history file as opendmarc-import's main loop does.
func importHistory(r io.Reader) importResult {
	var (
		res                      importResult
		cur                      importedMsg
		serialized               []string
		dkimSelector, dkimResult pv
		lineno                   int
		warnUndef                = func(what string) {
			res.warnings = append(res.warnings, fmt.Sprintf("line %d: uninitialized value in %s", lineno, what))
		}
		updateDB         func()
		resetAfterUpdate = func() { cur = importedMsg{}; serialized = nil }
		sc               = bufio.NewScanner(r)
	)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	updateDB = func() {
		cur.line = lineno
		// get_table_id returns undef for undef or "-", and update_db
		// returns without a word when any of these is undef.
		for _, c := range []struct {
			name string
			v    pv
		}{{"reporter", cur.reporter}, {"from", cur.fdomain}, {"mfrom", cur.envdomain}, {"pdomain", cur.pdomain}, {"ipaddr", cur.ipaddr}} {
			if c.v == nil || *c.v == "-" {
				res.dropped = append(res.dropped, fmt.Sprintf("record ending at line %d: %s missing", lineno, c.name))
				return
			}
		}
		res.msgs = append(res.msgs, cur)
	}
	for sc.Scan() {
		lineno++
		line := sc.Text() // chomp
		f := perlSplit(line, 3)
		if len(f) == 0 { // key undef: skip
			continue
		}
		key, value, data := f[0], at(f, 1), at(f, 2)
		if data != nil && len(*data) > 0 {
			if strings.HasPrefix(*data, "json:") {
				serialized = strings.SplitN(*data, ":", 2)
			} else {
				d := perlSplit(*data, 0)
				dkimSelector, dkimResult = at(d, 0), at(d, 1)
			}
		}
		switch key {
		case "action":
			cur.action = value
		case "adkim":
			cur.adkim = value
		case "align_dkim":
			cur.alignDKIM = value
		case "align_spf":
			cur.alignSPF = value
		case "arc":
			cur.arc = value
		case "arc_policy":
			cur.arcPolicy = value
			if len(serialized) == 2 {
				var v any
				if err := json.Unmarshal([]byte(serialized[1]), &v); err != nil {
					// decode_json dies: the whole import stops here.
					res.warnings = append(res.warnings, fmt.Sprintf("line %d: decode_json died: %v", lineno, err))
					return res
				}
				list, ok := v.([]any)
				if !ok {
					res.warnings = append(res.warnings, fmt.Sprintf("line %d: Not an ARRAY reference", lineno))
					return res
				}
				cur.arcData = nil
				for _, e := range list {
					m, ok := e.(map[string]any)
					if !ok {
						res.warnings = append(res.warnings, fmt.Sprintf("line %d: Not a HASH reference", lineno))
						return res
					}
					cur.arcData = append(cur.arcData, m)
				}
			} else {
				// @arc_policy_data = []: one element, an empty array
				// reference, which update_db then inserts as instance undef.
				res.warnings = append(res.warnings, fmt.Sprintf("line %d: arc_policy without json data", lineno))
			}
		case "aspf":
			cur.aspf = value
		case "dkim":
			if dkimResult == nil {
				warnUndef("string eq (dkim result)")
			}
			e := 0
			if dkimResult != nil && (*dkimResult == "4" || *dkimResult == "5") {
				e = 1
			}
			cur.sigs = append(cur.sigs, importedSig{domain: value, selector: dkimSelector, result: dkimResult, errFlag: e})
			cur.sigcount++
		case "from":
			if value == nil {
				warnUndef("lc (from)")
			}
			cur.fdomain = lc(value)
		case "job":
			if cur.jobid != nil {
				updateDB()
				resetAfterUpdate()
			}
			cur.jobid = value
		case "ipaddr":
			cur.ipaddr = value
		case "mfrom":
			if value == nil {
				warnUndef("lc (mfrom)")
			}
			cur.envdomain = lc(value)
		case "p":
			cur.p = value
		case "pct":
			cur.pct = value
		case "pdomain":
			if value == nil {
				warnUndef("lc (pdomain)")
			}
			cur.pdomain = lc(value)
		case "policy":
			cur.policy = value
		case "received":
			cur.received = value
		case "reporter":
			cur.reporter = value
		case "rua":
			if value == nil {
				warnUndef("string ne (rua)")
			} else if *value != "-" {
				cur.rua = append(cur.rua, *value)
			}
		case "sp":
			cur.sp = value
		case "spf":
			cur.spf = value
		default:
			res.warnings = append(res.warnings, fmt.Sprintf("unknown key '%s' at line %d", key, lineno))
		}
	}
	if cur.jobid != nil {
		updateDB()
	}
	return res
}

// column checks what MySQL in strict mode says to a value for an integer
// column of db/schema.mysql.
func column(name string, v pv, lo, hi int) error {
	if v == nil {
		return fmt.Errorf("Column '%s' cannot be null", name)
	}
	n, err := strconv.Atoi(*v)
	if err != nil {
		return fmt.Errorf("Incorrect integer value: '%s' for column '%s'", *v, name)
	}
	if n < lo || n > hi {
		return fmt.Errorf("Out of range value for column '%s': %d", name, n)
	}
	return nil
}

// sqlErrors lists what the INSERT INTO messages, INSERT INTO signatures and
// UPDATE requests of update_db would fail on.
func (m importedMsg) sqlErrors() []error {
	const (
		tiny  = 127
		utiny = 255
	)
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if m.jobid == nil {
		add(fmt.Errorf("Column 'jobid' cannot be null"))
	} else if len(*m.jobid) > 128 {
		add(fmt.Errorf("Data too long for column 'jobid'"))
	}
	// date is FROM_UNIXTIME(received): NULL unless a number.
	add(column("date", m.received, 0, 1<<31-1))
	add(column("policy", m.policy, 0, utiny))
	add(column("disp", m.action, 0, utiny))
	add(column("spf", m.spf, -tiny-1, tiny))
	add(column("align_spf", m.alignSPF, 0, utiny))
	add(column("align_dkim", m.alignDKIM, 0, utiny))
	add(column("arc", m.arc, 0, utiny))
	add(column("arc_policy", m.arcPolicy, 0, utiny))
	if m.sigcount > utiny {
		add(fmt.Errorf("Out of range value for column 'sigcount'"))
	}
	for _, s := range m.sigs {
		add(column("signatures.pass", s.result, 0, utiny))
	}
	for _, a := range m.arcData {
		if _, ok := a["i"].(float64); !ok {
			add(fmt.Errorf("Column 'instance' cannot be null"))
		}
	}
	add(column("requests.adkim", m.adkim, -tiny-1, tiny))
	add(column("requests.aspf", m.aspf, -tiny-1, tiny))
	add(column("requests.policy", m.p, -tiny-1, tiny))
	add(column("requests.spolicy", m.sp, -tiny-1, tiny))
	add(column("requests.pct", m.pct, -tiny-1, tiny))
	return errs
}

func str(v pv) string {
	if v == nil {
		return "<undef>"
	}
	return *v
}

// checkImported compares what the importer took from a record with the
// record itself.
func checkImported(t *testing.T, name string, m importedMsg, r Record) {
	t.Helper()
	for _, err := range m.sqlErrors() {
		t.Errorf("%s: MySQL would refuse: %v", name, err)
	}
	want := map[string]string{
		"job":        r.JobID,
		"reporter":   r.Reporter,
		"received":   strconv.FormatInt(r.Received.Unix(), 10),
		"ipaddr":     ipString(r.IP),
		"from":       strings.ToLower(r.From),
		"mfrom":      strings.ToLower(r.MailFrom),
		"pdomain":    strings.ToLower(r.PolicyDomain),
		"policy":     strconv.Itoa(PolicyCode(r.Result, r.Requested)),
		"action":     strconv.Itoa(r.Action.Code()),
		"spf":        strconv.Itoa(ResultCode(r.SPF)),
		"align_dkim": strconv.Itoa(r.AlignDKIM.Code()),
		"align_spf":  strconv.Itoa(r.AlignSPF.Code()),
		"pct":        strconv.Itoa(r.Pct),
		"adkim":      strconv.Itoa(TagCode(r.ADKIM)),
		"aspf":       strconv.Itoa(TagCode(r.ASPF)),
		"p":          strconv.Itoa(TagCode(r.P)),
		"sp":         strconv.Itoa(TagCode(r.SP)),
		"arc_policy": strconv.Itoa(arcPolicyCode(r.ARCPolicyPass)),
	}
	if r.JobID == "" {
		want["job"] = UnknownJobID
	}
	if r.PolicyDomain == "" {
		want["pdomain"] = strings.ToLower(r.From)
	}
	got := map[string]pv{
		"job": m.jobid, "reporter": m.reporter, "received": m.received, "ipaddr": m.ipaddr,
		"from": m.fdomain, "mfrom": m.envdomain, "pdomain": m.pdomain, "policy": m.policy,
		"action": m.action, "spf": m.spf, "align_dkim": m.alignDKIM, "align_spf": m.alignSPF,
		"pct": m.pct, "adkim": m.adkim, "aspf": m.aspf, "p": m.p, "sp": m.sp, "arc_policy": m.arcPolicy,
	}
	for k, w := range want {
		if !strings.ContainsAny(w, " \t\r\n") && str(got[k]) != w {
			t.Errorf("%s: %s imported as %q, want %q", name, k, str(got[k]), w)
		}
	}
	var sigs []DKIM
	for _, d := range r.DKIM {
		if d.Domain != "" {
			sigs = append(sigs, d)
		}
	}
	if len(m.sigs) != len(sigs) || m.sigcount != len(sigs) {
		t.Errorf("%s: %d signatures (sigcount %d), want %d", name, len(m.sigs), m.sigcount, len(sigs))
	} else {
		for i, s := range sigs {
			sel := s.Selector
			if sel == "" {
				sel = "-"
			}
			code := strconv.Itoa(ResultCode(s.Result))
			if !strings.ContainsAny(s.Domain+sel, " \t\r\n") && (str(m.sigs[i].domain) != s.Domain || str(m.sigs[i].selector) != sel) {
				t.Errorf("%s: signature %d imported as %s/%s, want %s/%s", name, i, str(m.sigs[i].domain), str(m.sigs[i].selector), s.Domain, sel)
			}
			if str(m.sigs[i].result) != code {
				t.Errorf("%s: signature %d result %s, want %s", name, i, str(m.sigs[i].result), code)
			}
		}
	}
	if len(m.arcData) != len(r.ARCSeals) {
		t.Errorf("%s: %d ARC seals imported, want %d", name, len(m.arcData), len(r.ARCSeals))
	} else {
		for i, s := range r.ARCSeals {
			a := m.arcData[i]
			if a["i"] != float64(s.Instance) || a["d"] != s.Domain || a["s"] != s.Selector || a["ip"] != s.ClientIP {
				t.Errorf("%s: ARC seal %d imported as %v, want %+v", name, i, a, s)
			}
		}
	}
	var rua []string
	for _, u := range r.RUA {
		if u != "" && !strings.ContainsAny(u, " \t\r\n") {
			rua = append(rua, u)
		}
	}
	if len(rua) == len(r.RUA) && strings.Join(m.rua, ",") != strings.Join(rua, ",") {
		t.Errorf("%s: rua %q, want %q", name, m.rua, rua)
	}
}

// TestImportParser feeds every golden record, one after the other as in a
// real file, through the importer's parser.
func TestImportParser(t *testing.T) {
	cs := cases()
	var file bytes.Buffer
	for _, c := range cs {
		file.Write(Format(c.rec))
	}
	res := importHistory(&file)
	for _, w := range res.warnings {
		t.Errorf("importer would print: %s", w)
	}
	for _, d := range res.dropped {
		t.Errorf("importer would drop: %s", d)
	}
	if len(res.msgs) != len(cs) {
		t.Fatalf("%d messages imported, want %d", len(res.msgs), len(cs))
	}
	for i, c := range cs {
		checkImported(t, c.name, res.msgs[i], c.rec)
	}
}

// TestImportParserSeesTrouble shows the re-implementation is not a rubber
// stamp: the faults it exists to catch are caught.
func TestImportParserSeesTrouble(t *testing.T) {
	good := string(Format(cases()[0].rec))
	bad := map[string]string{
		"unknown key":     good + "rcpt someone@example.net\n",
		"dropped (mfrom)": strings.Replace(good, "mfrom bounce.example.com\n", "", 1),
		"dropped (ip -)":  strings.Replace(good, "ipaddr 192.0.2.25", "ipaddr -", 1),
		"null policy":     strings.Replace(good, "policy 15\n", "", 1),
		"bad json":        strings.Replace(good, "json:[]", "json:[{ i: 1 }]", 1),
		"unsigned dkim":   strings.Replace(good, "dkim example.com sel1 0", "dkim example.com sel1 -1", 1),
	}
	for name, in := range bad {
		res := importHistory(strings.NewReader(in))
		var errs []error
		for _, m := range res.msgs {
			errs = append(errs, m.sqlErrors()...)
		}
		if len(res.warnings)+len(res.dropped)+len(errs) == 0 {
			t.Errorf("%s: not noticed", name)
		}
	}
	// A blank line between records is harmless to the importer (OpenDMARC
	// writes none and neither do we).
	res := importHistory(strings.NewReader(good + "\n" + good))
	if len(res.msgs) != 2 || len(res.warnings) != 0 {
		t.Errorf("blank line between records: %d messages, warnings %v", len(res.msgs), res.warnings)
	}
}
