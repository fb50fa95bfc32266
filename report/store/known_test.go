package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

// knownHash is a key hash as KeyOf makes them: uniform bits.
func knownHash(i int) KeyHash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	s := sha256.Sum256(b[:])
	return KeyHash(s[:16])
}

const knownHour = 1_793_000_000 / 3600 * 3600

func TestKnownKeysRememberWhatTheyCanHold(t *testing.T) {
	var k knownKeys
	if _, ok := k.get(knownHash(0)); ok {
		t.Fatal("an empty knownKeys knows a key")
	}
	const n = knownSets * knownWays / 2
	for i := range n {
		k.put(knownHash(i), knownHour)
	}
	k.put(knownHash(7), knownHour+3600) // written again the next hour
	lost := 0
	for i := range n {
		last, ok := k.get(knownHash(i))
		switch {
		case !ok:
			lost++
		case i == 7 && last != knownHour+3600, i != 7 && last != knownHour:
			t.Fatalf("key %d: last hour %d", i, last)
		}
	}
	// Half full, about one set in twenty gets more than four keys.
	if lost > n/20 {
		t.Errorf("%d of %d keys forgotten in a cache of %d", lost, n, knownSets*knownWays)
	}
	if got := k.len(); got != n-lost {
		t.Errorf("len() = %d, want %d", got, n-lost)
	}
}

func TestKnownKeysForgetTheOldestHourFirst(t *testing.T) {
	var k knownKeys
	// Fill past the capacity with an old hour, then write new keys of a
	// later hour: the old ones give way, and a new key is forgotten only
	// when more than four new ones fall in its set.
	for i := range knownSets * knownWays * 8 {
		k.put(knownHash(i), knownHour)
	}
	const fresh = knownSets
	perSet := map[int]int{}
	for i := range fresh {
		h := knownHash(-1 - i)
		k.put(h, knownHour+3600)
		perSet[int(binary.LittleEndian.Uint64(h[:8])&(knownSets-1))]++
	}
	want := 0
	for _, n := range perSet {
		want += max(0, n-knownWays)
	}
	lost := 0
	for i := range fresh {
		last, ok := k.get(knownHash(-1 - i))
		if !ok {
			lost++
		} else if last != knownHour+3600 {
			t.Fatalf("new key %d: last hour %d", i, last)
		}
	}
	if lost != want {
		t.Errorf("%d new keys forgotten, want %d (those beyond four in a set)", lost, want)
	}
	if got := k.len(); got != knownSets*knownWays {
		t.Errorf("len() = %d, want every slot used, %d", got, knownSets*knownWays)
	}
}

func TestKnownPoliciesRememberTheLastPolicyOfEachRow(t *testing.T) {
	var k knownPolicies
	a, b := k.policyHash(`{"P":"reject"}`), k.policyHash(`{"P":"none"}`)
	domain := func(i int) string { return fmt.Sprintf("d%d.example", i) }
	if k.wrote(domain(0), knownHour, a) {
		t.Fatal("an empty knownPolicies knows a row")
	}
	const n = policySets * policyWays / 2
	for i := range n {
		k.put(domain(i), knownHour, a)
	}
	k.put(domain(7), knownHour, b) // its policy changed
	lost := 0
	for i := range n {
		switch {
		case i == 7 && (k.wrote(domain(i), knownHour, a) || !k.wrote(domain(i), knownHour, b)):
			t.Fatal("the row whose policy changed does not know its last one")
		case i != 7 && !k.wrote(domain(i), knownHour, a):
			lost++
		}
		if k.wrote(domain(i), knownHour+3600, a) {
			t.Fatalf("row %d is known in the next hour", i)
		}
	}
	if lost > n/20 {
		t.Errorf("%d of %d rows forgotten in a cache of %d", lost, n, policySets*policyWays)
	}
	// Filled up by the rows of a new hour, it forgets the old hour's
	// first: the new rows are kept as well as the first ones were.
	for i := n; i < 2*n; i++ {
		k.put(domain(i), knownHour+3600, a)
	}
	lostNew := 0
	for i := n; i < 2*n; i++ {
		if !k.wrote(domain(i), knownHour+3600, a) {
			lostNew++
		}
	}
	if lostNew > n/20 {
		t.Errorf("%d of %d rows of the new hour forgotten", lostNew, n)
	}
}

func TestKnownPoliciesForgetKeepsTheHashesOfAnIngestInProgress(t *testing.T) {
	// Expire empties the cache while an Ingest, its policy hashes made,
	// commits: the put that follows must work, and match later hashes.
	var k knownPolicies
	ph := k.policyHash(`{"P":"reject"}`)
	k.put("a.example", knownHour, ph)
	k.forget()
	if k.wrote("a.example", knownHour, ph) {
		t.Fatal("a forgotten row is known")
	}
	k.put("b.example", knownHour, ph)
	if !k.wrote("b.example", knownHour, k.policyHash(`{"P":"reject"}`)) {
		t.Error("a row put after forget is not known")
	}
}
