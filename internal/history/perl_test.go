package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dmarcd/dmarcd/internal/testenv"
)

// importScript finds OpenDMARC's opendmarc-import and checks that Perl has
// the modules it uses (Debian: opendmarc, libswitch-perl, libjson-perl;
// DBI and DBD::mysql are replaced by testdata/fakedbi). It skips the test
// otherwise when run by hand. opendmarc does not depend on those modules,
// so .ci/run installs them, and in CI
// (DMARCD_CI set) a missing piece fails the test instead of skipping it.
func importScript(t *testing.T) string {
	t.Helper()
	skip := t.Skipf
	if testenv.InCI() {
		skip = t.Fatalf
	}
	script := os.Getenv("DMARCD_OPENDMARC_IMPORT")
	if script == "" {
		if p, err := exec.LookPath("opendmarc-import"); err == nil {
			script = p
		} else {
			script = "/usr/sbin/opendmarc-import"
		}
	}
	if _, err := os.Stat(script); err != nil {
		skip("opendmarc-import not found (%v): install Debian's opendmarc or set DMARCD_OPENDMARC_IMPORT", err)
	}
	if _, err := exec.LookPath("perl"); err != nil {
		skip("perl not found")
	}
	out, err := exec.Command("perl", "-MSwitch", "-MJSON", "-MJSON::PP", "-e", "1").CombinedOutput()
	if err != nil {
		skip("Perl modules opendmarc-import needs are missing (apt-get install libswitch-perl libjson-perl): %s", bytes.TrimSpace(out))
	}
	return script
}

// fakeDB is the fake DBI's dump: every table, and every statement run.
type fakeDB struct {
	Tables map[string][]map[string]any `json:"tables"`
	Log    []string                    `json:"log"`
}

func (db *fakeDB) row(table string, id any) map[string]any {
	for _, r := range db.Tables[table] {
		if fmt.Sprint(r["id"]) == fmt.Sprint(id) {
			return r
		}
	}
	return nil
}

// name returns the name column of table's row id, or "<none>".
func (db *fakeDB) name(table, col string, id any) string {
	r := db.row(table, id)
	if r == nil {
		return "<none>"
	}
	return fmt.Sprint(r[col])
}

func num(v any) string { return fmt.Sprint(v) }

// runImport runs the real opendmarc-import on path against the fake DBI and
// returns the database it left.
func runImport(t *testing.T, script, path string) *fakeDB {
	t.Helper()
	dump := filepath.Join(t.TempDir(), "db.json")
	fake, err := filepath.Abs(filepath.Join("testdata", "fakedbi"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("perl", "-I", fake, script, "--input="+path)
	cmd.Env = append(os.Environ(), "FAKEDBI_DUMP="+dump)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("opendmarc-import: %v\nstderr:\n%s", err, stderr.String())
	}
	// The script says nothing on success: any line is an "unknown key", a
	// "failed to insert" or a Perl warning about an undefined value.
	if stderr.Len() > 0 || stdout.Len() > 0 {
		t.Errorf("opendmarc-import printed:\n%s%s", stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("fake DBI left no dump: %v", err)
	}
	var db fakeDB
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&db); err != nil {
		t.Fatal(err)
	}
	for _, l := range db.Log {
		if strings.HasPrefix(l, "ERROR") {
			t.Errorf("database refused: %s", l)
		}
	}
	return &db
}

// TestOpenDMARCImport writes every golden record with a Writer and runs
// Debian's real opendmarc-import on the file, with DBI replaced by an
// in-memory fake of db/schema.mysql that refuses what strict MySQL would.
// Then it reads the rows back and compares them with the records.
func TestOpenDMARCImport(t *testing.T) {
	script := importScript(t)
	path := filepath.Join(t.TempDir(), "opendmarc.dat")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	cs := cases()
	for _, c := range cs {
		if err := w.Write(c.rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db := runImport(t, script, path)

	msgs := db.Tables["messages"]
	if len(msgs) != len(cs) {
		t.Fatalf("%d messages in the database, want %d", len(msgs), len(cs))
	}
	lastReq := map[string]Record{} // the requests row reflects the last record per From domain
	for i, c := range cs {
		r, m := c.rec, msgs[i]
		name := c.name
		job := r.JobID
		if job == "" {
			job = UnknownJobID
		}
		pdomain := r.PolicyDomain
		if pdomain == "" {
			pdomain = r.From
		}
		plain := !strings.ContainsAny(job+r.From+r.MailFrom, " \t\r\n")
		want := map[string]string{
			"date":       strconv.FormatInt(r.Received.Unix(), 10),
			"policy":     strconv.Itoa(PolicyCode(r.Result, r.Requested)),
			"disp":       strconv.Itoa(r.Action.Code()),
			"spf":        strconv.Itoa(ResultCode(r.SPF)),
			"align_dkim": strconv.Itoa(r.AlignDKIM.Code()),
			"align_spf":  strconv.Itoa(r.AlignSPF.Code()),
			"arc_policy": strconv.Itoa(arcPolicyCode(r.ARCPolicyPass)),
			"reporter":   r.Reporter,
			"ip":         ipString(r.IP),
		}
		got := map[string]string{
			"date": num(m["date"]), "policy": num(m["policy"]), "disp": num(m["disp"]), "spf": num(m["spf"]),
			"align_dkim": num(m["align_dkim"]), "align_spf": num(m["align_spf"]), "arc_policy": num(m["arc_policy"]),
			"reporter": db.name("reporters", "name", m["reporter"]),
			"ip":       db.name("ipaddr", "addr", m["ip"]),
		}
		if plain {
			want["jobid"], got["jobid"] = job, num(m["jobid"])
			want["from_domain"], got["from_domain"] = strings.ToLower(r.From), db.name("domains", "name", m["from_domain"])
			want["env_domain"], got["env_domain"] = strings.ToLower(r.MailFrom), db.name("domains", "name", m["env_domain"])
			want["policy_domain"], got["policy_domain"] = strings.ToLower(pdomain), db.name("domains", "name", m["policy_domain"])
		}
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("%s: messages.%s = %q, want %q", name, k, got[k], want[k])
			}
		}
		checkSignatures(t, db, name, m["id"], r)
		checkARC(t, db, name, m["id"], r)
		if plain {
			lastReq[strings.ToLower(r.From)] = r
		}
	}
	for from, r := range lastReq {
		checkRequest(t, db, from, r)
	}
}

func checkSignatures(t *testing.T, db *fakeDB, name string, msgID any, r Record) {
	t.Helper()
	var got []string
	for _, s := range db.Tables["signatures"] {
		if num(s["message"]) != num(msgID) {
			continue
		}
		sel := "-"
		if num(s["selector"]) != "0" {
			sel = db.name("selectors", "name", s["selector"])
		}
		got = append(got, fmt.Sprintf("%s/%s pass=%s error=%s", db.name("domains", "name", s["domain"]), sel, num(s["pass"]), num(s["error"])))
	}
	var want []string
	for _, d := range r.DKIM {
		if d.Domain == "" {
			continue
		}
		sel := d.Selector
		if sel == "" {
			sel = "-"
		}
		code := ResultCode(d.Result)
		e := 0
		if code == 4 || code == 5 {
			e = 1
		}
		want = append(want, fmt.Sprintf("%s/%s pass=%d error=%d", strings.ToLower(string(appendValue(nil, d.Domain))), string(appendValue(nil, sel)), code, e))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("%s: signatures\n got %q\nwant %q", name, got, want)
	}
}

func checkARC(t *testing.T, db *fakeDB, name string, msgID any, r Record) {
	t.Helper()
	var got, want []string
	for _, s := range db.Tables["arcseals"] {
		if num(s["message"]) == num(msgID) {
			got = append(got, fmt.Sprintf("i=%s d=%s s=%s", num(s["instance"]), db.name("domains", "name", s["domain"]), db.name("selectors", "name", s["selector"])))
		}
	}
	for _, s := range db.Tables["arcauthresults"] {
		if num(s["message"]) == num(msgID) {
			got = append(got, fmt.Sprintf("i=%s ip=%s", num(s["instance"]), s["arc_client_addr"]))
		}
	}
	for _, s := range r.ARCSeals {
		want = append(want, fmt.Sprintf("i=%d d=%s s=%s", s.Instance, strings.ToLower(s.Domain), s.Selector))
	}
	for _, s := range r.ARCSeals {
		want = append(want, fmt.Sprintf("i=%d ip=%s", s.Instance, s.ClientIP))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("%s: ARC rows\n got %q\nwant %q", name, got, want)
	}
}

func checkRequest(t *testing.T, db *fakeDB, from string, r Record) {
	t.Helper()
	var req map[string]any
	for _, q := range db.Tables["requests"] {
		if db.name("domains", "name", q["domain"]) == from {
			req = q
		}
	}
	if req == nil {
		t.Errorf("no requests row for %s", from)
		return
	}
	var rua []string
	for _, u := range r.RUA {
		rua = append(rua, string(appendValue(nil, u)))
	}
	want := fmt.Sprintf("repuri=%s adkim=%d aspf=%d policy=%d spolicy=%d pct=%d",
		strings.Join(rua, ","), TagCode(r.ADKIM), TagCode(r.ASPF), TagCode(r.P), TagCode(r.SP), r.Pct)
	got := fmt.Sprintf("repuri=%s adkim=%s aspf=%s policy=%s spolicy=%s pct=%s",
		req["repuri"], num(req["adkim"]), num(req["aspf"]), num(req["policy"]), num(req["spolicy"]), num(req["pct"]))
	if got != want {
		t.Errorf("requests for %s:\n got %s\nwant %s", from, got, want)
	}
}

// TestOpenDMARCImportFakeRefuses shows the fake database is not a rubber
// stamp: a record missing a NOT NULL column is refused, as MySQL would.
func TestOpenDMARCImportFakeRefuses(t *testing.T) {
	script := importScript(t)
	rec := strings.Replace(string(Format(cases()[0].rec)), "spf 0\n", "", 1)
	path := filepath.Join(t.TempDir(), "bad.dat")
	if err := os.WriteFile(path, []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(t.TempDir(), "db.json")
	fake, _ := filepath.Abs(filepath.Join("testdata", "fakedbi"))
	cmd := exec.Command("perl", "-I", fake, script, "--input="+path)
	cmd.Env = append(os.Environ(), "FAKEDBI_DUMP="+dump)
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "failed to insert message: Column 'spf' cannot be null") {
		t.Errorf("a record without spf was not refused; output:\n%s", out)
	}
}
