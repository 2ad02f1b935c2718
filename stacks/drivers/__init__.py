"""Drivers decide where machines and networks come from; components do not know which is used."""
