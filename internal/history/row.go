package history

import (
	"strings"

	"github.com/dmarcd/dmarcd/report"
)

// FromRow builds the history record of an evaluated message from its
// aggregate report row, the MTA's queue id and the reporter name (the {j}
// macro, or "" for the host name). The mapping:
//
//   - Received is row.Time, IP row.SourceIP, From row.HeaderFrom, MailFrom
//     row.EnvelopeFrom ("" for the null sender).
//   - SPF is the result of row.SPF[0] (the one result DMARC used), "" (-1)
//     when there is none; DKIM is row.DKIM as it is.
//   - Result is row.Result. Requested is the published sp when the record
//     was inherited (found at another domain than the From domain) and has
//     one, else p: what OpenDMARC 1.4.2 enforces. It knows no np, so for a
//     non-existent subdomain under RFC 9989 the policy line says sp or p
//     while the action follows np.
//   - Without a policy record (row.Published.Domain ""), PolicyDomain is
//     the From domain and pct, adkim, aspf, p, sp and both alignments are
//     0, as OpenDMARC writes them. With one, they are the published values
//     (a record without a usable p counts as p=none) and the alignments are
//     row.DKIMAligned and row.SPFAligned, Unchecked unless the result is
//     pass or fail.
//   - Action follows row.Action: reject → ActionReject, tempfail →
//     ActionTempfail, quarantine → ActionQuarantine, else ActionAccept;
//     rows without an Action fall back to row.Disposition.
//   - ARC is row.ARC (a trusted upstream arc= result, else dmarcd's own
//     ARC check), written as its ARES code, 7 (fail) when there is none
//     as OpenDMARC writes it; arc_policy passes when a trusted sealer
//     overrode the policy (a trusted_forwarder override). The ARC-Seal
//     list of arc_policy stays empty: the row does not carry the seals.
//
// Row carries no recipients and neither does the history file.
func FromRow(row report.Row, jobID, reporter string) Record {
	r := Record{
		JobID:    jobID,
		Reporter: reporter,
		Received: row.Time,
		IP:       row.SourceIP,
		From:     row.HeaderFrom,
		MailFrom: row.EnvelopeFrom,
		Result:   row.Result,
		ARC:      row.ARC,
	}
	for _, o := range row.Overrides {
		if o.Type == report.OverrideTrustedForwarder {
			r.ARCPolicyPass = true // a trusted sealer's results overrode the policy
		}
	}
	for _, d := range row.DKIM {
		r.DKIM = append(r.DKIM, DKIM{Domain: d.Domain, Selector: d.Selector, Result: d.Result})
	}
	if len(row.SPF) > 0 {
		r.SPF = row.SPF[0].Result
	}
	action := row.Action
	if action == "" {
		action = row.Disposition
	}
	switch action {
	case "reject":
		r.Action = ActionReject
	case "tempfail":
		r.Action = ActionTempfail
	case "quarantine":
		r.Action = ActionQuarantine
	default:
		r.Action = ActionAccept
	}

	pub := row.Published
	if pub.Domain == "" {
		r.PolicyDomain = row.HeaderFrom
		return r
	}
	r.PolicyDomain = pub.Domain
	r.RUA = append([]string(nil), pub.RUA...)
	r.Pct = pub.Pct
	r.ADKIM, r.ASPF = orDefault(pub.ADKIM, "r"), orDefault(pub.ASPF, "r")
	r.P, r.SP = orDefault(pub.P, "none"), pub.SP
	r.Requested = r.P
	if r.SP != "" && !strings.EqualFold(pub.Domain, row.HeaderFrom) {
		r.Requested = r.SP
	}
	if row.Result == "pass" || row.Result == "fail" {
		r.AlignDKIM = AlignmentOf(row.DKIMAligned)
		r.AlignSPF = AlignmentOf(row.SPFAligned)
	}
	return r
}

// Wanted says whether a row goes to the history file, after OpenDMARC's
// RecordAllMessages (recordAll): with it every evaluated message is
// written; without it only those whose From domain has a policy record,
// which DNS failures count as (OpenDMARC writes those). A permerror (a
// record that could not be used) is written only with recordAll:
// OpenDMARC 1.4.2 writes no line for it at all, dmarcd lets it be seen.
// Messages dmarcd does not evaluate (ignored clients, domains, senders)
// never make a row, as they make no record in OpenDMARC.
func Wanted(row report.Row, recordAll bool) bool {
	if recordAll {
		return true
	}
	switch row.Result {
	case "none", "permerror":
		return false
	}
	return true
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
