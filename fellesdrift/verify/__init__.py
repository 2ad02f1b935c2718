"""Phase 6, verify: the product's testinfra suites (suites/) run against the hosts, and the verdict
per host."""
