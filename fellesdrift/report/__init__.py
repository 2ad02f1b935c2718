"""Phase 7, report: what the lab's status is, the report of the centre, and invoicing (amounts, EHF
documents, the official rules, the kept invoices)."""
