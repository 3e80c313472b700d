"""The Chinese edition (issue 27): catalogs that are complete and current, the glossary's
terms, Chinese student notebooks that are generated (never edited) and keep every graded
cell, and two built editions that differ in their prose only.

Drift: when an English sentence of a chapter or a notebook changes, a test here fails and
names the catalog and the message to translate again (``make catalogs`` brings the catalogs
up to date and lists them). The grading of the Chinese notebooks (same scores as the English
ones, by ``nbgrader autograde`` and by ``python -m classgrade grade``) is in
``tests/test_nbgrader.py``, with the rest of the round trip.
"""

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import polib
import pytest
import yaml
from bs4 import BeautifulSoup
from figure_prose import figure_prose
from test_book import toc_files

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
import editions  # noqa: E402

LANGUAGE = "zh_CN"
CHAPTERS = toc_files()
ASSIGNMENTS = editions.assignments()
GLOSSARY = yaml.safe_load((REPO / "book" / "locales" / "glossary.yml").read_text(encoding="utf-8"))["terms"]


def chapter_catalog(chapter):
    return editions.catalog_dir(LANGUAGE) / f"{chapter}.po"


def all_catalogs():
    return ([chapter_catalog(c) for c in CHAPTERS]
            + [editions.exercise_catalog(a, LANGUAGE) for a in ASSIGNMENTS])


def catalog_id(path):
    return str(path.relative_to(editions.catalog_dir(LANGUAGE)).with_suffix(""))


# ---------------------------------------------------------------------------
# Checks, as functions (each tested below on a small example)


def untranslated(po):
    """The msgids of a catalog with no translation, or a fuzzy one."""
    return [e.msgid for e in po if not e.obsolete and (not e.msgstr or "fuzzy" in e.flags)]


def stale_messages(current, po):
    """``(to translate, left over)``: the messages of the current source that the catalog
    lacks, and the catalog's messages that the source no longer has."""
    held = {e.msgid for e in po if not e.obsolete}
    return [m for m in current if m not in held], sorted(held - set(current))


# Text a glossary term inside it does not count in: inline code, math, link targets,
# the targets of roles ({ref}`...`), URLs, and words in double quotes (the titles of cited
# works, which keep their language, and words quoted as words).
NOT_PROSE = re.compile(r'``.*?``|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\]\([^)]*\)|https?://\S+|"[^"\n]*"', re.DOTALL)


def exempt_terms(comment):
    """Terms a translator's comment says the message uses in another sense, one per line:
    ``# glossary: not kernel (the Jupyter kernel)``.

    >>> exempt_terms("glossary: not kernel (the Jupyter kernel)\\nglossary: not layer")
    ['kernel', 'layer']
    """
    return re.findall(r"^glossary: not ([^(\n]+?)\s*(?:\(.*)?$", comment or "", re.MULTILINE)


def glossary_problems(msgid, msgstr, terms=GLOSSARY):
    """How a translation breaks the glossary: for each term whose English form is in the
    message's prose (case-insensitive, plural too; not in its ``ignore`` phrases), its Chinese
    term is missing from the translation, or an ``avoid`` form is there (outside ``allow``).

    >>> terms = [{"en": "stride", "zh": "步幅", "avoid": ["步长"]},
    ...          {"en": "kernel", "zh": "卷积核", "avoid": ["内核"], "ignore": ["Jupyter kernel"],
    ...           "allow": ["Jupyter 内核"]}]
    >>> glossary_problems("The stride is 2.", "步幅为 2。", terms)
    []
    >>> glossary_problems("Two strides.", "两个步长。", terms)
    ["'stride': 步幅 missing", "'stride': 步长 used"]
    >>> glossary_problems("Set `stride=2`; restart the Jupyter kernel.", "设置 `stride=2`。", terms)
    []
    >>> glossary_problems("A kernel; the Jupyter kernel.", "卷积核；Jupyter 内核。", terms)
    []
    >>> glossary_problems("A kernel.", "内核。", terms)
    ["'kernel': 卷积核 missing", "'kernel': 内核 used"]
    >>> glossary_problems("A grouped convolution.", "分组卷积。", [{"en": "grouped convolution",
    ...                   "zh": "分组卷积", "avoid": ["组卷积"]}])
    []
    """
    prose = NOT_PROSE.sub(" ", msgid)
    problems = []
    for term in terms:
        text = prose
        for phrase in term.get("ignore", []):
            text = re.sub(re.escape(phrase), " ", text, flags=re.IGNORECASE)
        if not re.search(rf"\b{re.escape(term['en'])}(s|es)?\b", text, re.IGNORECASE):
            continue
        if term["zh"] not in msgstr:
            problems.append(f"{term['en']!r}: {term['zh']} missing")
        translation = msgstr.replace(term["zh"], " ")  # 分组卷积 holds the avoided 组卷积
        for phrase in term.get("allow", []):
            translation = translation.replace(phrase, " ")
        problems += [f"{term['en']!r}: {avoid} used" for avoid in term.get("avoid", []) if avoid in translation]
    return problems


def page_facts(html):
    """What must be the same on a page in every edition: the code of each cell, what each
    cell output shows as text, the images (by file name), and the equations (their TeX,
    display ones in order, inline ones as a multiset since a translation may reorder them)."""
    soup = BeautifulSoup(html, "html.parser")
    for caption in soup.select("div.cell_output figcaption"):  # a figure's caption is prose
        caption.decompose()
    return {
        "code": [" ".join(c.get_text().split()) for c in soup.select("div.cell_input")],
        "outputs": [" ".join(o.get_text().split()) for o in soup.select("div.cell_output")],
        "images": [img.get("src", "").rsplit("/", 1)[-1] for img in soup.select("div.cell_output img")],
        "display math": [" ".join(m.get_text().split()) for m in soup.select("div.math")],
        "inline math": sorted(" ".join(m.get_text().split()) for m in soup.select("span.math")),
    }


def differences(english, chinese):
    """The kinds of facts (see ``page_facts``) in which two pages differ, with the first difference."""
    found = {}
    for kind in english:
        if english[kind] != chinese[kind]:
            pairs = [(a, b) for a, b in zip(english[kind], chinese[kind]) if a != b]
            found[kind] = (f"{len(english[kind])} against {len(chinese[kind])}" if not pairs
                           else f"{pairs[0][0][:80]!r} against {pairs[0][1][:80]!r}")
    return found


# --- the checks catch what they are meant to ---------------------------------------------


def _po(*entries):
    po = polib.POFile()
    for msgid, msgstr, *flags in entries:
        po.append(polib.POEntry(msgid=msgid, msgstr=msgstr, flags=list(flags)))
    return po


def test_untranslated_finds_empty_and_fuzzy_messages():
    po = _po(("A", "甲"), ("B", ""), ("C", "丙", "fuzzy"))
    assert untranslated(po) == ["B", "C"]


def test_stale_messages_names_a_changed_sentence():
    po = _po(("The kernel slides.", "卷积核滑动。"), ("Gone.", "没了。"))
    assert stale_messages(["The kernel slides over X.", "Gone."], po) == (["The kernel slides over X."],
                                                                         ["The kernel slides."])
    assert stale_messages(["The kernel slides."], po) == ([], ["Gone."])


def test_page_facts_ignore_prose_and_catch_a_changed_number_or_figure():
    page = ('<p>{}</p><div class="cell"><div class="cell_input"><pre>x = 1</pre></div>'
            '<div class="cell_output"><pre>{}</pre><figure><img src="../_images/{}"/>'
            '<figcaption>{}</figcaption></figure></div></div>'
            '<div class="math">\\[o = i\\]</div><p><span class="math">\\(K\\)</span></p>')
    english = page_facts(page.format("The kernel.", "2", "a.png", "Fig. 1 The loss."))
    assert differences(english, page_facts(page.format("卷积核。", "2", "a.png", "图 1 损失。"))) == {}
    assert set(differences(english, page_facts(page.format("卷积核。", "3", "a.png", "图 1 损失。")))) == {"outputs"}
    assert set(differences(english, page_facts(page.format("卷积核。", "2", "b.png", "图 1 损失。")))) == {"images"}


FIGURE_CELLS = """
```{code-cell} ipython3
def show(ax, A, title):
    ax.imshow(A)
    ax.set_title(title)
```

```{code-cell} ipython3
---
tags: [hide-input]
---
fig, axes = plt.subplots(1, 3)
for ax, image, title in zip(axes, [X, Y, Z], ["$X$", "input", f"Y[{0}]"]):
    ax.imshow(image)
    ax.set_title(title)
show(axes[0], X, "response")
show(axes[1], X, f"$K_{1}$")
ax.plot([1, 2], label="trained by fit_kernel")
ax.set_xlabel(f"{n:g} pixels")
ax.text(0, 0, f"{v:g}", ha="center")
figures.grid(ax, K, title="K.flip(0, 1)", color="tab:orange")
```
"""


def test_figure_prose_finds_the_words_that_reach_a_figure():
    """Through a loop over zip, a helper's parameter, a label=, a format; not code names,
    math, a format's spec or the other arguments of a call."""
    assert figure_prose(FIGURE_CELLS) == {"input": ["input"], "response": ["response"],
                                          "trained by fit_kernel": ["trained", "by"], " pixels": ["pixels"]}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_figures_carry_no_prose(chapter):
    """A figure is one image in both editions: its words belong in its caption (translated)."""
    found = figure_prose((REPO / f"{chapter}.md").read_text(encoding="utf-8"))
    assert not found, (f"{chapter}: figure texts with English words (use symbols, math or code names, "
                       f"and say the rest in the caption): {found}")


# ---------------------------------------------------------------------------
# The catalogs


@pytest.mark.parametrize("path", all_catalogs(), ids=catalog_id)
def test_every_message_is_translated(path):
    assert path.is_file(), f"{path.relative_to(REPO)} is missing: run make catalogs and translate it"
    missing = untranslated(polib.pofile(str(path)))
    assert not missing, (f"{path.relative_to(REPO)}: {len(missing)} message(s) untranslated or fuzzy "
                         f"(translate them, then delete the fuzzy flag):\n" + "\n".join(m[:120] for m in missing))


@pytest.mark.parametrize("path", all_catalogs(), ids=catalog_id)
def test_the_glossary_terms_are_used(path):
    if not path.is_file():
        pytest.fail(f"{path.relative_to(REPO)} is missing")
    problems = {}
    for e in polib.pofile(str(path)):
        terms = [t for t in GLOSSARY if t["en"] not in exempt_terms(e.tcomment)]
        if e.msgstr and not e.obsolete and (found := glossary_problems(e.msgid, e.msgstr, terms)):
            problems[e.msgid[:80]] = found
    assert not problems, f"{path.relative_to(REPO)}: translations that break book/locales/glossary.yml: {problems}"


@pytest.fixture(scope="session")
def extracted(built_book, tmp_path_factory):
    """The chapters' messages, extracted from the current sources (Sphinx's gettext builder),
    the captions of their figures included: the chapters' outputs come from the jupyter-cache
    of the session's build, so nothing runs again."""
    potdir = tmp_path_factory.mktemp("gettext")
    assert editions.extract_chapter_messages(potdir, cache=cache_of(built_book)) == 0, "gettext builder failed"
    return editions.chapter_messages(potdir)


def cache_of(built_book):
    return built_book.html.parent / ".jupyter_cache"


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_catalog_is_current(extracted, chapter):
    current = extracted.get(f"{chapter}.po")
    assert current is not None, f"no messages extracted for {chapter}"
    path = chapter_catalog(chapter)
    assert path.is_file(), f"{path.relative_to(REPO)} is missing: run make catalogs"
    new, old = stale_messages(current, polib.pofile(str(path)))
    assert not new and not old, (
        f"{chapter}: its catalog is out of date: run make catalogs, then translate these messages "
        f"again:\n" + "\n".join(m[:160] for m in new) + (f"\n(left over: {len(old)})" if old else ""))


@pytest.mark.book
def test_a_changed_sentence_is_named_for_translation(built_book, extracted, tmp_path):
    """Change one sentence of a chapter in a copy of the book: its extracted messages no longer
    match the catalog, and the check names that chapter's changed message."""
    copy = tmp_path / "copy"
    for name in ("_config.yml", "_toc.yml", "pyproject.toml"):
        shutil.copy(REPO / name, copy / name if copy.exists() else (copy.mkdir() or copy / name))
    for folder in ("book", "exercises"):
        shutil.copytree(REPO / folder, copy / folder, ignore=shutil.ignore_patterns("locales"))
    source = (copy / "book" / "intro.md").read_text(encoding="utf-8")
    po = polib.pofile(str(chapter_catalog("book/intro")))
    sentence = next(e.msgid for e in po if len(e.msgid) > 40 and e.msgid in source and "\n" not in e.msgid)
    (copy / "book" / "intro.md").write_text(source.replace(sentence, sentence + " Changed."), encoding="utf-8")
    potdir = tmp_path / "gettext"
    assert editions.extract_chapter_messages(potdir, root=copy, cache=cache_of(built_book)) == 0
    messages = editions.chapter_messages(potdir)
    new, old = stale_messages(messages["book/intro.po"], po)
    assert new == [sentence + " Changed."] and old == [sentence]
    assert {c: m for c, m in messages.items() if c != "book/intro.po"} == {
        c: m for c, m in extracted.items() if c != "book/intro.po"}, "other chapters' messages changed too"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_catalog_is_current(assignment):
    notebook = json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    path = editions.exercise_catalog(assignment, LANGUAGE)
    assert path.is_file(), f"{path.relative_to(REPO)} is missing: run make catalogs"
    new, old = stale_messages(editions.notebook_messages(notebook), polib.pofile(str(path)))
    assert not new and not old, (
        f"exercises/{assignment}: its catalog is out of date: run make catalogs, then translate these "
        f"messages again:\n" + "\n".join(m[:160] for m in new))


# ---------------------------------------------------------------------------
# The Chinese student notebooks


def test_the_chinese_notebooks_are_generated_not_edited():
    problems = editions.make_notebooks(check=True)
    assert not problems, "\n".join(problems)
    made = sorted(p.relative_to(REPO / "exercises" / LANGUAGE).as_posix()
                  for p in (REPO / "exercises" / LANGUAGE).rglob("*") if p.is_file())
    assert made == [f"{a}/{a}.ipynb" for a in ASSIGNMENTS], "exercises/zh_CN/ holds other files"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_chinese_notebook_differs_from_the_english_one_in_its_prose_only(assignment):
    english = json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    chinese = json.loads(editions.translated_notebook_path(assignment, LANGUAGE).read_text(encoding="utf-8"))
    assert len(chinese["cells"]) == len(english["cells"])
    translated = 0
    for number, (en, zh) in enumerate(zip(english["cells"], chinese["cells"]), start=1):
        if en["cell_type"] == "markdown" and not editions.is_answer(en) and editions.source_text(en).strip():
            assert {k: v for k, v in zh.items() if k != "source"} == {k: v for k, v in en.items() if k != "source"}
            assert re.search(r"[\u4e00-\u9fff]", editions.source_text(zh)), f"cell {number} is not in Chinese"
            code = lambda text: set(re.findall(r"`[^`]*`", text))  # noqa: E731
            assert code(editions.source_text(zh)) == code(editions.source_text(en)), (
                f"cell {number}: inline code changed by the translation")
            translated += 1
        else:
            assert zh == en, f"cell {number} ({en['cell_type']}) differs from the English notebook"
    assert translated == len(editions.notebook_messages(english))
    assert {k: v for k, v in chinese["metadata"].items() if k != "convlab"} == english["metadata"]
    assert chinese["metadata"]["convlab"] == {"language": LANGUAGE}


# ---------------------------------------------------------------------------
# The two built editions


@pytest.mark.book
def test_the_chapters_execute_once_per_build(built_book):
    """The English build executes each chapter into the jupyter-cache; the Chinese one reads it."""
    executed = re.findall(r"Executed notebook in", built_book.log)
    cached = re.findall(r"Using cached notebook", built_book.log)
    # myst-nb runs every chapter that is a notebook (a kernelspec in its front matter), code or not
    notebooks = [c for c in CHAPTERS if "kernelspec:" in (REPO / f"{c}.md").read_text(encoding="utf-8")[:1000]]
    assert len(executed) == len(notebooks), f"{len(executed)} executions for {len(notebooks)} notebooks"
    assert len(cached) == len(notebooks) * len(editions.TRANSLATIONS)


@pytest.mark.book
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chinese_page_shows_what_its_english_page_shows(built_book, chapter):
    english = built_book.html / f"{chapter}.html"
    chinese = built_book.edition(LANGUAGE) / f"{chapter}.html"
    assert english.is_file() and chinese.is_file(), f"{chapter}: a page is missing"
    facts = page_facts(english.read_text(encoding="utf-8")), page_facts(chinese.read_text(encoding="utf-8"))
    assert differences(*facts) == {}, f"{chapter}: the editions differ in more than prose: {differences(*facts)}"
    # The images are the same files (the same bytes) in both builds.
    for name in facts[0]["images"]:
        en, zh = built_book.html / "_images" / name, built_book.edition(LANGUAGE) / "_images" / name
        assert hashlib.sha256(en.read_bytes()).digest() == hashlib.sha256(zh.read_bytes()).digest(), name
    soup = BeautifulSoup(chinese.read_text(encoding="utf-8"), "html.parser")
    assert soup.html.get("lang") == "zh-CN"


@pytest.mark.book
def test_the_chinese_pages_are_in_chinese(built_book):
    """Most of each Chinese page's prose is Chinese (no chapter left in English)."""
    english_only = {}
    for chapter in CHAPTERS:
        soup = BeautifulSoup((built_book.edition(LANGUAGE) / f"{chapter}.html").read_text(encoding="utf-8"),
                             "html.parser")
        article = soup.select_one("article") or soup
        for tag in article.select("pre, code, .math, div.cell_output, script, style"):
            tag.decompose()
        text = article.get_text(" ")
        chinese = len(re.findall(r"[\u4e00-\u9fff]", text))
        words = len(re.findall(r"\b[A-Za-z]{4,}\b", text))
        if chinese < 2 * words:
            english_only[chapter] = (chinese, words)
    assert not english_only, f"pages with more English words than Chinese (characters, words): {english_only}"


@pytest.mark.book
def test_the_chinese_exercise_boxes_link_the_chinese_notebooks(built_book):
    config = yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]["config"]["exercise_notebooks"]
    for chapter, assignment in config.items():
        page = built_book.edition(LANGUAGE) / f"{chapter}.html"
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        links = [a["href"] for a in soup.select(".exercise-links a.download")]
        assert len(links) == 1, f"{chapter}: {links}"
        served = (page.parent / links[0]).resolve()
        assert served.read_bytes() == editions.translated_notebook_path(assignment, LANGUAGE).read_bytes()
