package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// HTTP configures dmarcd's HTTP listener, the [http] table: the dashboard
// of the aggregate reports received, its JSON API, /metrics for
// Prometheus, /healthz, and on request net/http/pprof. It is off until
// Listen is set.
type HTTP struct {
	// Listen is the TCP address to serve on, "host:port": an IP address
	// ("127.0.0.1:8080", "[::1]:8080"), "localhost:8080" (the loopback
	// addresses), or ":8080" for every address. "" serves nothing.
	Listen string `toml:"listen"`

	// User is the user name of HTTP basic authentication; "" asks for
	// none. Every path but /healthz then needs it.
	User string `toml:"user"`

	// PasswordFile is the file holding User's password, on its first
	// line. It is read at start-up, before dmarcd gives up root.
	PasswordFile string `toml:"password_file"`

	// PProf serves net/http/pprof under /debug/pprof/ and expvar at
	// /debug/vars. Profiles show memory contents; keep it off unless
	// profiling.
	PProf bool `toml:"pprof"`

	// ReadTimeout bounds reading one request, headers and body.
	ReadTimeout Duration `toml:"read_timeout"`

	// WriteTimeout bounds writing one response. A CPU profile of N
	// seconds needs more than N.
	WriteTimeout Duration `toml:"write_timeout"`
}

// DefaultHTTP returns the [http] table of Default: no listener.
func DefaultHTTP() HTTP {
	return HTTP{
		ReadTimeout:  Duration(10 * time.Second),
		WriteTimeout: Duration(60 * time.Second),
	}
}

// Enabled reports whether the HTTP listener is configured.
func (h *HTTP) Enabled() bool { return h.Listen != "" }

// Loopback reports whether Listen is reachable from this host only:
// a loopback address or "localhost". It is false for a Listen that does
// not parse.
func (h *HTTP) Loopback() bool {
	host, _, err := net.SplitHostPort(h.Listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// ListenAddrs returns the addresses to listen on: Listen itself, or for
// "localhost:PORT" both 127.0.0.1:PORT and [::1]:PORT, which the resolver
// might otherwise order or omit at will.
func (h *HTTP) ListenAddrs() []string {
	host, port, err := net.SplitHostPort(h.Listen)
	if err == nil && strings.EqualFold(host, "localhost") {
		return []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
	}
	return []string{h.Listen}
}

// checkHTTPListen accepts "host:port" where host is empty, an IP address
// or localhost, and port a number up to 65535 (0 picks a free port, for
// tests).
func checkHTTPListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want host:port, such as \"127.0.0.1:8080\"", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	if host == "" || strings.EqualFold(host, "localhost") {
		return nil
	}
	if a, err := netip.ParseAddr(host); err != nil || a.Zone() != "" {
		return fmt.Errorf("%q: the host must be an IP address, \"localhost\" or empty (every address), not a name to resolve", s)
	}
	return nil
}

// checkHTTPUser accepts a user name that basic authentication can carry:
// no colon (it separates user and password), no control characters.
func checkHTTPUser(s string) error {
	if strings.ContainsRune(s, ':') {
		return fmt.Errorf("%q: a user name of basic authentication cannot hold ':'", s)
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return fmt.Errorf("%q: control characters", s)
	}
	return nil
}

// errPublicWithoutAuth is the refusal to serve the dashboard to the
// network without a password.
var errPublicWithoutAuth = errors.New("reachable from other hosts without a password: set http.user and http.password_file, " +
	"or listen on a loopback address (the dashboard names the hosts that send mail as your domains)")

// http checks the [http] table. Validate calls it.
func (v *validator) http(h *HTTP) {
	if h.Listen != "" {
		if err := checkHTTPListen(h.Listen); err != nil {
			v.failErr("http.listen", err)
		} else if h.User == "" && !h.Loopback() {
			v.fail("http.listen", "%q is %w", h.Listen, errPublicWithoutAuth)
		}
	}
	switch {
	case h.User != "" && h.PasswordFile == "":
		v.fail("http.password_file", "must be set with http.user")
	case h.User == "" && h.PasswordFile != "":
		v.fail("http.user", "must be set with http.password_file")
	}
	if h.User != "" {
		if err := checkHTTPUser(h.User); err != nil {
			v.failErr("http.user", err)
		}
	}
	if h.PasswordFile != "" && !path.IsAbs(h.PasswordFile) {
		v.fail("http.password_file", "%q is not an absolute path", h.PasswordFile)
	}
	for _, d := range []struct {
		key string
		val Duration
	}{{"http.read_timeout", h.ReadTimeout}, {"http.write_timeout", h.WriteTimeout}} {
		if d.val <= 0 {
			v.fail(d.key, "must be more than 0s")
		}
	}
}

// ReadHTTPPassword reads the password of basic authentication from
// h.PasswordFile: its first line, without the line end. An empty password
// is refused.
func ReadHTTPPassword(h *HTTP) (string, error) {
	if h.PasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(h.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("http.password_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("http.password_file: %s: the first line is empty", h.PasswordFile)
	}
	return line, nil
}

func init() {
	for k, d := range httpDocs {
		docs[k] = d
	}
}

// httpDocs document the [http] table in dmarcd.toml; init adds them to
// docs.
var httpDocs = map[string]doc{
	"http": {
		text: `dmarcd's HTTP listener: the dashboard of the aggregate reports received for your domains (compliance over time, sources, reporters, failing sources), its JSON API under /api/, /metrics for Prometheus and /healthz. Off until listen is set.`,
	},
	"http.listen": {
		text: `The address to serve on: "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (both loopback addresses) or ":8080" (every address). "" serves nothing. An address other hosts can reach needs user and password_file; put a TLS proxy in front for anything beyond a trusted network, as basic authentication sends the password in the clear.`,
	},
	"http.user": {
		text: `The user name of HTTP basic authentication; "" asks for none. Every path but /healthz then needs it, /metrics included (Prometheus: basic_auth in the scrape config).`,
	},
	"http.password_file": {
		text: `The file holding the password of user, on its first line (mode 0600, read at start-up before dmarcd gives up root).`,
	},
	"http.pprof": {
		text: `Also serve Go's profiles under /debug/pprof/ and runtime variables at /debug/vars, behind the same authentication. Profiles show memory contents (domains, addresses) and cost CPU while they run: for debugging only.`,
	},
	"http.read_timeout": {
		text: `How long reading one request may take.`,
	},
	"http.write_timeout": {
		text: `How long writing one response may take; a CPU profile of N seconds needs more than N.`,
	},
}
