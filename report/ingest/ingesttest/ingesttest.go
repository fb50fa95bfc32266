// Package ingesttest builds, in tests, the reports that report/ingest
// reads: a large aggregate report for the parser's and the importer's
// tests and benchmarks, one generator for both.
package ingesttest

import (
	"fmt"
	"strings"
)

// LargeAggregate returns an aggregate report of n records, with report ID
// id, in the shape large receivers send: indented, ~450 bytes a record
// (2,000 records make ~900 KB), IPv4 and IPv6 sources, a DKIM and an SPF
// result each. Record i counts i%7+1 messages and is compliant (DKIM
// pass) unless i%10 == 0; the policy published is p=none.
func LargeAggregate(id string, n int) []byte {
	var b strings.Builder
	b.Grow(n*470 + 1024)
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>bigreceiver.example</org_name>
    <email>noreply-dmarc@bigreceiver.example</email>
    <extra_contact_info>https://bigreceiver.example/dmarc</extra_contact_info>
    <report_id>%s</report_id>
    <date_range>
      <begin>1735689600</begin>
      <end>1735775999</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>example.org</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>none</p>
    <sp>none</sp>
    <pct>100</pct>
  </policy_published>
`, id)
	for i := range n {
		ip := fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
		if i%3 == 0 {
			ip = fmt.Sprintf("2001:db8:%x::%x", i/4096, i%4096+1)
		}
		dkim := "pass"
		if i%10 == 0 {
			dkim = "fail"
		}
		fmt.Fprintf(&b, ` <record>
  <row>
   <source_ip>%s</source_ip>
   <count>%d</count>
   <policy_evaluated>
    <disposition>none</disposition>
    <dkim>%s</dkim>
    <spf>fail</spf>
   </policy_evaluated>
  </row>
  <identifiers>
   <header_from>example.org</header_from>
  </identifiers>
  <auth_results>
   <dkim>
    <domain>example.org</domain>
    <result>%s</result>
   </dkim>
   <spf>
    <domain>bounce%d.example.net</domain>
    <result>pass</result>
   </spf>
  </auth_results>
 </record>
`, ip, i%7+1, dkim, dkim, i%10)
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}

// LargeTotals returns the messages and the compliant messages of a
// LargeAggregate report of n records.
func LargeTotals(n int) (messages, compliant int64) {
	for i := range n {
		messages += int64(i%7 + 1)
		if i%10 != 0 {
			compliant += int64(i%7 + 1)
		}
	}
	return
}
