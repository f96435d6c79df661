//go:build !race

package e2e

// raceEnabled is true when the tests are built with -race; the lanchat
// binary under test is then built with -race too.
const raceEnabled = false
