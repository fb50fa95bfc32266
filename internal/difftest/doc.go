// Package difftest runs Debian's opendmarc and dmarcd side by side on one
// generated corpus and compares every verdict. It has no code of its own
// outside its tests: `go test ./internal/difftest` is the whole of it.
//
// # What is compared
//
// For each message, and for each of the two milters: the final action
// (accept, quarantine, reject, tempfail, discard) with the SMTP reply code
// and enhanced status code, and every dmarc= clause of the
// Authentication-Results field the milter inserted (result, p=, dis= and
// header.from, the last compared without regard to case: OpenDMARC writes
// the From domain as the message spelled it, dmarcd in lower case). A
// reject has no header. The reply text is recorded and listed in the
// summary, not compared: OpenDMARC names the domain whose record it used,
// dmarcd the From domain. Deleted Authentication-Results fields are
// recorded for the failure messages, not compared.
//
// A difference fails the test unless an entry of the allow-list
// (allowlist_test.go) matches it. Each entry is a predicate over the message
// (its features, set by the generator) and over both verdicts, precise
// enough not to hide anything else, with the reason and the RFC section
// that justifies dmarcd's answer. A difference no RFC justifies is a dmarcd
// bug: it is not allow-listed, and the test keeps failing until dmarcd is
// fixed. The test logs a summary table: per category, how many messages
// gave equal verdicts, allowed differences and unexpected differences, and
// how often each allow-list entry was used.
//
// # How the two run
//
// OpenDMARC resolves through libresolv, which reads /etc/resolv.conf and
// always asks port 53, so the test runs in a network namespace of its own:
//
//  1. TestDifferential (as root) creates the namespace dmarcd-diff-<pid>,
//     brings its loopback up and writes /etc/netns/<ns>/resolv.conf with
//     "nameserver 127.0.0.1", which `ip netns exec` bind-mounts over
//     /etc/resolv.conf. It removes both when it ends, whether it passed or
//     not, and first removes those left behind by runs that were killed
//     (whose pid is gone).
//  2. It runs the test binary again inside the namespace, with
//     `ip netns exec <ns> <test binary> -test.run=^TestDifferentialInside$`
//     and DIFFTEST_INSIDE=1 in the environment.
//  3. TestDifferentialInside starts, all on the namespace's 127.0.0.1: the
//     DNS server of internal/dnstest on port 53 with the generated zone;
//     opendmarc -f -c opendmarc.conf -P <temporary pid file>, as root, on
//     the Socket the file names; dmarcd, in process, through daemon.Run
//     with the same opendmarc.conf (its listener moved to another port
//     with Options.Listen, its state directory to a temporary one; its
//     resolver reads /etc/resolv.conf and so asks 127.0.0.1:53 too). It
//     sends every message through both milters with go-milter's client,
//     one milter connection per message, the same way and with the same
//     macros ({j}, i), and writes the verdicts to the JSON file named by
//     DIFFTEST_OUT. OpenDMARC gets no PidFile in the shared file because
//     dmarcd would write and remove the same file.
//  4. TestDifferential reads them and compares, one subtest per message
//     (named by the sentence that says what the message is).
//
// No packet leaves the machine: the namespace has only its loopback.
//
// The shared opendmarc.conf sets AuthservID mx.diff.test, TrustedAuthservIDs
// border.diff.test (so that untrusted results and results forged with our
// own id are both exercised), RejectFailures and HoldQuarantinedMessages (so
// that reject and quarantine are actions, not only words in a header),
// SPFSelfValidate false (the SPF results come from the corpus's
// Authentication-Results, not from DNS), and PublicSuffixList naming a small
// list written by the test ("test" and "co.test"): without one OpenDMARC
// has no organizational domains at all, and dmarcd reads the same file.
// Messages come from clients in 192.0.2.0/24 or 2001:db8::/32, outside
// the ignore list. A second configuration, the shared one with
// RejectMultiValueFrom and RequiredHeaders on, runs its own pair of
// milters for the messages that name it (message.Config). Some messages
// follow another transaction on the same milter connection
// (message.Before), as the second message of an SMTP session does.
//
// pct is only ever 0 or 100: OpenDMARC samples with random(), and only
// those two values make both sides deterministic.
//
// # The corpus
//
// corpus_test.go generates it, deterministically: a zone with domains for
// p=none/quarantine/reject, sp, adkim and aspf strict and relaxed, pct=0
// and pct=100, malformed records (a bad p with and without rua, v not
// first, another version, a bad sp, adkim or pct, an abbreviated policy, a
// duplicate tag, a record split into several strings), no record, several
// records at one name, subdomains inheriting from their organizational
// domain (also under a two-label public suffix), and lookups that fail; and
// messages crossing them with trusted SPF and DKIM results (aligned exactly,
// relaxed, strictly, unaligned, failed; smtp.mailfrom as a domain and as an
// address; HELO results with and without a null sender), untrusted results,
// results forged with our own authserv-id, Received-SPF fields, several
// From addresses and fields, unusual From syntax and no From at all.
//
// # Where it runs
//
// It needs root, /usr/sbin/opendmarc (or $DIFFTEST_OPENDMARC) and a working
// `ip netns`. Without them the test skips and says why; with DMARCD_CI set
// in the environment it fails instead, so that CI cannot skip it unnoticed.
// The whole run takes a few seconds (two or three with -race).
package difftest
