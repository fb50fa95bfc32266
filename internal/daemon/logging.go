package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"

	"github.com/dmarcd/dmarcd/internal/config"
)

// newLogger logs to w (standard error, which systemd's journal reads) and,
// with log.syslog, to syslog as well, as OpenDMARC's Syslog does.
func newLogger(w io.Writer, cfg *config.Config) (*slog.Logger, error) {
	if w == nil {
		w = os.Stderr
	}
	o := &slog.HandlerOptions{Level: cfg.Log.Level}
	var h slog.Handler = slog.NewTextHandler(w, o)
	if cfg.Log.Format == config.LogJSON {
		h = slog.NewJSONHandler(w, o)
	}
	if cfg.Log.Syslog {
		facility, ok := syslogFacilities[cfg.Log.SyslogFacility]
		if !ok {
			return nil, fmt.Errorf("log.syslog_facility: unknown facility %q", cfg.Log.SyslogFacility)
		}
		sw, err := syslog.New(facility|syslog.LOG_INFO, "dmarcd")
		if err != nil {
			return nil, fmt.Errorf("syslog: %w", err)
		}
		// syslog adds its own time stamp and level; key=value lines read
		// best there.
		h = slog.NewMultiHandler(h, slog.NewTextHandler(sw, o))
	}
	return slog.New(h), nil
}

// syslogFacilities maps config.SyslogFacilities to log/syslog.
var syslogFacilities = map[string]syslog.Priority{
	"kern": syslog.LOG_KERN, "user": syslog.LOG_USER, "mail": syslog.LOG_MAIL, "daemon": syslog.LOG_DAEMON,
	"auth": syslog.LOG_AUTH, "syslog": syslog.LOG_SYSLOG, "lpr": syslog.LOG_LPR, "news": syslog.LOG_NEWS,
	"uucp": syslog.LOG_UUCP, "cron": syslog.LOG_CRON, "authpriv": syslog.LOG_AUTHPRIV, "ftp": syslog.LOG_FTP,
	"local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1, "local2": syslog.LOG_LOCAL2, "local3": syslog.LOG_LOCAL3,
	"local4": syslog.LOG_LOCAL4, "local5": syslog.LOG_LOCAL5, "local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
}
