"""Phase 2, the plan: what the model means, derived without I/O. Topology and addresses, the names
of everything, the host functions, which hosts a change touches."""
