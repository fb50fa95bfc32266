package difftest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	gomilter "github.com/d--j/go-milter"
)

// authservID is ours, in the shared opendmarc.conf; trustedID is the
// upstream one listed in TrustedAuthservIDs.
const (
	authservID = "mx.diff.test"
	trustedID  = "border.diff.test"
)

// message is one SMTP transaction of the corpus.
type message struct {
	// Name says in a sentence what the message is.
	Name string
	// Category groups messages in the summary.
	Category string
	// Features are facts about the message the allow-list may test: the
	// generator sets them, from what it put in the zone and the headers.
	Features []string

	Client   string // client IP, IPv4 or IPv6
	Helo     string
	MailFrom string // without brackets; "" is the null sender
	Headers  [][2]string

	// Config names the configuration the message goes through: "" the
	// shared one, or a key of configs.
	Config string
	// Before, when set, is a transaction sent first on the same milter
	// connection, as the MTA does for the second message of an SMTP
	// session (with an abort between them); its client and HELO are the
	// message's, and only the message's verdict is compared.
	Before *message
}

func (m message) has(feature string) bool {
	for _, f := range m.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// verdict is what one milter did with one message.
type verdict struct {
	// Action is accept, quarantine, reject, tempfail or discard.
	Action string `json:"action"`
	// Code is the SMTP reply code and enhanced status code of a reject or
	// tempfail ("550 5.7.1"), "" otherwise.
	Code string `json:"code,omitempty"`
	// Text is the rest of the SMTP reply.
	Text string `json:"text,omitempty"`
	// Stage is where the milter decided, when before end of message.
	Stage string `json:"stage,omitempty"`
	// DMARC are the dmarc= clauses of the inserted Authentication-Results.
	DMARC []clause `json:"dmarc,omitempty"`
	// Inserted are the Authentication-Results values the milter inserted.
	Inserted []string `json:"inserted,omitempty"`
	// Removed counts the Authentication-Results fields it deleted.
	Removed int `json:"removed,omitempty"`
	// Err is set when talking to the milter failed.
	Err string `json:"err,omitempty"`
}

// clause is one dmarc= result as written.
type clause struct {
	Result string `json:"result"`
	P      string `json:"p,omitempty"`
	Dis    string `json:"dis,omitempty"`
	From   string `json:"from"`
}

func (c clause) String() string {
	s := "dmarc=" + c.Result
	if c.P != "" || c.Dis != "" {
		s += fmt.Sprintf(" (p=%s dis=%s)", c.P, c.Dis)
	}
	return s + " header.from=" + c.From
}

// String is the verdict in one line, for tables and failure messages.
func (v verdict) String() string {
	if v.Err != "" {
		return "error: " + v.Err
	}
	s := v.Action
	if v.Code != "" {
		s += " " + v.Code
	}
	if v.Stage != "" {
		s += " at " + v.Stage
	}
	if len(v.DMARC) == 0 {
		return s + "; no dmarc="
	}
	for _, c := range v.DMARC {
		s += "; " + c.String()
	}
	return s
}

// same reports whether two verdicts are equal in what the test compares.
func same(a, b verdict) bool {
	if a.Err != "" || b.Err != "" || a.Action != b.Action || a.Code != b.Code || len(a.DMARC) != len(b.DMARC) {
		return false
	}
	for i := range a.DMARC {
		x, y := a.DMARC[i], b.DMARC[i]
		if x.Result != y.Result || x.P != y.P || x.Dis != y.Dis || !strings.EqualFold(x.From, y.From) {
			return false
		}
	}
	return true
}

// result is one message's pair of verdicts, as the inside run writes them.
type result struct {
	Index     int     `json:"index"`
	Name      string  `json:"name"`
	OpenDMARC verdict `json:"opendmarc"`
	Dmarcd    verdict `json:"dmarcd"`
}

// send runs one message through the milter at addr, one connection for
// one transaction, as Postfix would.
func send(addr string, m message, queueID string) verdict {
	v, err := sendErr(addr, m, queueID)
	if err != nil {
		return verdict{Err: err.Error()}
	}
	return v
}

func sendErr(addr string, m message, queueID string) (verdict, error) {
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAFQDN, authservID)
	macros.Set(gomilter.MacroQueueId, queueID)
	c := gomilter.NewClient("tcp", addr, gomilter.WithActions(gomilter.AllClientSupportedActionMasks))
	s, err := c.Session(macros)
	if err != nil {
		return verdict{}, err
	}
	defer s.Close()

	family := gomilter.FamilyInet
	if strings.Contains(m.Client, ":") {
		family = gomilter.FamilyInet6
	}
	if act, err := s.Conn("client.test", family, 25, m.Client); err != nil || act.Type != gomilter.ActionContinue {
		if err != nil {
			return verdict{}, fmt.Errorf("connect: %w", err)
		}
		v := fromAction(act, nil)
		v.Stage = "connect"
		return v, nil
	}
	if m.Before != nil {
		macros.Set(gomilter.MacroQueueId, queueID+"A")
		if _, err := transaction(s, m.Helo, *m.Before); err != nil {
			return verdict{}, fmt.Errorf("the transaction before: %w", err)
		}
		if err := s.Abort(nil); err != nil {
			return verdict{}, fmt.Errorf("abort after the transaction before: %w", err)
		}
		macros.Set(gomilter.MacroQueueId, queueID)
		return transaction(s, "", m)
	}
	return transaction(s, m.Helo, m)
}

// transaction sends one message on a connected session: HELO first when
// helo is not "" (a second transaction has had its HELO), then MAIL FROM
// to end of message.
func transaction(s *gomilter.ClientSession, helo string, m message) (verdict, error) {
	type step struct {
		stage string
		do    func() (*gomilter.Action, error)
	}
	var steps []step
	if helo != "" {
		steps = append(steps, step{"helo", func() (*gomilter.Action, error) { return s.Helo(helo) }})
	}
	steps = append(steps, []step{
		{"mail", func() (*gomilter.Action, error) { return s.Mail("<"+m.MailFrom+">", "") }},
		{"rcpt", func() (*gomilter.Action, error) { return s.Rcpt("<postmaster@"+authservID+">", "") }},
		{"data", s.DataStart},
	}...)
	for _, h := range m.Headers {
		steps = append(steps, step{"header", func() (*gomilter.Action, error) { return s.HeaderField(h[0], h[1], nil) }})
	}
	steps = append(steps, step{"eoh", s.HeaderEnd})
	for _, st := range steps {
		act, err := st.do()
		if err != nil {
			return verdict{}, fmt.Errorf("%s: %w", st.stage, err)
		}
		if act.Type != gomilter.ActionContinue {
			v := fromAction(act, nil)
			v.Stage = st.stage
			return v, nil
		}
	}
	mods, act, err := s.BodyReadFrom(strings.NewReader("Hello.\r\n"))
	if err != nil {
		return verdict{}, fmt.Errorf("end of message: %w", err)
	}
	return fromAction(act, mods), nil
}

var replyCode = regexp.MustCompile(`^([245]\d\d)(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?\s*`)

// fromAction turns the milter's reply and changes into a verdict.
func fromAction(act *gomilter.Action, mods []gomilter.ModifyAction) verdict {
	var v verdict
	switch act.Type {
	case gomilter.ActionAccept, gomilter.ActionContinue:
		v.Action = "accept"
	case gomilter.ActionDiscard:
		v.Action = "discard"
	case gomilter.ActionReject:
		v.Action, v.Code = "reject", "550 5.7.1" // what the MTA answers for a bare reject
	case gomilter.ActionTempFail:
		v.Action, v.Code = "tempfail", "451 4.7.1"
	case gomilter.ActionRejectWithCode:
		v.Action = "reject"
		if act.SMTPCode/100 == 4 {
			v.Action = "tempfail"
		}
		reply := act.SMTPReply
		if m := replyCode.FindStringSubmatch(reply); m != nil {
			v.Code = strings.TrimSpace(m[1] + " " + m[2])
			reply = reply[len(m[0]):]
		} else {
			v.Code = strconv.Itoa(int(act.SMTPCode))
		}
		v.Text = reply
	default:
		v.Action = fmt.Sprintf("action %d", act.Type)
	}
	for _, m := range mods {
		switch {
		case m.Type == gomilter.ActionQuarantine && v.Action == "accept":
			v.Action = "quarantine"
		case (m.Type == gomilter.ActionInsertHeader || m.Type == gomilter.ActionAddHeader) && strings.EqualFold(m.HeaderName, "Authentication-Results"):
			v.Inserted = append(v.Inserted, m.HeaderValue)
			v.DMARC = append(v.DMARC, dmarcClauses(m.HeaderValue)...)
		case m.Type == gomilter.ActionChangeHeader && m.HeaderValue == "" && strings.EqualFold(m.HeaderName, "Authentication-Results"):
			v.Removed++
		}
	}
	return v
}

var (
	dmarcRE   = regexp.MustCompile(`(?i)\bdmarc\s*=\s*([a-z]+)`)
	commentRE = regexp.MustCompile(`^\s*(?:reason\s*=\s*"(?:[^"\\]|\\.)*"\s*)?\(([^)]*)\)`)
	fromRE    = regexp.MustCompile(`(?i)\bheader\.from\s*=\s*"?([^\s;"]+)`)
	pdisRE    = regexp.MustCompile(`(?i)\b(p|dis)=([a-z]+)`)
	reasonRE  = regexp.MustCompile(`(?i)\breason\s*=\s*"(?:[^"\\]|\\.)*"`)
)

// dmarcClauses reads the dmarc= clauses of an Authentication-Results value
// in OpenDMARC's shape: dmarc=RESULT [reason="..."] [(p=P dis=D ...)]
// header.from=DOMAIN.
func dmarcClauses(value string) []clause {
	// A reason may say anything, "dmarc=pass" included: empty it first.
	value = reasonRE.ReplaceAllString(value, `reason=""`)
	var out []clause
	locs := dmarcRE.FindAllStringSubmatchIndex(value, -1)
	for i, loc := range locs {
		end := len(value)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		rest := value[loc[1]:end]
		c := clause{Result: strings.ToLower(value[loc[2]:loc[3]])}
		if m := commentRE.FindStringSubmatch(rest); m != nil {
			for _, kv := range pdisRE.FindAllStringSubmatch(m[1], -1) {
				if strings.EqualFold(kv[1], "p") {
					c.P = strings.ToLower(kv[2])
				} else {
					c.Dis = strings.ToLower(kv[2])
				}
			}
		}
		if m := fromRE.FindStringSubmatch(rest); m != nil {
			c.From = strings.ToLower(m[1])
		}
		out = append(out, c)
	}
	return out
}
