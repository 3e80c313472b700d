"""What runs as the grader, OUTSIDE any sandbox; never visible inside one.

:mod:`.cli` (``python -m classgrade``) calls :func:`.run.grade_class`, which starts the warm
kernels (:mod:`.zygote`) or the Dask client (:mod:`.cluster`), then runs the steps of
:mod:`.pipeline`: generate the assignment and collect the submissions (:mod:`.collect`),
grade each in a grading process (:mod:`.runner` locally, :mod:`.cluster` on Dask) with
nbgrader (:mod:`.worker`, :mod:`.notebooks`, :mod:`.kernels`, :mod:`.bounded`) and a kernel
in a bubblewrap sandbox (:mod:`.jail`), confirm the verdicts outside it (:mod:`.verdict`: the
replay, :mod:`.replay`, and the source, :mod:`.audit`), merge into the gradebook (:mod:`.gradebook`) and write the report (:mod:`.report`).
"""
import sys

# jsonschema, which nbformat imports, builds 39 parsers of RFC 3987 when the optional package
# rfc3987-syntax is installed (jupyter-events' extra installs it): ~1.4 CPU s in every grader
# process, for the "iri" string formats, which no notebook or nbgrader schema uses. Marked
# missing, it is not imported, and jsonschema leaves those formats unchecked.
sys.modules.setdefault("rfc3987_syntax", None)
