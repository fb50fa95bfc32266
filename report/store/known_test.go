package store

import (
	"encoding/binary"
	"testing"
)

func TestKnownKeysKeepTwoGenerations(t *testing.T) {
	hash := func(i int) KeyHash {
		var h KeyHash
		binary.BigEndian.PutUint64(h[:], uint64(i))
		return h
	}
	const hour = 1_793_000_000 / 3600 * 3600
	var k knownKeys
	if _, ok := k.get(hash(0)); ok {
		t.Fatal("an empty knownKeys knows a key")
	}
	for i := range maxKnownKeys {
		k.put(hash(i), hour)
	}
	if last, ok := k.get(hash(0)); !ok || last != hour {
		t.Fatalf("get = %d, %v after one generation; want %d, true", last, ok, hour)
	}
	// A second generation: the first one is still there.
	for i := maxKnownKeys; i < 2*maxKnownKeys; i++ {
		k.put(hash(i), hour+3600)
	}
	if last, ok := k.get(hash(0)); !ok || last != hour {
		t.Errorf("the first key is forgotten after two generations: %d, %v", last, ok)
	}
	if last, ok := k.get(hash(2*maxKnownKeys - 1)); !ok || last != hour+3600 {
		t.Errorf("the last key: %d, %v", last, ok)
	}
	if n := k.len(); n != 2*maxKnownKeys {
		t.Errorf("%d keys known, want %d", n, 2*maxKnownKeys)
	}
	// A third: the first generation is dropped whole.
	k.put(hash(2*maxKnownKeys), hour)
	if _, ok := k.get(hash(0)); ok {
		t.Error("a key of the first generation is known after the third began")
	}
	if _, ok := k.get(hash(maxKnownKeys)); !ok {
		t.Error("a key of the second generation is forgotten")
	}
	if n := k.len(); n != maxKnownKeys+1 {
		t.Errorf("%d keys known, want %d", n, maxKnownKeys+1)
	}
}
