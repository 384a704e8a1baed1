// Package abuse holds pinglab's abuse suite: tests that run the pinglab binary against floods,
// hostile servers, huge files and exhausted limits, on loopback and in namespaces the tests make,
// each with a bound in time and count, and assert the bounds pinglab keeps (memory, fairness,
// escaping, what survives a failure). It has no code of its own.
package abuse
