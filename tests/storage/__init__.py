"""Storage contract tests: one suite run against every UserRepository backend."""
