"""The book's two editions, English and Chinese, from one source (issue 27).

Runs on the maintainer's machine, outside Sphinx: ``make book``, ``make catalogs``,
``make exercises`` and the tests call it. The English MyST chapters (``book/*.md``)
and the released notebooks (``exercises/<a>/<a>.ipynb``) stay the only source; the
Chinese edition is made from gettext catalogs:

- ``book/locales/zh_CN/LC_MESSAGES/book/<chapter>.po``: the chapters, Sphinx i18n;
- ``book/locales/zh_CN/LC_MESSAGES/exercises/<a>.po``: the markdown cells of each
  student notebook, one message per cell (its whole source), in notebook order.

Commands (``python book/_ext/editions.py <command>``):

``build [--path-output DIR]``
    Builds the English edition into ``DIR/_build/html`` and the Chinese one into
    ``DIR/_build/html/zh_CN`` (``-W -n --keep-going`` both). The catalogs are compiled
    to ``.mo`` into ``DIR/_build/locales`` (never into the source). The chapters are
    executed once per build: the jupyter-cache ``DIR/_build/.jupyter_cache`` is emptied,
    the English build executes every chapter into it (``nb_execution_mode: cache``)
    and the Chinese build reads the same outputs, so every number and figure is the
    same in both editions.
``catalogs [--cache DIR]``
    Brings every catalog up to date with the sources: Sphinx's gettext builder and
    ``sphinx-intl update`` for the chapters (the figures' captions included, so the chapters
    are read from the jupyter-cache of the last ``make book``, and a chapter not in it runs),
    the notebooks' markdown cells for the assignments. Prints the messages that are new or
    changed (to translate).
``fill COMPENDIUM.po``
    Fills the empty or fuzzy messages of every catalog with the translation of the same
    message in a compendium (a ``.po`` of translated messages), and prints how many.
``notebooks [--check]``
    Writes ``exercises/zh_CN/<a>/<a>.ipynb`` from ``exercises/<a>/<a>.ipynb`` and its
    catalog: markdown cells translated, every other cell (and each answer cell) byte
    for byte as released. ``--check`` writes nothing and fails if a file would change.
"""

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCALES = REPO / "book" / "locales"
# Languages the book is translated into (the source is English).
TRANSLATIONS = ("zh_CN",)
# The gettext settings of the catalogs (also in _config.yml); given to every gettext build.
GETTEXT_OPTIONS = {"gettext_compact": False, "gettext_location": False, "gettext_uuid": False}


def catalog_dir(language):
    return LOCALES / language / "LC_MESSAGES"


def exercise_catalog(assignment, language):
    """Path of an assignment's catalog."""
    return catalog_dir(language) / "exercises" / f"{assignment}.po"


def assignments():
    """Every released assignment: ``exercises/<a>/<a>.ipynb``."""
    return sorted(p.name for p in (REPO / "exercises").iterdir()
                  if (p / f"{p.name}.ipynb").is_file())


# ---------------------------------------------------------------------------
# Notebooks


def source_text(cell):
    """A cell's source as one string (nbformat stores it as a list of lines or a string)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_answer(cell):
    """A cell the student writes in (nbgrader ``solution``): never translated, since
    nbgrader tells an answered cell from a blank one by its source."""
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def notebook_messages(notebook):
    """The messages of a notebook: the source of each markdown cell a student reads,
    in order, once each.

    >>> nb = {"cells": [{"cell_type": "markdown", "source": ["# A\\n", "b"]},
    ...                 {"cell_type": "code", "source": "x = 1"},
    ...                 {"cell_type": "markdown", "source": "YOUR ANSWER HERE",
    ...                  "metadata": {"nbgrader": {"solution": True}}},
    ...                 {"cell_type": "markdown", "source": "# A\\nb"}]}
    >>> notebook_messages(nb)
    ['# A\\nb']
    """
    messages = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown" and not is_answer(cell):
            text = source_text(cell)
            if text.strip() and text not in messages:
                messages.append(text)
    return messages


def split_lines(text):
    """A source string as nbformat's list of lines (each line keeps its newline)."""
    return text.splitlines(keepends=True)


class Untranslated(Exception):
    """A message of a notebook has no translation (or only a fuzzy one)."""


def translations(po):
    """``{msgid: msgstr}`` of the translated, non-fuzzy, non-obsolete entries of a polib file."""
    return {e.msgid: e.msgstr for e in po if e.msgstr and "fuzzy" not in e.flags and not e.obsolete}


def translate_notebook(notebook, table, language):
    """A copy of ``notebook`` whose markdown cells are translated by ``table``
    (``{msgid: msgstr}``); every other cell is left as it is, and the notebook's metadata
    says the language. Raises ``Untranslated`` naming the first message without a translation.

    >>> nb = {"cells": [{"cell_type": "markdown", "source": ["# A\\n", "b"], "metadata": {}},
    ...                 {"cell_type": "code", "source": ["x = 1"], "metadata": {}, "outputs": []}],
    ...       "metadata": {}}
    >>> out = translate_notebook(nb, {"# A\\nb": "# 甲\\n乙"}, "zh_CN")
    >>> out["cells"][0]["source"], out["cells"][1] == nb["cells"][1], out["metadata"]
    (['# 甲\\n', '乙'], True, {'convlab': {'language': 'zh_CN'}})
    >>> translate_notebook(nb, {}, "zh_CN")
    Traceback (most recent call last):
    editions.Untranslated: no translation of the markdown cell '# A\\nb'
    """
    out = copy.deepcopy(notebook)
    for cell in out["cells"]:
        if cell["cell_type"] != "markdown" or is_answer(cell):
            continue
        text = source_text(cell)
        if not text.strip():
            continue
        if text not in table:
            raise Untranslated(f"no translation of the markdown cell {text[:60]!r}")
        cell["source"] = split_lines(table[text]) if isinstance(cell["source"], list) else table[text]
    out["metadata"] = dict(out.get("metadata", {}), convlab={"language": language})
    return out


def notebook_json(notebook):
    """A notebook as nbformat writes it (``nbformat.write``: indent 1, sorted keys, no ASCII
    escapes, a final newline), so that the Chinese notebooks are written as nbgrader writes
    the English ones."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def translated_notebook_path(assignment, language):
    return REPO / "exercises" / language / assignment / f"{assignment}.ipynb"


def make_notebooks(check=False):
    """Write (or with ``check``, compare) every translated student notebook; return the
    problems found (untranslated messages, out-of-date files) as lines."""
    import polib

    problems = []
    for language in TRANSLATIONS:
        for assignment in assignments():
            source = REPO / "exercises" / assignment / f"{assignment}.ipynb"
            notebook = json.loads(source.read_text(encoding="utf-8"))
            catalog = exercise_catalog(assignment, language)
            if not catalog.is_file():
                problems.append(f"{catalog.relative_to(REPO)}: missing (run make catalogs)")
                continue
            try:
                text = notebook_json(translate_notebook(notebook, translations(polib.pofile(str(catalog))),
                                                        language))
            except Untranslated as error:
                problems.append(f"{catalog.relative_to(REPO)}: {error} (translate it, then make exercises)")
                continue
            target = translated_notebook_path(assignment, language)
            if check:
                if not target.is_file() or target.read_text(encoding="utf-8") != text:
                    problems.append(f"{target.relative_to(REPO)} is out of date: run make exercises")
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    return problems


# ---------------------------------------------------------------------------
# Catalogs


def update_exercise_catalog(path, messages, language):
    """Make the catalog at ``path`` hold exactly ``messages`` (in that order), keeping the
    translations of messages it already had. Returns the messages that need a translation."""
    import polib

    old = polib.pofile(str(path)) if path.is_file() else None
    kept = {e.msgid: e for e in old} if old is not None else {}
    po = polib.POFile(wrapwidth=0)
    po.metadata = old.metadata if old is not None else {
        "Project-Id-Version": "ConvLab", "Language": language, "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit"}
    todo = []
    for message in messages:
        entry = kept.get(message)
        if entry is None or entry.obsolete:
            entry = polib.POEntry(msgid=message, msgstr="")
        entry.obsolete = False
        po.append(entry)
        if not entry.msgstr or "fuzzy" in entry.flags:
            todo.append(message)
    path.parent.mkdir(parents=True, exist_ok=True)
    po.save(str(path))
    return todo


def extract_chapter_messages(outdir, root=REPO, cache=None):
    """Run Sphinx's gettext builder on the book in ``root`` into ``outdir`` (the ``.pot``
    files); returns the exit status. Writes nothing in ``root`` (no conf.py).

    The captions of the figures that code cells draw are messages, and a cell has a figure only
    once it has run: the chapters are read from the jupyter-cache ``cache`` (by default that of
    ``make book``, ``_build/.jupyter_cache``), and a chapter whose code is not in it runs.
    What the cells output is not a message (``language_switch.CodeOutputs``)."""
    cache = Path(cache) if cache else Path(root) / "_build" / ".jupyter_cache"
    overrides = dict(GETTEXT_OPTIONS, nb_execution_mode="cache", nb_execution_cache_path=str(cache),
                     language="en")
    return sphinx_build(outdir, Path(outdir) / ".doctrees", overrides, builder="gettext", root=root)


def chapter_messages(potdir):
    """``{chapter catalog path relative to LC_MESSAGES: [msgid, ...]}`` of a gettext build."""
    import polib

    return {str(p.relative_to(potdir).with_suffix(".po")): [e.msgid for e in polib.pofile(str(p)) if e.msgid]
            for p in sorted(Path(potdir).rglob("*.pot"))}


def update_catalogs(cache=None):
    """Bring every catalog up to date; return ``[(catalog, message)]`` still to translate.
    ``cache``: the jupyter-cache to read the chapters' outputs from (``extract_chapter_messages``)."""
    import polib

    todo = []
    with tempfile.TemporaryDirectory() as potdir:
        if extract_chapter_messages(potdir, cache=cache):
            raise SystemExit("editions: Sphinx's gettext builder failed (see above)")
        for language in TRANSLATIONS:
            subprocess.run([str(Path(sys.executable).parent / "sphinx-intl"), "update", "-p", potdir,
                            "-l", language, "-d", str(LOCALES)], check=True, cwd=REPO,
                           capture_output=True)
            for name in chapter_messages(potdir):
                path = catalog_dir(language) / name
                todo += [(str(path.relative_to(REPO)), e.msgid) for e in polib.pofile(str(path))
                         if not e.obsolete and (not e.msgstr or "fuzzy" in e.flags)]
    for language in TRANSLATIONS:
        for assignment in assignments():
            notebook = json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text())
            path = exercise_catalog(assignment, language)
            todo += [(str(path.relative_to(REPO)), m)
                     for m in update_exercise_catalog(path, notebook_messages(notebook), language)]
    return todo


def fill_from(compendium):
    """Give each empty or fuzzy message of every catalog the compendium's translation of the
    same message; return the number of messages filled."""
    import polib

    table = translations(polib.pofile(str(compendium)))
    filled = 0
    for path in sorted(LOCALES.glob("*/LC_MESSAGES/**/*.po")):
        po = polib.pofile(str(path))
        changed = False
        for entry in po:
            if (not entry.msgstr or "fuzzy" in entry.flags) and entry.msgid in table:
                entry.msgstr = table[entry.msgid]
                if "fuzzy" in entry.flags:
                    entry.flags.remove("fuzzy")
                entry.previous_msgid = None
                filled, changed = filled + 1, True
        if changed:
            po.save(str(path))
    return filled


# ---------------------------------------------------------------------------
# The build


def compile_catalogs(language, dest):
    """Compile the chapters' catalogs of ``language`` to ``.mo`` under ``dest`` (a locale dir)."""
    import polib

    source = catalog_dir(language) / "book"
    target = Path(dest) / language / "LC_MESSAGES" / "book"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for po_path in sorted(source.glob("*.po")):
        polib.pofile(str(po_path)).save_as_mofile(str(target / po_path.with_suffix(".mo").name))


def sphinx_build(outdir, doctreedir, overrides, builder="html", root=REPO):
    """One Jupyter Book (Sphinx) build of the repository, as ``jupyter-book build
    -W -n --keep-going`` makes it; returns the exit status."""
    from jupyter_book.sphinx import build_sphinx

    root = Path(root)
    overrides = dict(overrides, external_toc_path=str(root / "_toc.yml"), nitpicky=True,
                     latex_individualpages=False)
    result = build_sphinx(root, outdir, use_external_toc=True, noconfig=True,
                          path_config=str(root / "_config.yml"), confoverrides=overrides,
                          doctreedir=doctreedir, builder=builder, warningiserror=True, keep_going=True)
    if isinstance(result, Exception):
        print(f"editions: the build of {outdir} failed: {result!r}", file=sys.stderr)
        return 1
    return result


def build(path_output):
    """Build both editions under ``path_output/_build``; return the exit status."""
    build_dir = Path(path_output).resolve() / "_build"
    html = build_dir / "html"
    cache = build_dir / ".jupyter_cache"
    if cache.exists():
        shutil.rmtree(cache)  # every build executes every chapter (once: see the module's docstring)
    common = {"nb_execution_mode": "cache", "nb_execution_cache_path": str(cache)}
    status = sphinx_build(html, build_dir / ".doctrees", dict(common, language="en"))
    for language in TRANSLATIONS:
        locales = build_dir / "locales"
        compile_catalogs(language, locales)
        # Built beside the English edition, then moved into it: myst-nb writes its executed
        # notebooks next to the output folder (jupyter_execute/), which must not land in html/.
        staging = build_dir / language
        overrides = dict(common, language=language, locale_dirs=[str(locales)],
                         gettext_compact=False, html_search_language="zh")
        status = sphinx_build(staging / "html", staging / ".doctrees", overrides) or status
        if (html / language).exists():
            shutil.rmtree(html / language)
        if (staging / "html").exists():
            shutil.copytree(staging / "html", html / language)
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="editions", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build both editions")
    build_parser.add_argument("--path-output", default=str(REPO))
    catalogs_parser = commands.add_parser("catalogs", help="update every catalog from the sources")
    catalogs_parser.add_argument("--cache", default=None,
                                 help="jupyter-cache of executed chapters (default: _build/.jupyter_cache)")
    fill_parser = commands.add_parser("fill", help="fill untranslated messages from a compendium")
    fill_parser.add_argument("compendium")
    notebooks_parser = commands.add_parser("notebooks", help="write the translated student notebooks")
    notebooks_parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build(args.path_output)
    if args.command == "catalogs":
        todo = update_catalogs(args.cache)
        for catalog, message in todo:
            print(f"{catalog}: {message[:100]!r}")
        print(f"{len(todo)} message(s) to translate" if todo else "every message is translated")
        return 0
    if args.command == "fill":
        print(f"{fill_from(args.compendium)} message(s) filled from {args.compendium}")
        return 0
    problems = make_notebooks(check=args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
