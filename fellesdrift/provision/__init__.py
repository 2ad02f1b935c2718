"""Phase 3, provision: the Pulumi engine, the stacks (one per centre and municipality) run through
the automation API, the hosts they declare, the CI fan-out per stack."""
