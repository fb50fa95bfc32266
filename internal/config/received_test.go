package config

import (
	"strings"
	"testing"
	"time"
)

func TestReceivedDefaultsAreValid(t *testing.T) {
	v := &validator{}
	r := DefaultReceived()
	v.received(&r)
	if len(v.errs) != 0 {
		t.Errorf("defaults refused: %v", v.errs)
	}
	if !r.ResolveNames || r.NameTimeout.Duration() != 2*time.Second || r.NameConcurrency != 8 ||
		r.NameCacheTTL.Duration() != time.Hour || r.NameCacheSize != 10000 {
		t.Errorf("defaults %+v", r)
	}
}

func TestReceivedValidation(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Received)
		key    string
		msg    string
	}{
		{"a zero name timeout", func(r *Received) { r.NameTimeout = 0 }, "received.name_timeout", "must be positive"},
		{"a name timeout over 30s", func(r *Received) { r.NameTimeout = Duration(time.Minute) }, "received.name_timeout", "too long: at most 30s"},
		{"no concurrency", func(r *Received) { r.NameConcurrency = 0 }, "received.name_concurrency", "must be 1 to 100, not 0"},
		{"too much concurrency", func(r *Received) { r.NameConcurrency = 1000 }, "received.name_concurrency", "must be 1 to 100"},
		{"a negative cache TTL", func(r *Received) { r.NameCacheTTL = Duration(-time.Second) }, "received.name_cache_ttl", "must be positive"},
		{"an empty cache", func(r *Received) { r.NameCacheSize = 0 }, "received.name_cache_size", "at least 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := DefaultReceived()
			c.change(&r)
			v := &validator{}
			v.received(&r)
			if len(v.errs) != 1 || v.errs[0].Key != c.key || !strings.Contains(v.errs[0].Err.Error(), c.msg) {
				t.Errorf("errors %v, want one on %s with %q", v.errs, c.key, c.msg)
			}
		})
	}
}
