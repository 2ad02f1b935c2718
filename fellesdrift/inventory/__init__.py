"""Phase 1, the inventory: the model of a centre and its municipalities, read from untrusted YAML
(load), checked (rules), its schema, migrations and the join flow (scaffold)."""
