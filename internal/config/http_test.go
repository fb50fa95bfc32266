package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestValidateHTTP(t *testing.T) {
	withAuth := func(h HTTP) HTTP {
		h.User, h.PasswordFile = "admin", "/etc/dmarcd/http-password"
		return h
	}
	listen := func(addr string) HTTP {
		h := DefaultHTTP()
		h.Listen = addr
		return h
	}
	for _, tc := range []struct {
		name string
		h    HTTP
		errs []string // "key: text" of each error, in part
	}{
		{"off by default", DefaultHTTP(), nil},
		{"loopback IPv4 needs no password", listen("127.0.0.1:8080"), nil},
		{"loopback IPv6 needs no password", listen("[::1]:8080"), nil},
		{"localhost needs no password", listen("localhost:8080"), nil},
		{"port 0 picks a free port", listen("127.0.0.1:0"), nil},
		{"every address needs a password", listen(":8080"), []string{"http.listen: \":8080\" is reachable from other hosts without a password"}},
		{"a public address needs a password", listen("192.0.2.7:8080"), []string{"http.listen: \"192.0.2.7:8080\" is reachable"}},
		{"every address with a password", withAuth(listen(":8080")), nil},
		{"a public address with a password", withAuth(listen("[2001:db8::1]:443")), nil},
		{"a host name is refused", listen("dashboard.example.com:8080"), []string{"http.listen: \"dashboard.example.com:8080\": the host must be an IP address"}},
		{"no port is refused", listen("127.0.0.1"), []string{"http.listen: \"127.0.0.1\": want host:port"}},
		{"a port out of range is refused", listen("127.0.0.1:65536"), []string{"port \"65536\" is not a number"}},
		{"a port name is refused", listen("127.0.0.1:http"), []string{"port \"http\" is not a number"}},
		{"a user without a password file", func() HTTP { h := listen("127.0.0.1:8080"); h.User = "admin"; return h }(),
			[]string{"http.password_file: must be set with http.user"}},
		{"a password file without a user", func() HTTP { h := listen("127.0.0.1:8080"); h.PasswordFile = "/etc/pw"; return h }(),
			[]string{"http.user: must be set with http.password_file"}},
		{"a user with a colon", func() HTTP { h := withAuth(listen(":80")); h.User = "a:b"; return h }(),
			[]string{"http.user: \"a:b\": a user name of basic authentication cannot hold ':'"}},
		{"a relative password file", func() HTTP { h := withAuth(listen(":80")); h.PasswordFile = "pw"; return h }(),
			[]string{"http.password_file: \"pw\" is not an absolute path"}},
		{"timeouts must be positive", func() HTTP { h := listen("127.0.0.1:80"); h.ReadTimeout, h.WriteTimeout = 0, -1; return h }(),
			[]string{"http.read_timeout: must be more than 0s", "http.write_timeout: must be more than 0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &validator{}
			v.http(&tc.h)
			var got []string
			for _, e := range v.errs {
				got = append(got, e.Key+": "+e.Err.Error())
			}
			if len(got) != len(tc.errs) {
				t.Fatalf("errors %q, want %d like %q", got, len(tc.errs), tc.errs)
			}
			for i, want := range tc.errs {
				if !strings.Contains(got[i], want) {
					t.Errorf("error %q, want it to hold %q", got[i], want)
				}
			}
		})
	}
}

func TestHTTPListenAddrs(t *testing.T) {
	for _, tc := range []struct {
		listen   string
		addrs    []string
		loopback bool
	}{
		{"127.0.0.1:8080", []string{"127.0.0.1:8080"}, true},
		{"[::1]:8080", []string{"[::1]:8080"}, true},
		{"LocalHost:8080", []string{"127.0.0.1:8080", "[::1]:8080"}, true},
		{":8080", []string{":8080"}, false},
		{"0.0.0.0:8080", []string{"0.0.0.0:8080"}, false},
		{"192.0.2.1:8080", []string{"192.0.2.1:8080"}, false},
	} {
		h := HTTP{Listen: tc.listen}
		if got := h.ListenAddrs(); !slices.Equal(got, tc.addrs) {
			t.Errorf("%s: addresses %q, want %q", tc.listen, got, tc.addrs)
		}
		if got := h.Loopback(); got != tc.loopback {
			t.Errorf("%s: loopback %v, want %v", tc.listen, got, tc.loopback)
		}
	}
}

func TestReadHTTPPassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, file, want, err string
	}{
		{"the first line", write("a", "pass word\nrest\n"), "pass word", ""},
		{"without its CRLF", write("b", "secret\r\n"), "secret", ""},
		{"without a line end", write("c", "secret"), "secret", ""},
		{"spaces are kept", write("d", " secret \n"), " secret ", ""},
		{"an empty first line is refused", write("e", "\nsecret\n"), "", "first line is empty"},
		{"a missing file is refused", filepath.Join(dir, "missing"), "", "no such file"},
		{"no file, no password", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadHTTPPassword(&HTTP{PasswordFile: tc.file})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
