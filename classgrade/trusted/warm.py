"""Imported by the forkserver of a Dask worker's grading processes (see ``run._Runner``):
:func:`convlab.classgrade.worker.warm_up` once there, as the local grader does before it
forks, so that no grading child imports nbgrader, configures its gradebook or compiles the
feedback templates again."""
from . import worker

worker.warm_up(feedback=True)
