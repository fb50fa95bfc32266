package config

import (
	"net"
	"strings"
	"testing"
)

func TestParseSocket(t *testing.T) {
	tests := []struct {
		name, in               string
		network, address, text string
	}{
		{"libmilter inet with an IPv4 address", "inet:8893@127.0.0.1", "tcp4", "127.0.0.1:8893", "inet:8893@127.0.0.1"},
		{"inet with a bracketed IPv4 address as opendmarc.conf(5) writes it", "inet:8893@[127.0.0.1]", "tcp4", "127.0.0.1:8893", "inet:8893@127.0.0.1"},
		{"inet without a host listens on all IPv4 interfaces", "inet:8893", "tcp4", ":8893", "inet:8893"},
		{"inet on 0.0.0.0 is inet without a host", "inet:8893@0.0.0.0", "tcp4", ":8893", "inet:8893"},
		{"inet with a host name keeps the name, in lower case", "inet:8893@LocalHost", "tcp4", "localhost:8893", "inet:8893@localhost"},
		{"the scheme is case-insensitive", "INET:8893@127.0.0.1", "tcp4", "127.0.0.1:8893", "inet:8893@127.0.0.1"},
		{"Postfix's inet:host:port spelling", "inet:127.0.0.1:8893", "tcp4", "127.0.0.1:8893", "inet:8893@127.0.0.1"},
		{"Postfix's spelling with an IPv6 address", "inet:[::1]:8893", "tcp6", "[::1]:8893", "inet6:8893@[::1]"},
		{"inet6 with a bracketed address", "inet6:8893@[::1]", "tcp6", "[::1]:8893", "inet6:8893@[::1]"},
		{"inet6 with a bare address", "inet6:8893@::1", "tcp6", "[::1]:8893", "inet6:8893@[::1]"},
		{"inet6 addresses are canonicalized", "inet6:8893@2001:DB8:0:0::1", "tcp6", "[2001:db8::1]:8893", "inet6:8893@[2001:db8::1]"},
		{"inet6 without a host listens on all IPv6 interfaces", "inet6:8893", "tcp6", ":8893", "inet6:8893"},
		{"inet6 with a host name", "inet6:8893@ip6-localhost", "tcp6", "ip6-localhost:8893", "inet6:8893@ip6-localhost"},
		{"unix with a path", "unix:/run/dmarcd/dmarcd.sock", "unix", "/run/dmarcd/dmarcd.sock", "unix:/run/dmarcd/dmarcd.sock"},
		{"local is unix", "local:/run/dmarcd/dmarcd.sock", "unix", "/run/dmarcd/dmarcd.sock", "unix:/run/dmarcd/dmarcd.sock"},
		{"a bare absolute path is unix", "/run/x.sock", "unix", "/run/x.sock", "unix:/run/x.sock"},
		{"unix paths are cleaned", "unix:/run//dmarcd/./x.sock", "unix", "/run/dmarcd/x.sock", "unix:/run/dmarcd/x.sock"},
		{"a unix URL", "unix:///run/x.sock", "unix", "/run/x.sock", "unix:/run/x.sock"},
		{"a tcp URL with an IPv4 address is inet", "tcp://127.0.0.1:8893", "tcp4", "127.0.0.1:8893", "inet:8893@127.0.0.1"},
		{"a tcp URL with an IPv6 address is inet6", "tcp://[::1]:8893", "tcp6", "[::1]:8893", "inet6:8893@[::1]"},
		{"a tcp URL with a host name listens on both families", "tcp://localhost:8893", "tcp", "localhost:8893", "tcp://localhost:8893"},
		{"a tcp URL without a host listens everywhere", "tcp://:8893", "tcp", ":8893", "tcp://:8893"},
		{"a tcp URL on [::] is inet6 on all interfaces", "tcp://[::]:8893", "tcp6", ":8893", "inet6:8893"},
		{"the highest port", "inet:65535@127.0.0.1", "tcp4", "127.0.0.1:65535", "inet:65535@127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSocket(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if s.Network() != tc.network || s.Address() != tc.address || s.String() != tc.text {
				t.Errorf("got %q %q %q, want %q %q %q", s.Network(), s.Address(), s.String(), tc.network, tc.address, tc.text)
			}
			again, err := ParseSocket(s.String())
			if err != nil || again != s {
				t.Errorf("String() %q does not read back: %v %v", s.String(), again, err)
			}
			if s.IsUnix() != (tc.network == "unix") {
				t.Errorf("IsUnix() = %v", s.IsUnix())
			}
		})
	}
}

func TestParseSocketErrors(t *testing.T) {
	tests := []struct{ name, in, msg string }{
		{"an empty address", "", "must not be empty"},
		{"port zero", "inet:0@127.0.0.1", "port 0 out of range"},
		{"a port above 65535", "inet:65536", "port 65536 out of range"},
		{"a service name for a port", "inet:milter@127.0.0.1", "not a number"},
		{"no port", "inet:@127.0.0.1", "missing port"},
		{"an empty host after the at sign", "inet:8893@", "empty host"},
		{"an IPv6 address under inet", "inet:8893@::1", "use inet6:8893@[::1]"},
		{"an IPv4 address under inet6", "inet6:8893@127.0.0.1", "use inet:8893@127.0.0.1"},
		{"a host that is not a name", "inet:8893@exa_mple!", "neither an IP address nor a host name"},
		{"a relative unix path", "unix:dmarcd.sock", "must be absolute"},
		{"a unix URL with two slashes", "unix://run/x.sock", "three slashes"},
		{"an unknown scheme", "udp:8893", `unknown socket type "udp"`},
		{"no scheme", "8893", "want inet:PORT@HOST"},
		{"a tcp URL without a port", "tcp://127.0.0.1", "want tcp://HOST:PORT"},
		{"white space", "inet:8893 @127.0.0.1", "whitespace"},
		{"a unix path too long for sun_path", "unix:/" + strings.Repeat("x", 107), "at most 107"},
		{"the root directory", "unix:/", "must name a file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSocket(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("ParseSocket(%q) = %v, want an error containing %q", tc.in, err, tc.msg)
			}
		})
	}
}

func TestSocketListens(t *testing.T) {
	s := MustParseSocket("tcp://127.0.0.1:1")
	if s.Port() != 1 || s.Host() != "127.0.0.1" {
		t.Fatalf("got %v", s)
	}
	// Network and Address are what net.Listen takes.
	dir := t.TempDir()
	u := MustParseSocket("unix:" + dir + "/s.sock")
	l, err := net.Listen(u.Network(), u.Address())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if u.Path() != dir+"/s.sock" {
		t.Errorf("Path() = %q", u.Path())
	}
}

func TestZeroSocket(t *testing.T) {
	var s Socket
	if !s.IsZero() || s.String() != "" || s.Address() != "" || s.Network() != "" {
		t.Errorf("zero Socket: %q %q %q", s.Network(), s.Address(), s.String())
	}
}

func TestSocketConflicts(t *testing.T) {
	tests := []struct {
		a, b     string
		conflict bool
	}{
		{"inet:8893@127.0.0.1", "tcp://127.0.0.1:8893", true},
		{"inet:8893", "inet:8893@127.0.0.1", true},
		{"inet:8893@127.0.0.1", "inet:8893@192.0.2.1", false},
		{"inet:8893", "inet6:8893", false}, // Go binds tcp6 wildcards IPv6-only
		{"tcp://:8893", "inet6:8893@[::1]", true},
		{"tcp://:8893", "inet:8893@127.0.0.1", true},
		{"inet:8893@127.0.0.1", "inet:8894@127.0.0.1", false},
		{"unix:/run/a.sock", "/run/a.sock", true},
		{"unix:/run/a.sock", "unix:/run/b.sock", false},
		{"unix:/run/a.sock", "inet:8893", false},
	}
	for _, tc := range tests {
		a, b := MustParseSocket(tc.a), MustParseSocket(tc.b)
		if got := a.conflict(b) != ""; got != tc.conflict {
			t.Errorf("%s vs %s: conflict %v, want %v", tc.a, tc.b, got, tc.conflict)
		}
		if got := b.conflict(a) != ""; got != tc.conflict {
			t.Errorf("%s vs %s: conflict %v, want %v", tc.b, tc.a, got, tc.conflict)
		}
	}
}
