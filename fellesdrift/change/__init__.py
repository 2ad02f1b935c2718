"""Changes to the lab, applied as planned and inside their windows (issue 12).

:mod:`.windows` a service level's maintenance window on the Oslo clock; :mod:`.audit` the
append-only record of every apply; :mod:`.gate` which municipalities an `up` changes and
whether their windows are open; :mod:`.planfile` a plan with a digest of every input.
"""
