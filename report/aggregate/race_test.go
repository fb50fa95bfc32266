//go:build race

package aggregate

// raceEnabled is set when the tests run under the race detector, which
// makes the writer some fifteen times slower.
const raceEnabled = true
