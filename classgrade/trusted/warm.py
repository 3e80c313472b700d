"""Imported by the forkserver of a Dask worker's grading processes (see :class:`.runner.Runner`):
:func:`.warmup.warm_up` once there, as the local grader does before it forks, so that no
grading child imports nbgrader, configures its gradebook or compiles the feedback templates
again. Importing this module is what warms (multiprocessing preloads modules by name); then
what it made is frozen, for the collectors of the forks (see :meth:`.runner.Runner._start`)."""
import gc

from . import warmup, worker  # noqa: F401 - worker: what each grading child runs

warmup.warm_up(feedback=True)
gc.freeze()
