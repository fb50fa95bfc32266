package config

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// maxUnixPath is the longest socket path Linux accepts: sun_path holds 108
// bytes including the terminating NUL.
const maxUnixPath = 107

// Socket is a listening address in the milter socket syntax of OpenDMARC,
// OpenDKIM and Sendmail (libmilter), or as a URL:
//
//	inet:8893@127.0.0.1       TCP over IPv4 on 127.0.0.1 port 8893
//	inet:8893@[127.0.0.1]     the same (opendmarc.conf(5) brackets IP addresses)
//	inet:8893@localhost       TCP over IPv4 on what localhost resolves to
//	inet:8893                 TCP over IPv4 on ALL interfaces (INADDR_ANY, as in OpenDMARC)
//	inet:127.0.0.1:8893       Postfix's smtpd_milters spelling of the first line
//	inet6:8893@[::1]          TCP over IPv6 on ::1 port 8893; also inet6:8893@::1
//	inet6:8893                TCP over IPv6 on all interfaces (in6addr_any, IPv6 only)
//	unix:/run/dmarcd/dmarcd.sock, local:/run/dmarcd/dmarcd.sock, /run/dmarcd/dmarcd.sock
//	                          a Unix domain socket; the path must be absolute
//	tcp://127.0.0.1:8893      the same as inet:8893@127.0.0.1
//	tcp://[::1]:8893          the same as inet6:8893@[::1]
//	tcp://localhost:8893      TCP on every address localhost resolves to
//	tcp://:8893               TCP on all interfaces, IPv4 and IPv6
//	unix:///run/x.sock        the same as unix:/run/x.sock
//
// Ports are numbers from 1 to 65535; service names are not looked up. The
// zero Socket is not a valid address (IsZero reports it).
type Socket struct {
	network string // "tcp", "tcp4", "tcp6" or "unix"; "" for the zero Socket
	host    string // IP address (canonical text) or lower-case host name; "" = all interfaces
	port    uint16
	path    string // unix only
}

// ParseSocket reads a listening address in any of the forms Socket
// documents.
func ParseSocket(s string) (Socket, error) {
	sock, err := parseSocket(s)
	if err != nil {
		return Socket{}, fmt.Errorf("invalid socket %q: %w", s, err)
	}
	return sock, nil
}

func parseSocket(s string) (Socket, error) {
	if s == "" {
		return Socket{}, errEmpty
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return Socket{}, fmt.Errorf("contains whitespace or a control character")
	}
	switch {
	case strings.HasPrefix(s, "/"):
		return unixSocket(s)
	case strings.HasPrefix(s, "tcp://"):
		return tcpURL(s[len("tcp://"):])
	case strings.HasPrefix(s, "unix://"):
		p := s[len("unix://"):]
		if !strings.HasPrefix(p, "/") {
			return Socket{}, fmt.Errorf("the path must be absolute (unix:///path, three slashes)")
		}
		return unixSocket(p)
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Socket{}, fmt.Errorf("want inet:PORT@HOST, inet6:PORT@HOST, unix:/PATH or tcp://HOST:PORT")
	}
	switch strings.ToLower(scheme) {
	case "inet":
		return inetSocket(rest, "tcp4")
	case "inet6":
		return inetSocket(rest, "tcp6")
	case "unix", "local":
		return unixSocket(rest)
	}
	return Socket{}, fmt.Errorf("unknown socket type %q (want inet, inet6, unix, local, tcp:// or unix://)%s",
		scheme, didYouMean(strings.ToLower(scheme), []string{"inet", "inet6", "unix", "local", "tcp"}))
}

func unixSocket(p string) (Socket, error) {
	if !strings.HasPrefix(p, "/") {
		return Socket{}, fmt.Errorf("the path of a unix socket must be absolute")
	}
	p = path.Clean(p)
	if p == "/" {
		return Socket{}, fmt.Errorf("the path of a unix socket must name a file")
	}
	if len(p) > maxUnixPath {
		return Socket{}, fmt.Errorf("the path is %d bytes long; unix sockets allow at most %d", len(p), maxUnixPath)
	}
	return Socket{network: "unix", path: p}, nil
}

// inetSocket reads what follows "inet:" or "inet6:": libmilter's
// PORT[@HOST] or Postfix's HOST:PORT.
func inetSocket(rest, network string) (Socket, error) {
	portText, host, hasHost := strings.Cut(rest, "@")
	if !hasHost && !isDigits(rest) && strings.Contains(rest, ":") {
		// Postfix's inet:host:port.
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			return Socket{}, fmt.Errorf("want PORT@HOST or HOST:PORT")
		}
		portText, host, hasHost = p, h, true
		if a, err := netip.ParseAddr(h); err == nil && a.Is6() && network == "tcp4" {
			network = "tcp6" // Postfix's inet: takes IPv6 addresses too
		}
	}
	port, err := parsePort(portText)
	if err != nil {
		return Socket{}, err
	}
	sock := Socket{network: network, port: port}
	if !hasHost {
		return sock, nil
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if host == "" {
		return Socket{}, fmt.Errorf("empty host after \"@\" (leave out \"@\" to listen on all interfaces)")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		switch {
		case network == "tcp4" && !a.Is4():
			return Socket{}, fmt.Errorf("%s is not an IPv4 address; use inet6:%d@[%s]", host, port, host)
		case network == "tcp6" && !a.Is6():
			return Socket{}, fmt.Errorf("%s is not an IPv6 address; use inet:%d@%s", host, port, host)
		}
		if !a.IsUnspecified() { // 0.0.0.0 and :: are spelt by leaving the host out
			sock.host = a.String()
		}
		return sock, nil
	}
	if !isHostname(host) {
		return Socket{}, fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	sock.host = strings.ToLower(strings.TrimSuffix(host, "."))
	return sock, nil
}

// tcpURL reads what follows "tcp://": HOST:PORT, [V6]:PORT or :PORT.
func tcpURL(rest string) (Socket, error) {
	host, portText, err := net.SplitHostPort(strings.TrimSuffix(rest, "/"))
	if err != nil {
		return Socket{}, fmt.Errorf("want tcp://HOST:PORT, tcp://[IPV6]:PORT or tcp://:PORT")
	}
	port, err := parsePort(portText)
	if err != nil {
		return Socket{}, err
	}
	sock := Socket{network: "tcp", port: port}
	if host == "" {
		return sock, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		sock.network = "tcp6"
		if a.Is4() {
			sock.network = "tcp4"
		}
		if !a.IsUnspecified() {
			sock.host = a.String()
		}
		return sock, nil
	}
	if !isHostname(host) {
		return Socket{}, fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	sock.host = strings.ToLower(strings.TrimSuffix(host, "."))
	return sock, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port")
	}
	if !isDigits(s) {
		return 0, fmt.Errorf("port %q is not a number (service names are not looked up)", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s out of range 1-65535", s)
	}
	return uint16(n), nil
}

// isHostname reports whether s looks like a DNS host name: letters, digits,
// hyphens and underscores in dot-separated labels of at most 63 bytes.
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// MustParseSocket is ParseSocket for addresses known to be valid; it
// panics on an error.
func MustParseSocket(s string) Socket {
	sock, err := ParseSocket(s)
	if err != nil {
		panic(err)
	}
	return sock
}

// IsZero reports whether s is the zero Socket, which has no address.
func (s Socket) IsZero() bool { return s.network == "" }

// IsUnix reports whether s is a Unix domain socket.
func (s Socket) IsUnix() bool { return s.network == "unix" }

// Network returns the network argument for net.Listen: "tcp4" (inet:),
// "tcp6" (inet6:), "tcp" (tcp:// with a host name or no host) or "unix".
func (s Socket) Network() string { return s.network }

// Address returns the address argument for net.Listen: "127.0.0.1:8893",
// "[::1]:8893", ":8893" (all interfaces of the network's family) or the
// path of a Unix socket.
func (s Socket) Address() string {
	switch s.network {
	case "":
		return ""
	case "unix":
		return s.path
	}
	return net.JoinHostPort(s.host, strconv.Itoa(int(s.port)))
}

// Host returns the host name or IP address a TCP socket listens on, or ""
// for all interfaces and for Unix sockets.
func (s Socket) Host() string { return s.host }

// Port returns the TCP port, or 0 for a Unix socket.
func (s Socket) Port() int { return int(s.port) }

// Path returns the path of a Unix socket, or "".
func (s Socket) Path() string { return s.path }

// String returns the canonical spelling of s, which ParseSocket reads back
// to the same Socket: "inet:8893@127.0.0.1", "inet:8893",
// "inet6:8893@[::1]", "inet6:8893", "tcp://localhost:8893", "tcp://:8893"
// or "unix:/run/dmarcd/dmarcd.sock". The zero Socket gives "".
func (s Socket) String() string {
	switch s.network {
	case "unix":
		return "unix:" + s.path
	case "tcp4":
		if s.host == "" {
			return fmt.Sprintf("inet:%d", s.port)
		}
		return fmt.Sprintf("inet:%d@%s", s.port, s.host)
	case "tcp6":
		if s.host == "" {
			return fmt.Sprintf("inet6:%d", s.port)
		}
		if strings.Contains(s.host, ":") {
			return fmt.Sprintf("inet6:%d@[%s]", s.port, s.host)
		}
		return fmt.Sprintf("inet6:%d@%s", s.port, s.host)
	case "tcp":
		return "tcp://" + s.Address()
	}
	return ""
}

// MarshalText implements encoding.TextMarshaler with String.
func (s Socket) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSocket.
func (s *Socket) UnmarshalText(b []byte) error {
	v, err := ParseSocket(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// families returns the address families a TCP socket binds: 4, 6 or both
// for a wildcard "tcp" socket; none for a host name under "tcp", which
// may resolve to either.
func (s Socket) families() (v4, v6 bool) {
	switch s.network {
	case "tcp4":
		return true, false
	case "tcp6":
		return false, true
	case "tcp":
		return s.host == "", s.host == ""
	}
	return false, false
}

// conflict explains why two listeners cannot both bind, or returns "".
func (s Socket) conflict(o Socket) string {
	if s.IsUnix() || o.IsUnix() {
		if s.IsUnix() && o.IsUnix() && s.path == o.path {
			return "the same socket"
		}
		return ""
	}
	if s.port != o.port {
		return ""
	}
	if s.network == o.network && s.host == o.host {
		return "the same socket"
	}
	a4, a6 := s.families()
	b4, b6 := o.families()
	overlap := a4 && b4 || a6 && b6
	if overlap && (s.host == "" || o.host == "") {
		return "a wildcard address and another address on the same port"
	}
	return ""
}
