"""The job: every phase in order (up), the selection of stacks and hosts, and what the machine
needs before it starts (doctor)."""
