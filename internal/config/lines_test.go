package config

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestIndexLines(t *testing.T) {
	// Lines are counted from the BOM-prefixed first line.
	src := "\uFEFF" + `# a comment with [fake] and key = 1
top = "a # not a comment"
multi = """
[not_a_table]
not_a_key = 1
"""
after_multi = 1
lit = '''
x = 2
'''
raw = 'C:\path'
esc = "quote \" and [bracket]"
a.b.c = 1
"quoted key".x = 2

[t]
arr = [
  1,             # comment
  [2, 3],        # comment
  { k = "v" },   # comment
]
inl = { x = 1, y = { z = [
  "deep",        # comment
] } }
date = 1979-05-27 07:32:00Z
trailing = "x"   # comment [x]

[[aot]]
name = "first"
[aot.sub]
k = 1

[[aot]]
name = "second"
[[aot.list]]
v = 1
[[aot.list]]
v = 2

[ t2 . "dotted key" ]
k = 'v'
`
	// The scanner assumes a valid document: make sure it is one.
	var m map[string]any
	if _, err := toml.Decode(src, &m); err != nil {
		t.Fatalf("test document is not TOML: %v", err)
	}
	want := map[string]int{
		"top":               2,
		"multi":             3,
		"after_multi":       7,
		"lit":               8,
		"raw":               11,
		"esc":               12,
		"a":                 13,
		"a.b":               13,
		"a.b.c":             13,
		`"quoted key"`:      14,
		`"quoted key".x`:    14,
		"t":                 16,
		"t.arr":             17,
		"t.arr[0]":          18,
		"t.arr[1]":          19,
		"t.arr[1][1]":       19,
		"t.arr[2]":          20,
		"t.arr[2].k":        20,
		"t.inl":             22,
		"t.inl.x":           22,
		"t.inl.y.z":         22,
		"t.inl.y.z[0]":      23,
		"t.date":            25,
		"t.trailing":        26,
		"aot":               28,
		"aot[0]":            28,
		"aot[0].name":       29,
		"aot[0].sub":        30,
		"aot[0].sub.k":      31,
		"aot[1]":            33,
		"aot[1].name":       34,
		"aot[1].list":       35,
		"aot[1].list[0]":    35,
		"aot[1].list[0].v":  36,
		"aot[1].list[1]":    37,
		"aot[1].list[1].v":  38,
		`t2."dotted key"`:   40,
		`t2."dotted key".k`: 41,
	}
	got := indexLines(src)
	for k, line := range want {
		if got[k] != line {
			t.Errorf("%s: line %d, want %d", k, got[k], line)
		}
	}
	for _, k := range []string{"not_a_table", "not_a_key", "x"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s found inside a string", k)
		}
	}
}

func TestIndexLinesDoesNotHangOnGarbage(t *testing.T) {
	for _, src := range []string{"[", "[[", "a = [", "a = {", `a = """`, "= = =", "]]]", "a = \"x", "\x00\x01", "[a.", "a = [1,,]"} {
		indexLines(src)
	}
}

func TestLineIndexFallsBackToTheNearestAncestor(t *testing.T) {
	ix := indexLines("[milter]\nmax_connections = 5\n\n[[listener]]\nmode = \"strict\"\n")
	for key, want := range map[string]int{
		"milter.dns_budget":   1,
		"listener[0].address": 4,
		"listener[0].mode":    5,
		"dns.timeout":         0,
	} {
		if got := ix.find(key); got != want {
			t.Errorf("find(%q) = %d, want %d", key, got, want)
		}
	}
}

func FuzzIndexLines(f *testing.F) {
	f.Add("[a]\nb = [1, {c = 2}]\n[[d]]\ne = '''x'''\n")
	f.Fuzz(func(t *testing.T, src string) {
		indexLines(src) // must terminate without panicking
	})
}
