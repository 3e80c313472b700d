"""Grade a whole class with nbgrader: parallel, isolated, with a class report.

``python -m convlab.classgrade ASSIGNMENT SUBMISSIONS --out grading/`` (see
:mod:`convlab.classgrade.run` for the pipeline, :mod:`.worker` for one
submission, :mod:`.sandbox` for the grading kernel, :mod:`.report` for the
report).
"""
__all__ = ["ClassResult", "grade_class"]


def __getattr__(name):
    # lazy: the grading kernel imports convlab.classgrade.sandbox and nothing else
    if name in __all__:
        from . import run
        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
