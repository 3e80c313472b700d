"""classgrade: grade a whole class of nbgrader notebooks, in parallel, each in a sandbox.

The instructors' tool (not part of ``convlab``, which students install). Its folders say
where their code runs:

- :mod:`classgrade.trusted` runs as the grader, OUTSIDE any sandbox: the command line
  (``python -m classgrade``), the run, the Dask path, nbgrader's input and output, the
  sandbox's launcher, the verdicts and the report. It is never visible inside a sandbox.
- :mod:`classgrade.sandboxed` runs INSIDE the sandbox, as the student: the grading kernel
  and what it imports (its audit hook, the fingerprints, the recorder of the instructor's
  run), and the replay, which makes the graded calls again in a sandbox of its own.
- :mod:`classgrade.protocol` holds the typed records that cross between processes and
  between the two sides; it is visible inside the sandbox too, with this file and
  ``sandboxed/``.

This file imports nothing, so that the sandbox, which sees only those, never needs the
trusted side.
"""
