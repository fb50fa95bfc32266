package delivery_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dmarcd/dmarcd/report/delivery"
)

// The scheduler's way with one report: compose to a spool file, sign it
// from the file, send the signature and the file, keep the file for the
// recipients to retry.
func Example() {
	key, info, err := delivery.LoadKey("/etc/dmarcd/dkim/report.pem")
	if err != nil {
		slog.Error("dkim key", "err", err)
		return
	}
	for _, w := range info.Warnings {
		slog.Warn("dkim key", "warning", w)
	}
	signer := delivery.Signer{Domain: "mail.receiver.example", Selector: "dmarc2026", Key: key}

	gz, err := os.Open("/var/lib/dmarcd/reports/mail.receiver.example!example.com!1700000000!1700086399!r1.xml.gz")
	if err != nil {
		return
	}
	defer gz.Close()
	msg := delivery.Message{
		FromName:     "DMARC aggregate reports",
		FromAddress:  "dmarc-reports@mail.receiver.example",
		To:           []string{"rua@example.com"},
		ReportDomain: "example.com",
		Submitter:    "mail.receiver.example",
		ReportID:     "r1@mail.receiver.example",
		FileName:     "mail.receiver.example!example.com!1700000000!1700086399!r1.xml.gz",
		Attachment:   gz,
		Date:         time.Unix(1700086500, 0), // kept with the report, for retries
	}

	f, err := os.CreateTemp("", "report-*.eml")
	if err != nil {
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := delivery.Compose(f, msg); err != nil {
		slog.Error("compose", "err", err)
		return
	}
	f.Seek(0, io.SeekStart)
	sig, err := signer.Signature(f)
	if err != nil {
		slog.Error("sign", "err", err)
		return
	}
	f.Seek(0, io.SeekStart)

	relay := delivery.Relay{Addr: "localhost:25"}
	res, err := relay.Send(context.Background(), "dmarc-bounces@mail.receiver.example", msg.To,
		io.MultiReader(strings.NewReader(sig), f))
	for rcpt, why := range res.Rejected {
		slog.Warn("report refused", "rcpt", rcpt, "err", why, "retry", delivery.IsTemporary(why))
	}
	if res.Temporary {
		// Keep the report: the same message goes to these later.
		slog.Info("report deferred", "retry", res.Retry())
	}
}
