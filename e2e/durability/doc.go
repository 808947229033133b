// Package durability holds end-to-end tests of what the broker promises
// about its data and its connections, each against real broker processes
// started by e2e/cluster:
//
//   - a SIGKILLed broker keeps every acknowledged record, with every fsync
//     policy (the page cache survives a killed process);
//   - an idempotent producer's retried batch is answered with its original
//     offset and stored once, across a SIGTERM or SIGKILL restart, and a
//     sequence gap is refused with OUT_OF_ORDER_SEQUENCE_NUMBER;
//   - a torn segment tail (garbage appended, or a batch cut short) is
//     truncated at start, everything before it is served and new records
//     follow it at the right offsets;
//   - malformed, oversized, unknown and unserved requests close only their
//     own connection, bad batches get per-partition errors, and other
//     clients see nothing of it;
//   - SIGTERM during produce and long-poll fetch exits 0 promptly and leaves
//     a clean log;
//   - size retention advances the log start offset and consumers from the
//     earliest offset get exactly the retained tail.
//
// The package has no non-test code besides this file.
package durability
