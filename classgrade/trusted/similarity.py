"""``python -m classgrade similarity``: pairs of submissions whose own code is unusually alike.

Runs as the grader, on notebooks as text: no student code runs. Example::

    python -m classgrade similarity cross_correlation --out grading/          # grading/autograded/
    python -m classgrade similarity cross_correlation --out grading/ submitted/

**What is compared.** Each student's *own code*: the code cells that nbgrader marks as
solution cells (metadata ``nbgrader.solution: true``) of the assignment's notebooks, with
comments and docstrings left out (:func:`own_code`). The released code of those cells (the
``def`` lines, the docstrings, ``raise NotImplementedError()``: the assignment's release in
``exercises/<assignment>/``, which nbgrader generates from ``solutions/<assignment>/``) is
given to copydetect as boilerplate, so it matches nobody. Cells the student added outside the
solution cells (scratch tests, prints) are not compared. An unreadable, empty or missing
notebook is noted and counts as no own code; it never stops the run.

**How.** `copydetect <https://github.com/blingenf/copydetect>`_ (MIT) fingerprints each
student's own code: pygments tokenizes it, drops whitespace and comments, and replaces every
name (variables, attributes, functions, modules) by one letter, so renaming, re-spacing,
commenting and moving functions around change nothing; keywords, operators, numbers and
builtins (``range``, ``len``) stay. Hashes of every run of ``--noise`` consecutive normalized
characters are compared between every two students (robust winnowing with window 1: every
k-gram is kept, so the result does not depend on Python's string-hash seed). Its numbers, for a
pair ``a``, ``b``: the share of ``a``'s own (non-boilerplate) code that ``b`` also has, the same
for ``b``, and the amount of code they share (normalized characters). A copy with dead code or
functions of its own added keeps a high share on the side of the original, so a pair's score is
the larger of the two shares.

**Thresholds, and why.** A short exercise has few correct answers: once names are one letter,
two honest, independent 2-line ``corr2d`` built on ``unfold`` are nearly the same string, and so
are two lecture-style double loops. What they share is short, because they are short; what a
copy shares is all of the code, however long. So a pair is flagged only when

- its score is at least ``--threshold`` (default :data:`THRESHOLD`, 0.8: four fifths of one
  student's own code is also the other's), and
- they share at least ``--min-shared`` normalized characters (default :data:`MIN_SHARED`, 300,
  about 12 lines of ordinary code with one-letter names), counting only
- shared runs of at least ``--noise`` normalized characters (default :data:`NOISE`, 30, about
  a line; copydetect's default is 25: ``for V in range(V):`` alone is in every loop solution).

On the corpus of ``tests/test_similarity.py`` (``tests/similarity/<assignment>/``), the
disguised copies score 0.96 to 1.00 and share 398 to 469 characters; the closest honest pairs
score at most 0.74 (two solutions of ``shapes_padding_stride`` written as the lecture does,
sharing 246 and 250 characters of their 330 to 400) and the honest look-alikes of
``cross_correlation`` (whole own code: 88 to 164 characters) at most 0.67, sharing at most 101.
The two conditions leave a margin on both sides. Below them, two submissions are as alike as honest solutions of
the exercise can be, and no report can tell copying from agreement: a submission with less than
``--min-shared`` of own code (most of ``cross_correlation``) is never flagged. On another kind
of exercise, read the closest unflagged pairs the report lists before trusting the defaults;
code that students were shown (the lecture's, ``book/<chapter>.md``) can be given with
``--boilerplate``, so that it matches nobody either.

**What it writes** (in ``--out``): ``similarity.html`` (``-o``), the flagged pairs, highest
score first, each with both students' own code side by side and the shared code highlighted,
then the closest pairs below the thresholds and the notes (unreadable notebooks); and
``similarity.json``, the same as data: settings, every submission's amount of own code and
notes, the flagged pairs (scores, shared lines) and the closest unflagged ones.

A flagged pair is a reason to read both submissions, not proof of copying: the two may
share a source (a textbook, a forum answer, the lecture, a study group) or have copied it from
a third student. An unflagged pair is not proof of independence either: a copy rewritten
beyond the normalization (another algorithm, other builtins) is not found, nor copying of
code too short to tell from agreement.
"""
import argparse
import ast
import html
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy
# copydetect imports matplotlib's pyplot (about 1 s); this module is imported only when the
# command runs (cli.COMMANDS), never by grading
from copydetect import CodeFingerprint, compare_files

from .errors import InstructorError

THRESHOLD = 0.8     # a pair's score: the larger share of one student's own code found in the other's
MIN_SHARED = 300    # normalized characters the two share, at least
NOISE = 30          # copydetect's noise threshold: the shortest shared run that counts
CLOSEST = 10        # unflagged pairs listed, closest first

RELEASE = "exercises"   # nbgrader's release directory of this course (nbgrader_config.py)


@dataclass
class Submission:
    """One student's own code, as compared (``code``), and what went wrong reading it."""
    student: str
    code: str = ""
    notes: list = field(default_factory=list)
    own: int = 0            # normalized characters of own code, less the boilerplate


@dataclass
class Pair:
    """Two students' shared code by copydetect: shares of each one's own code, and where."""
    a: str
    b: str
    share_a: float
    share_b: float
    shared: int             # normalized characters in shared runs (on ``a``'s side)
    slices_a: list          # [(start, end)] character spans of a's code that b also has
    slices_b: list

    @property
    def score(self):
        return max(self.share_a, self.share_b)


def parser():
    p = argparse.ArgumentParser(
        prog="python -m classgrade similarity",
        description="Pairs of submissions whose own code (solution cells, less the released code, "
                    "comments and docstrings) is unusually alike, by copydetect; an HTML report "
                    "with the shared code side by side, and similarity.json.")
    p.add_argument("assignment", help="assignment name, e.g. cross_correlation")
    p.add_argument("submissions", nargs="?", default=None,
                   help="folder of <student>/<assignment>/*.ipynb: nbgrader's submitted/ or the "
                        "grader's autograded/ (default: OUT/autograded)")
    p.add_argument("--out", default="grading", help="output folder (default: grading/)")
    p.add_argument("--course", default=".", help="course root, with exercises/<assignment>/ (default: .)")
    p.add_argument("--release", default=None,
                   help="the assignment's released notebooks (default: COURSE/exercises/ASSIGNMENT)")
    p.add_argument("-o", "--output", default="similarity.html",
                   help="report file name, in OUT unless a path (default: similarity.html)")
    p.add_argument("--threshold", type=float, default=THRESHOLD,
                   help="flag a pair when this share of one student's own code is also the other's "
                        f"(0..1, default {THRESHOLD})")
    p.add_argument("--min-shared", type=int, default=MIN_SHARED,
                   help="...and they share at least this many normalized characters "
                        f"(names count one letter, default {MIN_SHARED})")
    p.add_argument("--boilerplate", action="append", default=[], metavar="FILE",
                   help="more code that is everyone's, e.g. the lecture's (book/padding_stride.md): "
                        "its code cells (.ipynb), code blocks (.md) or text (.py) match nobody; repeatable")
    p.add_argument("--noise", type=int, default=NOISE,
                   help=f"shortest shared run of normalized characters that counts (default {NOISE})")
    return p


# ---------------------------------------------------------------- own code

def _docstring_lines(tree):
    """Line numbers (1-based) of every docstring of the module, its functions and classes."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def own_code(source):
    """``source`` (a code cell's) less its comments, docstrings and blank lines.

    IPython's ``%magic`` and ``!shell`` lines are kept as text (they are code the student
    wrote). A cell that does not parse keeps its docstrings; one that does not even tokenize
    loses only its whole-line comments.
    """
    lines = source.splitlines()
    masked = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines) + "\n"
    cut = {}        # line index -> column where a comment starts
    try:
        for tok in tokenize.generate_tokens(io.StringIO(masked).readline):
            if tok.type == tokenize.COMMENT:
                cut[tok.start[0] - 1] = tok.start[1]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        cut = {i: line.index("#") for i, line in enumerate(lines) if line.lstrip().startswith("#")}
    try:
        docs = _docstring_lines(ast.parse(masked))
    except (SyntaxError, ValueError):
        docs = set()
    kept = []
    for i, line in enumerate(lines):
        if i + 1 in docs:
            continue
        line = line[:cut[i]] if i in cut else line
        if line.strip():
            kept.append(line.rstrip())
    return "\n".join(kept)


def solution_sources(nb):
    """``[(grade id, source)]`` of the solution code cells of notebook ``nb``, in order."""
    cells = []
    for cell in nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") == "code" and meta.get("solution"):
            source = cell.get("source", "")
            cells.append((str(meta.get("grade_id", "?")), "".join(source) if isinstance(source, list) else source))
    return cells


def _read(path):
    """The notebook at ``path`` as a dict; ValueError with the reason if it is not one."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise ValueError("the file is empty")
    nb = nbformat.reads(text, as_version=4)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("no cells")
    return nb


def extract(folder, names):
    """One student's :class:`Submission` (less ``student``) from the notebooks ``names`` in ``folder``."""
    parts, notes = [], []
    for name in names:
        path = Path(folder) / name
        if not path.is_file():
            notes.append(f"{name} is missing")
            continue
        try:
            cells = solution_sources(_read(path))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is noted alike
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            notes.append(f"{name} is not a readable notebook ({reason})")
            continue
        if not cells:
            notes.append(f"{name} has no solution cell")
        for grade_id, source in cells:
            code = own_code(source)
            if code:
                parts.append(f"# {name}: {grade_id}\n{code}")
    return Submission("", "\n\n".join(parts) + ("\n" if parts else ""), notes)


def release_notebooks(release_dir):
    """name -> notebook of the assignment's release; InstructorError if there is none."""
    release_dir = Path(release_dir)
    paths = sorted(release_dir.glob("*.ipynb")) if release_dir.is_dir() else []
    if not paths:
        raise InstructorError(f"no released notebook in {release_dir}: give the assignment's release "
                              "with --release (nbgrader generate_assignment writes it), or --course")
    return {p.name: _read(p) for p in paths}


def boilerplate(release):
    """The released code of the solution cells, as :func:`extract` renders a student's."""
    return "\n\n".join(f"# {name}: {gid}\n{own_code(src)}"
                       for name, nb in release.items() for gid, src in solution_sources(nb)) + "\n"


FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*(?:\{code-cell\}|python|ipython3?|py)(?:[ \t][^\n]*)?\n(.*?)^\1[ \t]*$",
                   re.M | re.S)


def extra_boilerplate(path):
    """The code of ``path`` that is everyone's: a notebook's code cells, a Markdown (MyST)
    file's code blocks (``{code-cell}``, ``python``), or a file of code; InstructorError if unreadable."""
    path = Path(path)
    try:
        if path.suffix == ".ipynb":
            nb = _read(path)
            sources = ["".join(c.get("source", "")) for c in nb["cells"] if c.get("cell_type") == "code"]
        elif path.suffix.lower() in (".md", ".myst", ".markdown"):
            text = path.read_text(encoding="utf-8")
            # a MyST code cell's options (":tags:", "---" front matter) are not code: the tokenizer drops little
            sources = [m.group(2) for m in FENCE.finditer(text)]
        else:
            sources = [path.read_text(encoding="utf-8")]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InstructorError(f"--boilerplate {path}: cannot read it ({exc}): give a notebook, "
                              "a Markdown file or a file of code") from None
    return "\n\n".join(own_code(src) for src in sources) + "\n"


def find_submissions(folder, assignment):
    """student -> that student's folder ``folder/<student>/<assignment>/``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InstructorError(f"{folder} is not a folder: give the submissions as nbgrader's "
                              "submitted/ or the grader's autograded/ (<student>/<assignment>/*.ipynb)")
    found = {d.name: d / assignment for d in sorted(folder.iterdir())
             if d.is_dir() and (d / assignment).is_dir()}
    if not found:
        raise InstructorError(f"no submission of {assignment} in {folder} (expected "
                              f"{folder}/<student>/{assignment}/*.ipynb): check the assignment's name and the folder")
    return found


# ---------------------------------------------------------------- comparison

def compare(submissions, boilerplate_code, noise=NOISE):
    """Every pair of ``submissions`` (:class:`Submission`) with any shared code, by copydetect.

    Sets each submission's ``own``. Window 1 (``guarantee_t == noise_t``): every k-gram is a
    fingerprint, so the result does not depend on how Python's string hash is seeded.
    """
    def fingerprint(name, code, boilerplate=None):
        # the name tells copydetect's pygments the language; the code comes from fp
        return CodeFingerprint(name, k=noise, win_size=1, boilerplate=boilerplate, fp=io.StringIO(code))

    # as CopyDetector._get_boilerplate_hashes does with its boilerplate files
    released = numpy.unique(numpy.array(list(fingerprint("release.py", boilerplate_code).hashes)))
    prints = [fingerprint(f"s{i:05d}.py", sub.code, released) for i, sub in enumerate(submissions)]
    for sub, fp in zip(submissions, prints):
        sub.own = int(fp.token_coverage)
    pairs = []
    for i, a in enumerate(submissions):
        for j in range(i + 1, len(submissions)):
            shared, (share_a, share_b), (slices_a, slices_b) = compare_files(prints[i], prints[j])
            if shared > 0:
                pairs.append(Pair(a.student, submissions[j].student, float(share_a), float(share_b),
                                  int(shared), _spans(slices_a), _spans(slices_b)))
    pairs.sort(key=lambda p: (-p.score, -p.shared, p.a, p.b))
    return pairs


def _spans(slices):
    return [(int(s), int(e)) for s, e in zip(slices[0], slices[1])] if len(slices) else []


def flagged(pair, threshold=THRESHOLD, min_shared=MIN_SHARED):
    return pair.score >= threshold and pair.shared >= min_shared


HEADER = re.compile(r"^# .+: \S+$", re.M)    # "# <notebook>: <grade id>", which extract() writes


def clip(code, spans):
    """``spans`` less the header lines that :func:`extract` wrote between cells (a shared run
    may go on from one cell into the next; the header between is no one's code)."""
    out = []
    for start, end in sorted(spans):
        for header in HEADER.finditer(code):
            if start < header.end() and header.start() < end:
                if start < header.start():
                    out.append((start, header.start()))
                start = header.end()
        if start < end:
            out.append((start, end))
    return out


def shared_lines(code, spans):
    """The lines of ``code`` at least half of whose characters (less spaces) the spans cover, stripped."""
    covered = [False] * len(code)
    for start, end in clip(code, spans):
        covered[start:end] = [True] * (min(end, len(code)) - start)
    lines, at = [], 0
    for line in code.split("\n"):
        chars = [k for k in range(at, at + len(line)) if not code[k].isspace()]
        if chars and 2 * sum(covered[k] for k in chars) >= len(chars):
            lines.append(line.strip())
        at += len(line) + 1
    return lines


def _highlight(code, spans):
    """``code`` as HTML, the spans marked; the spans may not be sorted or may overlap."""
    out, at = [], 0
    for start, end in clip(code, spans):
        start = max(start, at)
        if end <= start:
            continue
        out.append(html.escape(code[at:start]))
        out.append(f"<mark>{html.escape(code[start:end])}</mark>")
        at = end
    out.append(html.escape(code[at:]))
    return "".join(out)


# ---------------------------------------------------------------- report

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1400px; }
table.pairs { border-collapse: collapse; } table.pairs td, table.pairs th { padding: 2px 10px; text-align: left; }
.pair { border-top: 1px solid #999; margin-top: 2em; }
.side { display: flex; gap: 1em; } .side > div { flex: 1; min-width: 0; }
pre { background: #f6f6f6; padding: 0.6em; white-space: pre-wrap; font-size: 13px; }
mark { background: #f7c6c6; }
.note { color: #555; }
"""


def _n(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def write_html(path, assignment, subs, pairs, settings):
    by_name = {s.student: s for s in subs}
    flag = [p for p in pairs if flagged(p, settings["threshold"], settings["min_shared"])]
    near = [p for p in pairs if not flagged(p, settings["threshold"], settings["min_shared"])][:CLOSEST]
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Similarity: {e(assignment)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Similar own code: {e(assignment)}</h1>",
             f"<p>{len(subs)} submissions compared; {_n(len(flag), 'pair')} flagged (score at least "
             f"{settings['threshold']:.0%} and at least {settings['min_shared']} normalized characters "
             f"shared, in runs of at least {settings['noise']}). Own code: the solution cells, less "
             "the released code, comments and docstrings; names count as one letter "
             "(copydetect's normalization). The score is the larger share of one student's own code "
             "that the other also has.</p>",
             "<p class='note'>A flagged pair is a reason to read both submissions, not proof of "
             "copying: both may come from a common source, or from a third student. An unflagged "
             "pair is not proof of independence: code too short to tell from agreement, or "
             "rewritten beyond renaming and reordering, is not found.</p>"]
    if flag:
        parts.append("<table class='pairs'><tr><th>score</th><th>pair</th><th>shares</th><th>shared characters</th></tr>")
        for n, p in enumerate(flag, 1):
            parts.append(f"<tr><td>{p.score:.0%}</td><td><a href='#pair{n}'>{e(p.a)} &amp; {e(p.b)}</a></td>"
                         f"<td>{p.share_a:.0%} / {p.share_b:.0%}</td><td>{p.shared}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p><b>No pair is above the thresholds.</b></p>")
    for n, p in enumerate(flag, 1):
        a, b = by_name[p.a], by_name[p.b]
        parts.append(f"<div class='pair' id='pair{n}'><h2>{n}. {e(p.a)} &amp; {e(p.b)}: {p.score:.0%}</h2>"
                     f"<p>{p.shared} normalized characters shared: {p.share_a:.0%} of {e(p.a)}'s own code "
                     f"({a.own}), {p.share_b:.0%} of {e(p.b)}'s ({b.own}). Shared code is marked.</p>"
                     "<div class='side'>"
                     f"<div><h3>{e(p.a)}</h3><pre>{_highlight(a.code, p.slices_a)}</pre></div>"
                     f"<div><h3>{e(p.b)}</h3><pre>{_highlight(b.code, p.slices_b)}</pre></div>"
                     "</div></div>")
    parts.append("<h2>Closest pairs below the thresholds</h2>")
    if near:
        parts.append("<table class='pairs'><tr><th>score</th><th>pair</th><th>shares</th><th>shared characters</th></tr>")
        for p in near:
            parts.append(f"<tr><td>{p.score:.0%}</td><td>{e(p.a)} &amp; {e(p.b)}</td>"
                         f"<td>{p.share_a:.0%} / {p.share_b:.0%}</td><td>{p.shared}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>None: no other pair shares any run of code.</p>")
    notes = [(s.student, note) for s in subs for note in s.notes]
    little = sorted(s.student for s in subs if not s.notes and s.own < settings["min_shared"])
    parts.append("<h2>Notes</h2><ul>")
    parts += [f"<li>{e(student)}: {e(note)}: no own code from it</li>" for student, note in notes]
    if little:
        parts.append(f"<li>Never flagged, with less own code than the minimum shared amount "
                     f"({settings['min_shared']}): {e(', '.join(little))}</li>")
    parts.append("</ul></body></html>")
    Path(path).write_text("\n".join(parts), encoding="utf-8")


def to_json(assignment, subs, pairs, settings):
    by_name = {s.student: s for s in subs}

    def record(p, lines=True):
        r = {"a": p.a, "b": p.b, "score": round(p.score, 4), "share_a": round(p.share_a, 4),
             "share_b": round(p.share_b, 4), "shared": p.shared}
        if lines:
            r["lines_a"] = shared_lines(by_name[p.a].code, p.slices_a)
            r["lines_b"] = shared_lines(by_name[p.b].code, p.slices_b)
        return r

    flag = [p for p in pairs if flagged(p, settings["threshold"], settings["min_shared"])]
    near = [p for p in pairs if not flagged(p, settings["threshold"], settings["min_shared"])][:CLOSEST]
    return {"assignment": assignment, "settings": settings,
            "submissions": {s.student: {"own": s.own, "notes": s.notes} for s in subs},
            "pairs": [record(p) for p in flag],
            "closest_unflagged": [record(p, lines=False) for p in near]}


def main(argv=None):
    args = parser().parse_args(argv)
    if not 0 <= args.threshold <= 1:
        raise InstructorError(f"--threshold {args.threshold}: give a share between 0 and 1, e.g. 0.6")
    if args.noise < 1 or args.min_shared < 0:
        raise InstructorError("--noise must be at least 1 and --min-shared at least 0")
    out = Path(args.out)
    release_dir = Path(args.release) if args.release else Path(args.course) / RELEASE / args.assignment
    release = release_notebooks(release_dir)
    folder = Path(args.submissions) if args.submissions else out / "autograded"
    students = find_submissions(folder, args.assignment)
    subs = []
    for student, path in students.items():
        sub = extract(path, list(release))
        sub.student = student
        subs.append(sub)
    common = boilerplate(release) + "".join(extra_boilerplate(p) for p in args.boilerplate)
    pairs = compare(subs, common, noise=args.noise)
    settings = {"threshold": args.threshold, "min_shared": args.min_shared, "noise": args.noise,
                "release": str(release_dir), "boilerplate": [str(p) for p in args.boilerplate],
                "submissions": str(folder)}
    out.mkdir(parents=True, exist_ok=True)
    report = Path(args.output) if Path(args.output).parent != Path(".") else out / args.output
    write_html(report, args.assignment, subs, pairs, settings)
    data = to_json(args.assignment, subs, pairs, settings)
    (out / "similarity.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    print(f"{len(subs)} submissions of {args.assignment} compared; {_n(len(data['pairs']), 'pair')} flagged")
    print(f"report: {report}  data: {out / 'similarity.json'}")
    return 0
