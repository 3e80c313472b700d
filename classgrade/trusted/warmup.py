"""Warm the grader before it forks its grading processes: imports, validators, templates.

Runs as the grader (and in a Dask worker's forkserver, :mod:`.warm`): what each grading
process would otherwise do again, done once before the forks.
"""
import importlib
import json

import jinja2
import jsonschema
import nbformat
import nbgrader.api  # noqa: F401 - its ORM mappers, configured below
import nbgrader.nbgraderformat.common
import sqlalchemy
from jupyter_client.provisioning import KernelProvisionerFactory
from nbconvert.exporters import HTMLExporter
from nbconvert.exporters.templateexporter import TemplateExporter
from sqlalchemy.orm import configure_mappers
from traitlets.config import Config

from .feedback import configure   # our feedback template


# what each grading child would otherwise import again: the kernel machinery (jupyter_client's
# kernelspec imports IPython), nbgrader's converters and preprocessors, nbconvert's exporters
WARM_IMPORTS = ["IPython", "jupyter_client.kernelspec", "nbclient", "nbconvert.exporters",
                "nbconvert.preprocessors", "nbgrader.apps", "nbgrader.converters", "nbgrader.preprocessors",
                "pygments.formatters.html", "pygments.lexers.python"]


_COMPILED_TEMPLATES = {}   # Jinja bytecode cache key -> (source checksum, code)


def _share_compiled_templates():
    """nbconvert compiles its Jinja templates again in every exporter, so every child
    compiled the feedback templates (~0.2 s): give every exporter's environment one
    in-memory bytecode cache, filled once in the grader before it forks. A template whose
    source changed has another checksum and is compiled again."""
    if getattr(TemplateExporter._create_environment, "classgrade_cache", False):
        return

    class Cache(jinja2.BytecodeCache):
        @staticmethod
        def _key(bucket):
            env = bucket.environment
            return bucket.key, env.is_async, tuple(sorted(env.extensions))

        def load_bytecode(self, bucket):
            hit = _COMPILED_TEMPLATES.get(self._key(bucket))
            if hit is not None and hit[0] == bucket.checksum:
                bucket.code = hit[1]

        def dump_bytecode(self, bucket):
            _COMPILED_TEMPLATES[self._key(bucket)] = (bucket.checksum, bucket.code)

    cache, create = Cache(), TemplateExporter._create_environment

    def _create_environment(self):
        environment = create(self)
        environment.bytecode_cache = cache
        return environment

    _create_environment.classgrade_cache = True
    TemplateExporter._create_environment = _create_environment


class _CheckedSchemas:
    """``jsonschema`` for nbgrader's cell metadata, with one validator per schema.

    nbgrader validates the metadata of every graded cell, about 10 times a submission, with
    ``jsonschema.validate``, which checks the schema itself again at every call (~0.03 CPU s a
    submission): here each schema is checked once, and the same errors are raised."""

    def __init__(self):
        self._validators = {}

    def __getattr__(self, name):   # the rest of the module, as nbgrader uses it
        return getattr(jsonschema, name)

    def validate(self, instance, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            self._validators[key] = cls(schema)
        error = jsonschema.exceptions.best_match(self._validators[key].iter_errors(instance))
        if error is not None:
            raise error


def _feedback_exporter():
    """An HTML exporter configured as nbgrader's GenerateFeedback configures its own."""
    return HTMLExporter(config=configure(Config()))


def warm_up(notebooks=(), feedback=False):
    """Import :data:`WARM_IMPORTS`, in the grader before it forks the grading children; with
    ``feedback``, compile the feedback templates once by rendering ``notebooks``."""
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    # nbgrader's ORM mappers are configured on first use (~0.25 s), sqlite's dialect loaded
    configure_mappers()
    # jupyter_client's provisioners, read from every installed package's entry points (~0.03 s
    # each kernel start otherwise), and nbgrader's metadata schemas, checked once
    KernelProvisionerFactory.instance()
    if not isinstance(nbgrader.nbgraderformat.common.jsonschema, _CheckedSchemas):
        nbgrader.nbgraderformat.common.jsonschema = _CheckedSchemas()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect():
        pass
    engine.dispose()
    # nbformat builds a schema validator on first use: strict, and relaxed (nbconvert's)
    notebooks = list(notebooks) or [nbformat.v4.new_notebook()]
    for nb in notebooks:
        for relax in (False, True):
            nbformat.validate(nbformat.from_dict(json.loads(json.dumps(nb))), relax_add_props=relax)
    if feedback:
        _share_compiled_templates()
        for nb in notebooks:
            nb = nbformat.from_dict(json.loads(json.dumps(nb)))
            for cell in nb.cells:   # as nbgrader's GetGrades leaves them
                if "nbgrader" in cell.get("metadata", {}):
                    cell.metadata.nbgrader.update(score=0.0, points=cell.metadata.nbgrader.get("points", 0.0),
                                                  comment="")
            try:
                _feedback_exporter().from_notebook_node(
                    nb, dict(nbgrader=dict(score=0.0, max_score=0.0, late_penalty=0.0, notebook="warm-up")))
            except Exception:  # noqa: BLE001 - the templates compiled so far are cached anyway
                pass
