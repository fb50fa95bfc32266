package daemon

import (
	"fmt"
	"os"
	"time"

	"github.com/dmarcd/dmarcd/dmarc"
	"github.com/dmarcd/dmarcd/internal/config"
	"github.com/dmarcd/dmarcd/internal/dnscache"
	"github.com/dmarcd/dmarcd/internal/spfcheck"
	"github.com/dmarcd/dmarcd/milter"
)

// milterConfig turns the validated configuration into what the milter
// needs.
func milterConfig(c *config.Config) (*milter.Config, error) {
	reject, err := config.ParseReply(c.Policy.RejectReply, '5')
	if err != nil {
		return nil, fmt.Errorf("policy.reject_reply: %w", err)
	}
	tempfail, err := config.ParseReply(c.Policy.TempFailReply, '4')
	if err != nil {
		return nil, fmt.Errorf("policy.tempfail_reply: %w", err)
	}
	m := &milter.Config{
		AuthServID:         c.AuthservID,
		TrustedAuthServIDs: c.TrustedAuthservIDs,
		Policy: milter.Policy{
			Reject:        [...]milter.Action{config.RejectActionReject: milter.Reject, config.RejectActionQuarantine: milter.Quarantine, config.RejectActionAccept: milter.Accept}[c.Policy.Reject],
			Quarantine:    [...]milter.Action{config.QuarantineHold: milter.Quarantine, config.QuarantineHeader: milter.Accept}[c.Policy.Quarantine],
			TempError:     [...]milter.Action{config.TempErrorAccept: milter.Accept, config.TempErrorTempFail: milter.Tempfail}[c.Policy.TempError],
			PermError:     [...]milter.Action{config.PermErrorAccept: milter.Accept, config.PermErrorReject: milter.Reject}[c.Policy.PermError],
			MultipleFrom:  [...]milter.MultipleFrom{config.MultipleFromStrictest: milter.Strictest, config.MultipleFromReject: milter.RejectMultiple, config.MultipleFromFirst: milter.First}[c.Policy.MultipleFrom],
			MissingFrom:   [...]milter.Action{config.MissingFromReject: milter.Reject, config.MissingFromAccept: milter.Accept}[c.Policy.MissingFrom],
			MissingDKIM:   [...]milter.Action{config.MissingDKIMFail: milter.Accept, config.MissingDKIMTempFail: milter.Tempfail}[c.Policy.MissingDKIMResult],
			RejectReply:   milter.Reply(reject),
			TempfailReply: milter.Reply(tempfail),
			AddHeader:     c.Policy.AddHeader,
			RemoveForged:  c.Policy.RemoveForgedHeaders,
		},
		Ignore: milter.Ignore{
			Hosts:           c.Ignore.Hosts,
			Authenticated:   c.Ignore.Authenticated,
			FromDomains:     c.Ignore.FromDomains,
			MailFromDomains: c.Ignore.MailFromDomains,
			Recipients:      c.Ignore.Recipients,
		},
		DNSBudget:      c.Milter.DNSBudget.Duration(),
		IdleTimeout:    c.Milter.IdleTimeout.Duration(),
		WriteTimeout:   c.Milter.WriteTimeout.Duration(),
		MaxConnections: c.Milter.MaxConnections,

		SPFUpstream:         c.SPF.UseUpstream,
		SPFSelfCheck:        c.SPF.SelfCheck,
		DKIMSelfVerify:      c.DKIM.SelfVerify,
		MaxMessageSize:      c.DKIM.MaxMessageSize.Bytes(),
		ARCTrustedSealers:   c.ARC.TrustedSealers,
		RequiredHeaders:     c.Policy.RequiredHeaders,
		AuthServIDWithJobID: c.AuthservIDWithJobID,
		CopyFailuresTo:      c.CopyFailuresTo,
		ReportMailboxes:     c.Received.Mailboxes,

		FailureReports:        c.FailureReports.Enabled,
		FailureReportsOnNone:  c.FailureReports.OnPolicyNone,
		FailureReportsBody:    c.FailureReports.Include == config.IncludeMessage,
		FailureReportsMaxBody: c.FailureReports.MaxMessageSize.Bytes(),
	}
	if c.SoftwareHeader {
		m.Software = "dmarcd " + Version
	}
	for _, o := range c.Overrides {
		m.LocalPolicies = append(m.LocalPolicies, milter.LocalPolicy{Domain: o.Domain, Policy: o.Policy, Comment: o.Comment})
	}
	return m, nil
}

func listenerMode(m config.ListenerMode) milter.Mode {
	return [...]milter.Mode{config.ModeStrict: milter.Strict, config.ModeRelaxed: milter.Relaxed, config.ModeDisable: milter.Disable}[m]
}

// ResolverConfig is the DNS cache's configuration under c: the daemon's,
// and that of the commands that look names up (dmarcd summary).
func ResolverConfig(c *config.Config) dnscache.Config {
	return dnscache.Config{
		Nameservers:    c.DNS.Nameservers,
		Timeout:        c.DNS.Timeout.Duration(),
		Attempts:       c.DNS.Attempts,
		MaxEntries:     c.DNS.CacheSize,
		MinTTL:         c.DNS.MinTTL.Duration(),
		MaxTTL:         c.DNS.MaxTTL.Duration(),
		NegativeMaxTTL: c.DNS.NegativeMaxTTL.Duration(),
		Now:            time.Now,
	}
}

// deps builds what the milter consults: the DMARC evaluator and the SPF
// checker, both over the caching resolver.
func deps(c *config.Config, resolver *dnscache.Resolver) (milter.Deps, error) {
	ev := &dmarc.Evaluator{Resolver: resolver, Spec: c.Spec}
	if c.PublicSuffixList != "" {
		f, err := os.Open(c.PublicSuffixList)
		if err != nil {
			return milter.Deps{}, fmt.Errorf("public_suffix_list: %w", err)
		}
		defer f.Close()
		l, err := dmarc.ReadSuffixList(f)
		if err != nil {
			return milter.Deps{}, fmt.Errorf("public_suffix_list %s: %w", c.PublicSuffixList, err)
		}
		ev.PublicSuffixList = l
	}
	return milter.Deps{Evaluator: ev, SPF: &spfcheck.Checker{Resolver: resolver}}, nil
}
