"""The book builds cleanly: no Sphinx warning, a page per chapter, no unexpected
error output, and every figure a chapter draws is in the build.

The tests marked ``book`` share one build (the ``built_book`` fixture in
``conftest.py``). The checks on HTML are plain functions, tested first on small
hand-written pages so that we know each one fails when it should.
"""

import os
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from bs4 import BeautifulSoup

REPO = Path(__file__).resolve().parents[1]

# Sphinx reports problems as "path:line: WARNING: message" (or ERROR, CRITICAL,
# SEVERE). The kernels' own log lines, "[IPKernelApp] WARNING | ...", are not
# Sphinx warnings and do not match.
SPHINX_PROBLEM = re.compile(r"^.*\b(WARNING|ERROR|CRITICAL|SEVERE): .*$", re.MULTILINE)
# A Python warning or exception that reached a cell's error stream (stderr is
# shown in the book, e.g. for tqdm progress bars, so its text is checked).
STDERR_PROBLEM = re.compile(r"Traceback \(most recent call last\)|^\s*(\S+\.py:\d+: )?\w*(Error|Warning|Exception)\b",
                            re.MULTILINE)
EXPECTED_ERROR_TAG = "tag_raises-exception"
# Drawing calls that put a figure in a cell's output.
FIGURE_CALL = re.compile(r"\bplt\.(subplots|figure|imshow|plot|matshow|show)\(")
# Chapters that explain rather than compute: no figure required.
NO_FIGURE_REQUIRED = {"book/intro", "book/instructors", "book/references"}
# Cell outputs say what the chapter computed, not what the build machine is: an
# expected error shows its last line or so, not a traceback; no path of the build
# machine (a traceback's file names, a repr of a path); no tqdm rate (its speed).
MAX_TRACEBACK_LINES = 5
BUILD_MACHINE_PATH = re.compile(r"(?<![\w.-])(/work/|/tmp/|/root\b|/home/[\w.-]+|/Users/[\w.-]+)"
                                r"|\bsite-packages\b")
TQDM_RATE = re.compile(r"[\d?]\s?(it/s|s/it)\b")
# Signs have one colour convention across the book: red positive, blue negative,
# matplotlib's "RdBu_r". Any other diverging map would say it another way.
SIGN_COLOUR_MAP = "RdBu_r"
DIVERGING_COLOUR_MAPS = {name + reverse for name in (
    "PiYG", "PRGn", "BrBG", "PuOr", "RdGy", "RdBu", "RdYlBu", "RdYlGn", "Spectral",
    "coolwarm", "bwr", "seismic", "berlin", "managua", "vanimo") for reverse in ("", "_r")}
# Figure text: each drawing chapter sets the book's style (convlab.figures), and no
# cell asks for text smaller than its smallest size or changes rcParams itself.
EXPLICIT_TEXT_SIZE = re.compile(r"\b(?:fontsize|labelsize|size)\s*=\s*(\d+(?:\.\d+)?)\b")
COLOUR_MAP = re.compile(r"""\bcmap\s*=\s*["']([\w.]+)["']""")


# ---------------------------------------------------------------------------
# Checks, as functions of a page or a source text


def toc_files(toc_path=REPO / "_toc.yml"):
    """Every ``file`` of ``_toc.yml`` (root, chapters, parts, sections), in order."""
    toc = yaml.safe_load(Path(toc_path).read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in files]


def sphinx_problems(log):
    """The Sphinx warning and error lines of a build log."""
    return [m.group(0).strip() for m in SPHINX_PROBLEM.finditer(log)]


def unexpected_errors(html):
    """Error outputs of a page whose cell is not tagged ``raises-exception``.

    myst-nb renders a traceback as ``<div class="output traceback">`` and the
    error stream as ``<div class="output stderr">`` inside the cell's
    ``<div class="cell ...">``, which carries one ``tag_<tag>`` class per cell tag.
    Returns one short description per offending output.
    """
    soup = BeautifulSoup(html, "html.parser")
    problems = []
    for output in soup.select("div.output.traceback, div.output.error, div.output.stderr"):
        stderr = "stderr" in output.get("class", [])
        text = output.get_text()
        match = STDERR_PROBLEM.search(text)
        if stderr and not match:
            continue  # e.g. a progress bar
        cell = output.find_parent("div", class_="cell")
        if not stderr and cell is not None and EXPECTED_ERROR_TAG in cell.get("class", []):
            continue
        if stderr:
            line = text[match.start():].strip().splitlines()[0]
        else:
            lines = [line for line in text.strip().splitlines() if line.strip()]
            line = lines[-1] if lines else ""
        problems.append(f"{'stderr' if stderr else 'traceback'}: {line.strip()}")
    return problems


def unclean_outputs(html, machine_paths=()):
    """Cell outputs of a page that show the build machine rather than the chapter.

    Flags a traceback longer than ``MAX_TRACEBACK_LINES`` non-empty lines (an
    expected error should show its last line, e.g. ``print(f"{type(e).__name__}:
    {e}")``), a path of the build machine (``BUILD_MACHINE_PATH``, or any of
    ``machine_paths``), and a tqdm rate such as ``2215.53it/s``. Returns one
    short description per problem.
    """
    soup = BeautifulSoup(html, "html.parser")
    problems = []
    for traceback in soup.select("div.cell_output div.output.traceback"):
        lines = [line for line in traceback.get_text().splitlines() if line.strip()]
        if len(lines) > MAX_TRACEBACK_LINES:
            problems.append(f"traceback of {len(lines)} lines: {lines[-1].strip()}")
    for output in soup.select("div.cell_output"):  # every output of a cell, Markdown too
        text = output.get_text()
        lines = [line for line in text.splitlines() if line.strip()]
        paths = [m.group(0) for m in BUILD_MACHINE_PATH.finditer(text)]
        paths += [path for path in machine_paths
                  if path and re.search(rf"(?<![\w.-]){re.escape(path)}(?![\w.-])", text)]
        if paths:
            line = next(line for line in lines if any(path in line for path in paths))
            problems.append(f"path of the build machine ({paths[0]}): {line.strip()[:120]}")
        rate = TQDM_RATE.search(text)
        if rate:
            line = next(line for line in lines if rate.group(0) in line)
            problems.append(f"tqdm rate: {line.strip()[:120]}")
    return problems


def repeated_title(html):
    """The page's ``<title>`` if it names the same thing twice, else None.

    Sphinx writes ``<title>page title — book title</title>``: a page whose own
    title is the book's shows it twice in the browser tab.
    """
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text().strip() if soup.title else ""
    parts = [part.strip() for part in title.split("\u2014")]
    return title if len(parts) != len(set(parts)) else None


def output_images(html):
    """``src`` of every image in a cell's output."""
    soup = BeautifulSoup(html, "html.parser")
    return [img.get("src", "") for img in soup.select("div.cell_output img")]


HIDDEN_INPUT = {"tag_hide-input", "tag_remove-input", "tag_hide-cell", "tag_remove-cell"}


def uncaptioned_figures(html):
    """The first code line of every cell whose output image has no caption or whose code is shown.

    A figure says what it shows in a caption (``mystnb: figure: caption:`` in the cell's
    front matter), and the code that draws it is folded away (``tags: [hide-input]``).
    """
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for img in soup.select("div.cell_output img"):
        cell = img.find_parent("div", class_="cell")
        figure = img.find_parent("figure")
        captioned = figure is not None and figure.find("figcaption") is not None
        hidden = cell is not None and HIDDEN_INPUT & set(cell.get("class", []))
        if not (captioned and hidden):
            code = cell.select_one("div.cell_input") if cell is not None else None
            lines = code.get_text().strip().splitlines() if code is not None else []
            found.append((lines[0] if lines else img.get("src", "")) + ("" if captioned else " (no caption)")
                         + ("" if hidden else " (code shown)"))
    return found


def missing_image_files(html, page_path):
    """``src`` of every ``<img>`` of a page that does not resolve to a file of the build."""
    soup = BeautifulSoup(html, "html.parser")
    missing = []
    for img in soup.find_all("img"):
        src = img.get("src", "")
        if src.startswith("data:image/"):
            continue
        parts = urlsplit(src)
        if not src or parts.scheme or parts.netloc:
            missing.append(src or "<img> without src")  # remote: the book must read offline
            continue
        if not Path(os.path.normpath(Path(page_path).parent / unquote(parts.path))).is_file():
            missing.append(src)
    return missing


def figures_drawn(source):
    """Number of code cells of a MyST notebook that call a matplotlib drawing function."""
    cells = re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", source, re.MULTILINE | re.DOTALL)
    return sum(1 for cell in cells if FIGURE_CALL.search(cell))


def figure_text_problems(source, smallest):
    """What in a chapter's code cells would draw figure text below ``smallest`` points."""
    cells = "\n".join(re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", source, re.MULTILINE | re.DOTALL))
    problems = [f"text size {size}" for size in EXPLICIT_TEXT_SIZE.findall(cells) if float(size) < smallest]
    if "rcParams" in cells or "rc_context" in cells:
        problems.append("sets rcParams itself")
    if FIGURE_CALL.search(cells) and "figures.use_book_style()" not in cells:
        problems.append("draws without figures.use_book_style()")
    return problems


def other_sign_colour_maps(source):
    """Diverging colour maps named in a source text other than the book's ``RdBu_r``."""
    return sorted({name for name in COLOUR_MAP.findall(source)
                   if name in DIVERGING_COLOUR_MAPS and name != SIGN_COLOUR_MAP})


# ---------------------------------------------------------------------------
# The checks catch what they are meant to catch


def test_sphinx_problems_finds_warnings_but_not_kernel_log_lines():
    log = ("[IPKernelApp] WARNING | Kernel is running over TCP without encryption.\n"
           "/repo/book/a.md:12: WARNING: undefined label: 'nope'\n"
           "WARNING: html_static_path entry '_static' does not exist\n"
           "build succeeded.\n")
    assert sphinx_problems(log) == ["/repo/book/a.md:12: WARNING: undefined label: 'nope'",
                                    "WARNING: html_static_path entry '_static' does not exist"]
    assert sphinx_problems("build succeeded.\n[IPKernelApp] WARNING | x\n") == []


def _cell(tags, output_class, text):
    tag_classes = "".join(f" tag_{t}" for t in tags)
    return (f'<div class="cell{tag_classes} docutils container"><div class="cell_input"></div>'
            f'<div class="cell_output docutils container"><div class="{output_class}">'
            f"<pre>{text}</pre></div></div></div>")


TRACEBACK = "---------\nValueError Traceback (most recent call last)\nValueError: padding must be >= 0"


@pytest.mark.parametrize("cell, expected", [
    (_cell([], "output traceback highlight-ipythontb", TRACEBACK), 1),
    (_cell(["raises-exception"], "output traceback highlight-ipythontb", TRACEBACK), 0),
    (_cell(["hide-input"], "output traceback", TRACEBACK), 1),
    (_cell([], "output stderr", "fit_kernel: 100%|##########| 50/50 [00:00&lt;00:00]"), 0),
    (_cell([], "output stderr", "/x/y.py:3: UserWarning: careful\n  warnings.warn(...)"), 1),
    (_cell(["raises-exception"], "output stderr", "DeprecationWarning: old"), 1),
    (_cell([], "output text_plain", "ValueError is a class"), 0),
])
def test_unexpected_errors_flags_untagged_tracebacks_and_python_warnings(cell, expected):
    assert len(unexpected_errors(f"<html><body>{cell}</body></html>")) == expected


LONG_TRACEBACK = "\n".join(["-" * 20, "ValueError    Traceback (most recent call last)",
                             "Cell In[3], line 1", "----> 1 f()", "", "Cell In[2], line 2, in f()",
                             "----> 2 raise ValueError('no')", "ValueError: no"])


@pytest.mark.parametrize("cell, expected", [
    (_cell(["raises-exception"], "output traceback", LONG_TRACEBACK), ["traceback of 7 lines"]),
    (_cell(["raises-exception"], "output traceback", "ValueError  Traceback\nValueError: no"), []),
    (_cell([], "output stream", "ValueError: padding must be >= 0"), []),
    (_cell([], "output stream", "File /work/main/convlab/padding.py:35, in pad2d"), ["path"]),
    (_cell([], "output traceback", "File ~/.venv/lib/python3.11/site-packages/torch/_tensor.py:1"),
     ["path"]),
    (_cell([], "output text_plain", "PosixPath('/tmp/pytest-1/book')"), ["path"]),
    (_cell([], "output text_plain", "PosixPath('/root/convlab')"), ["path"]),
    (_cell([], "output text_plain", "/ratio 3, sqrt/rootish, a/work/b"), []),
    (_cell([], "output stderr", "fit_kernel: 100%|##| 50/50 [00:00&lt;00:00, 2215.53it/s, loss=3e-05]"),
     ["tqdm rate"]),
    (_cell([], "output stderr", "fit_kernel:   0%|  | 0/50 [00:00&lt;?, ?it/s]"), ["tqdm rate"]),
    (_cell([], "output stderr", "fit_kernel: 100%|##| 50/50 [loss=3e-05]"), []),
])
def test_unclean_outputs_flags_long_tracebacks_machine_paths_and_tqdm_rates(cell, expected):
    problems = unclean_outputs(f"<html><body>{cell}</body></html>")
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected):
        assert problem.startswith(start), problems


def test_unclean_outputs_checks_outputs_only_and_the_given_paths():
    prose = "<p>Built in /work/book at 2215.53it/s</p>"
    assert unclean_outputs(f"<html><body>{prose}</body></html>") == []
    cell = _cell([], "output stream", "/srv/ci/checkout/book/a.md")
    assert unclean_outputs(cell) == []
    assert unclean_outputs(cell, machine_paths=["/srv/ci/checkout"]) == [
        "path of the build machine (/srv/ci/checkout): /srv/ci/checkout/book/a.md"]
    assert unclean_outputs(cell, machine_paths=["/srv/ci/check", "/srv/ci/checkout/book/a"]) == []


def test_repeated_title_finds_a_page_named_like_its_book():
    assert repeated_title("<title>ConvLab &#8212; ConvLab</title>") == "ConvLab \u2014 ConvLab"
    assert repeated_title("<title>Introduction &#8212; ConvLab</title>") is None
    assert repeated_title("<p>no title</p>") is None


def test_missing_image_files_resolves_src_against_the_page(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(b"png")
    page = tmp_path / "book" / "page.html"
    html = ('<div class="cell_output"><img src="../_images/a.png"/></div>'
            '<img src="../_images/gone.png"/><img src="https://example.org/x.png"/>'
            '<img src="data:image/png;base64,AAAA"/>')
    assert missing_image_files(html, page) == ["../_images/gone.png", "https://example.org/x.png"]
    assert output_images(html) == ["../_images/a.png"]


def test_figures_drawn_counts_drawing_cells_only():
    source = ("# T\n```{code-cell} ipython3\nimport matplotlib.pyplot as plt\n```\n"
              "```{code-cell} ipython3\nfig, ax = plt.subplots()\nax.plot([1, 2])\nplt.show()\n```\n"
              "```python\nplt.plot([1])\n```\n"          # not executed: not a figure
              "```{code-cell} ipython3\nplt.imshow(A)\n```\n")
    assert figures_drawn(source) == 2


def _figure_cell(tags, caption):
    tag_classes = "".join(f" tag_{t}" for t in tags)
    image = '<img src="../_images/a.png">'
    output = (f'<figure class="align-default"><div class="cell_output">{image}</div>'
              f"<figcaption><p>{caption}</p></figcaption></figure>" if caption
              else f'<div class="cell_output docutils container">{image}</div>')
    return (f'<div class="cell{tag_classes} docutils container"><div class="cell_input">'
            f"<pre>fig, ax = plt.subplots()\nax.plot(x)</pre></div>{output}</div>")


@pytest.mark.parametrize("cell, expected", [
    (_figure_cell(["hide-input"], "Fig. 1 The loss, epoch by epoch."), []),
    (_figure_cell(["remove-input"], "Fig. 1 The loss."), []),
    (_figure_cell([], "Fig. 1 The loss."), ["fig, ax = plt.subplots() (code shown)"]),
    (_figure_cell(["hide-input"], None), ["fig, ax = plt.subplots() (no caption)"]),
    (_figure_cell([], None), ["fig, ax = plt.subplots() (no caption) (code shown)"]),
])
def test_uncaptioned_figures_wants_a_caption_and_the_code_folded(cell, expected):
    assert uncaptioned_figures(f"<html><body>{cell}</body></html>") == expected


def test_other_sign_colour_maps_names_diverging_maps_but_RdBu_r():
    source = ('ax.imshow(A, cmap="RdBu_r")\nshow(ax, B, cmap="gray")\n'
              "ax.imshow(C, cmap='RdBu')\nplt.imshow(D, cmap = 'coolwarm')\nax.imshow(E, cmap=\"viridis\")\n")
    assert other_sign_colour_maps(source) == ["RdBu", "coolwarm"]
    assert other_sign_colour_maps('ax.imshow(A, cmap="RdBu_r", vmin=-1, vmax=1)') == []


def test_signs_have_one_colour_convention_across_the_book():
    sources = [REPO / f"{chapter}.md" for chapter in toc_files()] + sorted((REPO / "convlab").rglob("*.py"))
    found = {str(path.relative_to(REPO)): other_sign_colour_maps(path.read_text(encoding="utf-8"))
             for path in sources}
    found = {path: names for path, names in found.items() if names}
    assert not found, f"diverging colour maps other than {SIGN_COLOUR_MAP} (red positive): {found}"


@pytest.mark.parametrize("code, expected", [
    ("figures.use_book_style()\nplt.plot([1])\nax.set_title('t', fontsize=14)", []),
    ("figures.use_book_style()\nax.text(0, 0, 'a', fontsize=9)", ["text size 9"]),
    ("figures.use_book_style()\nax.tick_params(labelsize=8)", ["text size 8"]),
    ("plt.rcParams.update({'font.size': 6})\nfigures.use_book_style()", ["sets rcParams itself"]),
    ("fig, ax = plt.subplots()", ["draws without figures.use_book_style()"]),
    ("x = torch.zeros(3)", []),
])
def test_figure_text_problems_finds_small_text_and_a_missing_style(code, expected):
    source = f"# T\n```{{code-cell}} ipython3\n{code}\n```\n```python\nax.text(0, 0, 'a', fontsize=5)\n```\n"
    assert figure_text_problems(source, smallest=11) == expected


def test_figures_use_the_book_style_and_no_smaller_text():
    from convlab.figures import SMALLEST_TEXT
    found = {chapter: figure_text_problems((REPO / f"{chapter}.md").read_text(encoding="utf-8"),
                                           SMALLEST_TEXT)
             for chapter in toc_files()}
    found = {chapter: problems for chapter, problems in found.items() if problems}
    assert not found, f"figure text below {SMALLEST_TEXT} pt, or the book's style not used: {found}"


def test_toc_files_lists_root_chapters_and_sections(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nchapters:\n- file: book/a\n"
                   "  sections:\n  - file: book/b.md\n- file: book/c\n")
    assert toc_files(toc) == ["book/intro", "book/a", "book/b", "book/c"]


# ---------------------------------------------------------------------------
# The built book


def found_on_pages(chapter_pages, check):
    """{chapter: what check(html) found} for the built pages on which it found something."""
    found = {chapter: check(page.read_text(encoding="utf-8"))
             for chapter, page in chapter_pages.items() if page.is_file()}
    return {chapter: items for chapter, items in found.items() if items}


@pytest.fixture(scope="module")
def chapter_pages(built_book):
    """``{chapter: path of its HTML page}`` for every file of ``_toc.yml``."""
    return {chapter: built_book.html / f"{chapter}.html" for chapter in toc_files()}


@pytest.mark.book
def test_book_builds_without_warnings(built_book):
    problems = sphinx_problems(built_book.log)
    assert built_book.returncode == 0 and not problems, (
        f"jupyter-book build exited with {built_book.returncode} and reported "
        f"{len(problems)} problem(s):\n" + "\n".join(problems) + f"\n--- end of log ---\n{built_book.log[-3000:]}")


@pytest.mark.book
def test_every_chapter_has_a_page(chapter_pages):
    missing = [chapter for chapter, page in chapter_pages.items() if not page.is_file()]
    assert not missing, f"chapters of _toc.yml without an HTML page: {missing}"


@pytest.mark.book
def test_no_page_shows_an_unexpected_error(chapter_pages):
    problems = found_on_pages(chapter_pages, unexpected_errors)
    assert not problems, ("error output in cells not tagged raises-exception, or a Python "
                          f"warning on stderr (chapter: [kind: line]): {problems}")


@pytest.mark.book
def test_no_output_shows_a_long_traceback_a_build_path_or_a_tqdm_rate(chapter_pages):
    machine_paths = [str(REPO), sys.prefix, str(Path.home())]
    problems = found_on_pages(chapter_pages, lambda html: unclean_outputs(html, machine_paths))
    assert not problems, f"cell outputs that show the build machine (chapter: [problem]): {problems}"


@pytest.mark.book
def test_no_page_title_repeats_the_book_title(chapter_pages):
    repeated = found_on_pages(chapter_pages, repeated_title)
    assert not repeated, f"pages whose browser-tab title says the same thing twice: {repeated}"


@pytest.mark.book
def test_every_image_of_every_page_is_in_the_build(chapter_pages):
    missing = {chapter: found for chapter, page in chapter_pages.items() if page.is_file()
               if (found := missing_image_files(page.read_text(encoding="utf-8"), page))}
    assert not missing, f"<img> whose file is not in the build: {missing}"


@pytest.mark.book
@pytest.mark.parametrize("chapter", toc_files())
def test_chapter_shows_the_figures_its_source_draws(chapter, chapter_pages):
    source = (REPO / f"{chapter}.md").read_text(encoding="utf-8")
    drawn = figures_drawn(source)
    if chapter not in NO_FIGURE_REQUIRED:
        assert drawn >= 1, f"{chapter}.md draws no matplotlib figure; every content chapter should"
    page = chapter_pages[chapter]
    assert page.is_file(), f"no HTML page for {chapter}"
    images = output_images(page.read_text(encoding="utf-8"))
    assert len(images) >= drawn, (
        f"{chapter}.md has {drawn} code cell(s) that draw with matplotlib but its page "
        f"shows {len(images)} image(s) in cell outputs: {images}")


@pytest.mark.book
def test_every_figure_has_a_caption_and_its_code_folded(chapter_pages):
    found = found_on_pages(chapter_pages, uncaptioned_figures)
    assert not found, f"figures without a caption or with their drawing code shown: {found}"


# ---------------------------------------------------------------------------
# What a review of every page found (issue #25), each checked so that it cannot come back

# Colour maps whose colour carries a value (not a category, a shading, or a grey image):
# a figure that uses one shows its scale.
VALUE_COLOUR_MAPS = {"RdBu_r", "viridis", "magma", "inferno", "plasma", "cividis"}
MATH_BLOCK = re.compile(r"^```\{math\}\n:label: ([\w-]+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_cells(source):
    """The code cells of a MyST notebook, each as its text (front matter included)."""
    return re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", source, re.MULTILINE | re.DOTALL)


def figure_caption(source, name):
    """The caption of the figure ``name`` (``mystnb: figure: name:``), or None."""
    for cell in code_cells(source):
        if re.search(rf"^\s+name: {re.escape(name)}$", cell, re.MULTILINE):
            match = re.search(r"caption: \|\n(.*?)\n\s+name:", cell, re.DOTALL)
            return " ".join(match.group(1).split()) if match else None
    return None


def leaked_labels(source):
    """Equation labels of a chapter that its code cells spell out as text, e.g. "(shapes-output-size)".

    A code cell's docstring or comment cannot render ``{eq}`label```: the reader would see
    the raw label instead of an equation number.
    """
    labels = set(re.findall(r"^:label: ([\w-]+)$", source, re.MULTILINE))
    labels |= set(re.findall(r"^:label: ([\w-]+)$", "\n".join(
        (REPO / f"{chapter}.md").read_text(encoding="utf-8") for chapter in toc_files()
        if (REPO / f"{chapter}.md").is_file()), re.MULTILINE))
    return sorted({label for cell in code_cells(source) for label in labels
                   if re.search(rf"\(\s*{re.escape(label)}\s*\)|[Ee]quation {re.escape(label)}\b", cell)})


def figures_without_colour_bar(source):
    """The first line of each code cell that draws with a value colour map but shows no colour bar."""
    found = []
    for cell in code_cells(source):
        maps = set(COLOUR_MAP.findall(cell)) & VALUE_COLOUR_MAPS
        if maps and FIGURE_CALL.search(cell) is None and "imshow" not in cell and "show(" not in cell:
            continue
        if maps and "colorbar" not in cell:
            found.append(next(line for line in cell.splitlines() if "imshow" in line or "cmap" in line).strip())
    return found


def test_figures_without_colour_bar_wants_a_scale_for_value_maps():
    source = ('```{code-cell} ipython3\nax.imshow(A, cmap="RdBu_r")\n```\n'
              '```{code-cell} ipython3\nshown = ax.imshow(A, cmap="viridis")\nfig.colorbar(shown)\n```\n'
              '```{code-cell} ipython3\nax.imshow(P, cmap="gray")\n```\n')
    assert figures_without_colour_bar(source) == ['ax.imshow(A, cmap="RdBu_r")']


def test_leaked_labels_finds_a_label_spelled_out_in_code():
    source = ("```{math}\n:label: toy-eq\no = i\n```\n"
              '```{code-cell} ipython3\ndef f(i):\n    """Equation (toy-eq)."""\n```\n'
              '```{code-cell} ipython3\ndef g(i):\n    """The output size o = i."""\n```\n')
    assert leaked_labels(source) == ["toy-eq"]


@pytest.mark.parametrize("chapter", toc_files())
def test_no_code_cell_spells_out_an_equation_label(chapter):
    source = (REPO / f"{chapter}.md").read_text(encoding="utf-8")
    assert leaked_labels(source) == [], f"{chapter}: equation labels written out in code cells"


@pytest.mark.parametrize("chapter", toc_files())
def test_figures_whose_colour_is_a_value_show_a_colour_bar(chapter):
    source = (REPO / f"{chapter}.md").read_text(encoding="utf-8")
    assert figures_without_colour_bar(source) == [], f"{chapter}: figures without a colour bar"


def _footprint(layers, size=40):
    """Gradient of the centre output pixel of a stack of convolutions with kernels of ones, cropped."""
    import torch
    import torch.nn.functional as F
    X = torch.zeros(1, 1, size, size, requires_grad=True)
    Y = X
    for k, s, d in layers:
        Y = F.conv2d(Y, torch.ones(1, 1, k, k), stride=s, dilation=d)
    Y[0, 0, Y.shape[2] // 2, Y.shape[3] // 2].backward()
    G = X.grad[0, 0]
    rows, cols = torch.nonzero(G, as_tuple=True)
    return G[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def test_receptive_field_caption_says_where_the_gradient_is_largest():
    """Fig. 'shapes-footprints': only three 3x3 layers give the centre the largest gradient."""
    facts = {}
    for name, layers in {"three": [(3, 1, 1)] * 3, "stride": [(3, 2, 1), (3, 1, 1)],
                         "dilations": [(3, 1, 1), (3, 1, 2), (3, 1, 4)]}.items():
        G = _footprint(layers)
        centre = float(G[G.shape[0] // 2, G.shape[1] // 2])
        facts[name] = (centre, float(G[0, 0]), float(G.max()))
    assert facts == {"three": (49.0, 1.0, 49.0), "stride": (1.0, 1.0, 4.0), "dilations": (1.0, 1.0, 9.0)}
    caption = figure_caption((REPO / "book/shapes.md").read_text(encoding="utf-8"), "shapes-footprints")
    assert caption is not None
    assert "deeper stacks" not in caption
    assert "centre gets 1, as the corners do" in caption and "(49, against 1 at the corners)" in caption
    assert "(4 and 9) are off the centre" in caption


def test_shapes_exercise_on_equal_output_sizes_says_every_input_pixel_is_read():
    """k = 3, p = 1, s = 2: inputs 5 and 6 both give 3 outputs; the larger still reads every pixel."""
    k, p, s = 3, 1, 2
    for i in (5, 6):
        o = (i + 2 * p - k) // s + 1
        read = {start + tap for start in range(0, o * s, s) for tap in range(k)}
        assert o == 3 and set(range(p, p + i)) <= read
    source = (REPO / "book/shapes.md").read_text(encoding="utf-8")
    exercises = source[source.index("## Exercises"):]
    assert "does not use" not in exercises
    assert "still reads every input pixel" in exercises and "padded input no window reads" in exercises


def test_transposed_chapter_says_padded_rows_and_credits_the_guide_without_dilation():
    source = " ".join((REPO / "book/transposed.md").read_text(encoding="utf-8").split())
    assert "input rows that the correlation's last window leaves out" not in source
    assert "rows of the *padded* input that the correlation's last window leaves out" in source
    assert "Dumoulin and Visin's guide gives it without dilation, $a = (i + 2p - k) \\bmod s$" in source


def test_the_pooling_equation_names_its_window_k_not_p():
    """p is the padding throughout the book; the pooling window is k_h x k_w."""
    blocks = dict(MATH_BLOCK.findall((REPO / "book/channels_pooling.md").read_text(encoding="utf-8")))
    assert "k_h" in blocks["channels-pool"] and "p_h" not in blocks["channels-pool"]


def test_a_chapter_with_a_graded_notebook_does_not_say_it_has_none():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    mapped = config["sphinx"]["config"]["exercise_notebooks"]
    said = {chapter: assignment for chapter, assignment in mapped.items()
            if re.search(r"No graded notebook", (REPO / f"{chapter}.md").read_text(encoding="utf-8"))}
    assert not said, f"chapters whose box links a graded notebook but whose text says there is none: {said}"


def test_the_references_link_the_sources_the_book_checks_against():
    source = (REPO / "book/references.md").read_text(encoding="utf-8")
    for link in ("https://d2l.ai/", "https://arxiv.org/abs/1603.07285", "https://doi.org/10.23915/distill.00003",
                 "https://cs231n.github.io/"):
        assert link in source, link
    assert "book/references" in toc_files()


@pytest.mark.book
def test_the_cnn_trains_at_build_time_and_says_how_long_in_the_log_only(built_book, chapter_pages):
    """The CNN chapter's accuracy, confusion matrix, filters and arithmetic table are on its page;
    its training time is in the build log (the kernel's own stderr), not on the page."""
    times = re.findall(r"\[book/cnn\] trained 6 networks in ([\d.]+) s", built_book.log)
    assert len(times) == 1, "the CNN chapter's training time is not in the build log"
    soup = BeautifulSoup(chapter_pages["book/cnn"].read_text(encoding="utf-8"), "html.parser")
    assert re.search(r"trained 6 networks in [\d.]+ s", soup.get_text()) is None
    tables = [" ".join(table.get_text(" ").split()) for table in soup.select("div.cell_output table")]
    assert any("multiply-adds" in t and "1,898" in t and "23,680" in t for t in tables), tables
    assert any("test accuracy" in t and "CNN" in t and "dense" in t for t in tables), tables
    captions = [" ".join(c.get_text(" ").split()) for c in soup.select("figcaption")]
    assert any("confusion matrix" in c for c in captions) and any("learned" in c for c in captions)
