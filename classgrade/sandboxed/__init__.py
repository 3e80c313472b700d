"""What runs INSIDE the sandbox, as the student: the grading kernel (:mod:`.kernel`) and what
it imports (:mod:`.fingerprints`; :mod:`.record`, the recorder of the instructor's run), and the
replay (:mod:`.replay`, with :mod:`.values`). It imports nothing of :mod:`classgrade.trusted`,
which a sandbox cannot see."""
