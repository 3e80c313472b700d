"""What runs INSIDE the sandbox, as the student: the grading kernel (:mod:`.kernel`) and what
it imports (:mod:`.fingerprints`, the ledger's writer :mod:`.ledger`). It imports nothing of
:mod:`classgrade.trusted`, which a sandbox cannot see."""
