"""The built book as a reader sees it: every page opened in headless Chromium.

The HTML build is served on 127.0.0.1 and the browser may reach nothing else
(a dead loopback proxy plus a route that aborts and records any other request),
so the book must read offline: MathJax, fonts and scripts come from the build.
Each page is opened once; the tests below check what was recorded. A full-page
screenshot of each page is saved to ``_build/screenshots/`` for review.

Needs Chromium (Debian's ``chromium`` package; ``.ci/run`` installs it) and the
``playwright`` Python package, which drives that browser (``playwright install``
is never needed).
"""

import contextlib
import functools
import html.parser
import json
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from test_book import toc_files

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # Anything not sent to loopback goes to a proxy that is not there.
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
]
LOOPBACK = "127.0.0.1"

pytestmark = pytest.mark.book


def _config():
    return yaml.safe_load((REPO / "_config.yml").read_text())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(built_book):
    assert built_book.returncode == 0, f"the book did not build:\n{built_book.log[-3000:]}"
    handler = functools.partial(_QuietHandler, directory=str(built_book.html))
    httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


# Run in the page once it has loaded: everything the tests look at.
COLLECT_JS = r"""
async () => {
  // Lazy images load only near the viewport: make every image load now.
  const imgs = Array.from(document.images);
  imgs.forEach(img => { img.loading = 'eager'; });
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done);
    setTimeout(done, 10000);
  })));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;

  const visible = el => el.getClientRects().length > 0
      && getComputedStyle(el).visibility !== 'hidden';
  const SKIP = 'pre, code, kbd, samp, script, style, noscript, template, textarea, '
      + 'mjx-container, .highlight';
  const prose = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent && !parent.closest(SKIP)) prose.push(node.data);
  }
  const cells = Array.from(document.querySelectorAll('div.cell')).map(cell => {
    const out = cell.querySelector(':scope > .cell_output');
    return {
      has_output: !!out && (out.textContent.trim() !== ''
          || out.querySelector('img, svg, canvas, table') !== null),
      visible: !!out && visible(out) && out.getBoundingClientRect().height > 0,
      toggled: !!cell.closest('details') || cell.classList.contains('tag_hide-output')
          || cell.classList.contains('tag_hide-cell'),
    };
  });
  const sidebar = Array.from(document.querySelectorAll('nav.bd-docs-nav a'))
      .map(a => a.href);
  const brand = document.querySelector('a.navbar-brand');
  const next = document.querySelector('a.right-next');
  const box = document.querySelector('.exercise-links');
  const inView = el => { const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= innerWidth && r.top >= 0; };
  return {
    lang: document.documentElement.lang,
    // The language switch in the page header: its links, and whether each is on screen.
    switch: Array.from(document.querySelectorAll('.convlab-language-switch a')).map(a => ({
      href: a.href, text: a.textContent.trim(), visible: visible(a) && inView(a)})),
    url: location.href,
    title: document.title,
    images: imgs.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth,
                              shown: img.getBoundingClientRect().width,
                              output: !!img.closest('.cell_output')})),
    body_font: (() => {
      const p = document.querySelector('main article p, main p');
      return p ? parseFloat(getComputedStyle(p).fontSize) : null;
    })(),
    math: document.querySelectorAll('.math').length,
    math_typeset: Array.from(document.querySelectorAll('.math'))
        .filter(el => el.querySelector('mjx-container')).length,
    math_errors: Array.from(document.querySelectorAll('mjx-merror'))
        .map(el => el.getAttribute('data-mjx-error') || el.textContent),
    mathjax_loaded: !!(window.MathJax && MathJax.startup),
    prose: prose.join(' '),
    cells: cells,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    sidebar: sidebar.concat(brand ? [brand.href] : []),
    next: next ? next.href : null,
    // Code and outputs whose text runs past the right edge of their box (cut off, or hidden
    // behind a scroll bar a reader may not see): the first line of each.
    cut_off: Array.from(document.querySelectorAll('div.cell_input pre, div.cell_output pre'))
        .filter(el => visible(el) && el.scrollWidth > el.clientWidth + 1)
        .map(el => el.textContent.trim().split('\n')[0].slice(0, 80)),
    exercise: box ? {
      downloads: Array.from(box.querySelectorAll('a.download')).map(a => a.href),
      launches: Array.from(box.querySelectorAll('.exercise-launch a')).map(a => a.href),
      wheels: Array.from(box.querySelectorAll('a.exercise-wheel')).map(a => a.href),
      visible: visible(box),
    } : null,
  };
}
"""


# The editions of the book: the English one at the root of the build, each translation in a
# folder of its own (book/_ext/editions.py builds them).
EDITIONS = list(_config()["sphinx"]["config"]["book_editions"])
TRANSLATED = [language for language in EDITIONS if language != "en"]
REDIRECTS = ["index.html"] + [f"{language}/index.html" for language in TRANSLATED]


def _pages(html_dir):
    """The pages of a build, relative to it, both editions: not the theme's template
    fragments in _static/ (nor _sources/, _downloads/)."""
    return sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(html_dir).parts))


def counterpart(rel, language):
    """The same page in the edition ``language``.

    >>> counterpart("book/shapes.html", "zh_CN"), counterpart("zh_CN/book/shapes.html", "en")
    ('zh_CN/book/shapes.html', 'book/shapes.html')
    """
    for translated in TRANSLATED:
        rel = rel.removeprefix(f"{translated}/")
    return rel if language == "en" else f"{language}/{rel}"


def edition_of(rel):
    return next((language for language in TRANSLATED if rel.startswith(f"{language}/")), "en")


@contextlib.contextmanager
def _offline_page(viewport):
    """A Chromium page of the given viewport that may reach only loopback.

    Yields ``(page, current)``; the page appends to ``current["errors"]`` (console
    errors, uncaught exceptions, failed requests) and ``current["remote"]`` (blocked
    requests to other hosts), which the caller resets before each page.
    """
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), (
        "Chromium is needed for the browser test: apt-get install chromium "
        "(.ci/run does this)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(30_000)
        current = {"errors": [], "remote": []}

        def route(route_):
            url = route_.request.url
            if urlsplit(url).hostname == LOOPBACK or url.startswith(("data:", "blob:")):
                route_.continue_()
            else:
                current["remote"].append(url)
                route_.abort("blockedbyclient")

        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda msg: msg.type == "error" and current["errors"].append(
            f"console: {msg.text} ({msg.location.get('url')})"))
        page.on("pageerror", lambda exc: current["errors"].append(f"uncaught: {exc}"))
        page.on("response", lambda r: r.status >= 400 and current["errors"].append(
            f"HTTP {r.status}: {r.url}"))
        page.on("requestfailed", lambda r: urlsplit(r.url).hostname == LOOPBACK
                and current["errors"].append(f"request failed: {r.url} {r.failure}"))
        try:
            yield page, current
        finally:
            browser.close()


@pytest.fixture(scope="module")
def visits(built_book, server):
    """Open every page of the build once; return {page path: what was seen}."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pages = _pages(built_book.html)
    shot_names = {rel: re.sub(r"[^A-Za-z0-9_.-]", "-", rel.removesuffix(".html")) + ".png"
                  for rel in pages}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in set(SCREENSHOTS.glob("*.png")) - {SCREENSHOTS / n for n in shot_names.values()}:
        stale.unlink(missing_ok=True)  # a page that no longer exists

    results = {}
    with _offline_page({"width": 1280, "height": 900}) as (page, current):
        for rel in pages:
            current.update(errors=[], remote=[])
            page.goto(server + rel, wait_until="load")
            if rel in REDIRECTS:  # a redirect to the root page
                page.wait_for_url(lambda url: not url.endswith("/index.html"))
                page.wait_for_load_state("load")
            seen = page.evaluate(COLLECT_JS)
            page.screenshot(path=str(SCREENSHOTS / shot_names[rel]), full_page=True)
            seen.update(errors=list(current["errors"]), remote=list(current["remote"]))
            results[rel] = seen

        # The search page is the one place that builds its content in the browser (both editions).
        for query in ["search.html?q=kernel"] + [f"{language}/search.html?q=卷积" for language in TRANSLATED]:
            current.update(errors=[], remote=[])
            page.goto(server + query, wait_until="load")
            try:
                page.wait_for_selector("#search-results ul.search li", timeout=20_000)
            except PlaywrightTimeout:
                pass  # no hits: test_search_works_offline says so
            # the search goes on fetching each hit's page for its summary: let it finish, or the
            # next page's navigation aborts those requests and they count against that page
            page.wait_for_load_state("networkidle")
            results[query] = {
                "hits": page.locator("#search-results ul.search li").count(),
                "errors": list(current["errors"]), "remote": list(current["remote"])}
    return results


def _ids(path):
    """All element ids (and <a name>s) in a static HTML file."""
    found = set()

    class Parser(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if attrs.get("id"):
                found.add(attrs["id"])
            if tag == "a" and attrs.get("name"):
                found.add(attrs["name"])

    Parser().feed(path.read_text(encoding="utf-8", errors="replace"))
    return found


def _local_path(html_dir, server, url):
    """The file in the build that a loopback URL names (None for other sites)."""
    if not url.startswith(server):
        return None
    path = unquote(urlsplit(url).path).lstrip("/")
    target = html_dir / path
    return target / "index.html" if target.is_dir() or path == "" else target


def _page_ids(visits):
    return sorted(k for k in visits if k.endswith(".html"))


def test_every_page_loads_without_console_errors(visits):
    problems = {page: seen["errors"] for page, seen in visits.items() if seen["errors"]}
    assert not problems, f"browser errors by page: {problems}"


def test_pages_reach_nothing_but_the_local_server(visits):
    blocked = {page: seen["remote"] for page, seen in visits.items() if seen["remote"]}
    assert not blocked, f"pages asked the network for: {blocked}"


class _RemoteRefs(html.parser.HTMLParser):
    """Collect the remote resources an HTML file would load."""
    LOADING = {("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"),
               ("audio", "src"), ("video", "src"), ("embed", "src"), ("object", "data")}
    LINK_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon",
                 "shortcut", "manifest", "apple-touch-icon"}

    def __init__(self):
        super().__init__()
        self.remote = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for (t, attr) in self.LOADING:
            if tag == t and _is_remote(attrs.get(attr)):
                self.remote.append(f"<{tag} {attr}={attrs[attr]}>")
        rels = set((attrs.get("rel") or "").lower().split())
        if tag == "link" and rels & self.LINK_RELS and _is_remote(attrs.get("href")):
            self.remote.append(f"<link rel={attrs['rel']} href={attrs['href']}>")


def _is_remote(url):
    return bool(url) and re.match(r"\s*(https?:)?//", url) is not None


def test_no_built_file_references_a_remote_script_stylesheet_or_font(built_book):
    remote = {}
    for page in built_book.html.rglob("*.html"):
        if page.relative_to(built_book.html).parts[0] == "_static":
            continue  # the theme's template fragments, never served as pages
        parser = _RemoteRefs()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        if parser.remote:
            remote[page.relative_to(built_book.html).as_posix()] = parser.remote
    css_remote = re.compile(r"""(url\(\s*['"]?|@import\s+['"])\s*(https?:)?//""")
    for css in built_book.html.rglob("*.css"):
        hits = [m.group(0) for m in css_remote.finditer(css.read_text(errors="replace"))]
        if hits:
            remote[css.relative_to(built_book.html).as_posix()] = hits
    assert not remote, f"remote scripts/stylesheets/fonts (the book must read offline): {remote}"


def test_mathjax_is_served_from_the_build(built_book):
    scripts = set()
    for page in built_book.html.rglob("*.html"):
        scripts.update(re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page.read_text()))
    assert scripts, "no page loads MathJax, though chapters have math"
    for src in scripts:
        assert not _is_remote(src), src


def test_no_code_line_or_message_is_cut_off_at_1280_px(visits):
    """Long code lines and error messages wrap inside their box instead of running past its edge."""
    cut = {page: seen["cut_off"] for page, seen in visits.items() if seen.get("cut_off")}
    assert not cut, f"code or output lines wider than their box at 1280 px (first line of each): {cut}"


def test_every_image_loads(visits):
    broken = {page: [img["src"] for img in seen["images"] if img["width"] == 0]
              for page, seen in visits.items() if "images" in seen}
    broken = {page: srcs for page, srcs in broken.items() if srcs}
    assert not broken, f"images that did not load: {broken}"


def test_figure_titles_are_no_smaller_than_the_body_text(built_book, server, visits):
    """A figure's titles, at the book's title size and the PNG's dpi, scaled as the
    page shows the image at 1280 px, are at least as large as the body text."""
    from PIL import Image

    from convlab.figures import STYLE

    title_points = STYLE["axes.titlesize"]
    small = []
    for rel in _page_ids(visits):
        seen = visits[rel]
        for image in seen["images"]:
            path = _local_path(built_book.html, server, image["src"])
            if not image["output"] or path is None or path.suffix != ".png" or not image["width"]:
                continue
            dpi = Image.open(path).info.get("dpi", (72, 72))[0]
            shown = title_points * dpi / 72 * image["shown"] / image["width"]
            if shown < seen["body_font"] - 0.5:
                small.append(f"{rel}: {path.name} titles {shown:.1f} px < body "
                             f"{seen['body_font']:.0f} px (image {image['width']} px shown at "
                             f"{image['shown']:.0f} px)")
    assert not small, "figures whose titles read smaller than the text:\n" + "\n".join(small)


def test_chapters_have_figures(visits):
    """At least one page shows an executed figure (guards the image check itself)."""
    figures = [img for seen in visits.values() for img in seen.get("images", [])
               if "/_images/" in img["src"]]
    assert figures, "no page shows a figure from the executed notebooks"


def test_math_is_typeset(visits):
    problems = {}
    for page in _page_ids(visits):
        seen = visits[page]
        issues = []
        if seen["math"] and not seen["mathjax_loaded"]:
            issues.append(f"{seen['math']} formulas but MathJax did not load")
        if seen["math_typeset"] != seen["math"]:
            issues.append(f"{seen['math'] - seen['math_typeset']} of {seen['math']} "
                          f"formulas not typeset")
        if seen["math_errors"]:
            issues.append(f"MathJax errors: {seen['math_errors']}")
        raw = re.findall(r".{0,30}(?:\$|\\\(|\\\)|\\\[|\\\]|\\begin\{).{0,30}", seen["prose"])
        if raw:
            issues.append(f"raw TeX in the text: {raw[:5]}")
        if issues:
            problems[page] = issues
    assert not problems, problems
    assert any(visits[p]["math"] for p in _page_ids(visits)), "no page has math at all"


def test_code_cells_show_their_outputs(built_book, visits):
    executed = built_book.html.parent / "jupyter_execute"
    problems = {}
    for docname in toc_files():
        seen = visits[f"{docname}.html"]
        notebook = executed / f"{docname}.ipynb"
        assert notebook.exists(), f"executed notebook {notebook} not found"
        cells = [c for c in json.loads(notebook.read_text())["cells"]
                 if c["cell_type"] == "code"
                 and "remove-cell" not in c.get("metadata", {}).get("tags", [])]
        if len(cells) != len(seen["cells"]):
            problems[docname] = (f"{len(cells)} code cells in the notebook, "
                                 f"{len(seen['cells'])} on the page")
            continue
        for number, (cell, shown) in enumerate(zip(cells, seen["cells"]), start=1):
            tags = cell.get("metadata", {}).get("tags", [])
            expected = bool(cell.get("outputs")) and "remove-output" not in tags
            if expected and not shown["has_output"]:
                problems.setdefault(docname, []).append(f"code cell {number}: output missing")
            elif expected and not (shown["visible"] or shown["toggled"]):
                problems.setdefault(docname, []).append(f"code cell {number}: output hidden")
    assert not problems, problems
    assert any(visits[f"{d}.html"]["cells"] for d in toc_files()), "no code cells anywhere"


def test_navigation_reaches_every_chapter(server, visits):
    expected = [f"{server}{docname}.html" for docname in toc_files()]
    # The sidebar of every page lists every chapter ...
    for docname in toc_files():
        sidebar = {link.split("#")[0] for link in visits[f"{docname}.html"]["sidebar"]}
        missing = [url for url in expected if url not in sidebar]
        assert not missing, f"sidebar of {docname} lacks {missing}"
    # ... the landing page is the root chapter ...
    assert visits["index.html"]["url"] == expected[0]
    # ... and "next" leads from the first chapter through all of them in order.
    chain, url = [], expected[0]
    while url and url not in chain:
        chain.append(url)
        url = visits[url.removeprefix(server)]["next"]
        url = url.split("#")[0] if url else None
    assert chain == expected, f"'next' links visit {chain}, the table of contents has {expected}"


def test_no_internal_link_is_broken(built_book, server, visits):
    ids_cache = {}
    broken = {}
    for page in _page_ids(visits):
        for link in visits[page]["links"]:
            target = _local_path(built_book.html, server, link)
            if target is None:
                continue
            fragment = unquote(urlsplit(link).fragment)
            if not target.is_file():
                broken.setdefault(page, []).append(f"{link} (no such file)")
            elif fragment and target.suffix == ".html":
                if target not in ids_cache:
                    ids_cache[target] = _ids(target)
                if fragment not in ids_cache[target]:
                    broken.setdefault(page, []).append(f"{link} (no #{fragment})")
    assert not broken, f"broken links by page: {broken}"


def test_chapters_link_to_their_exercise_notebooks(built_book, server, visits):
    config = _config()
    mapping = config["sphinx"]["config"]["exercise_notebooks"]
    # The repository the course is published from: _config.yml, else COURSE_REPOSITORY; with neither
    # (this repository's default), no launch button at all.
    repo_url = (config["repository"]["url"] or os.environ.get("COURSE_REPOSITORY", "")).rstrip("/")
    org_repo = "/".join(urlsplit(repo_url).path.strip("/").split("/")[-2:])
    hubs = {k: v.rstrip("/") for k, v in config.get("launch_buttons", {}).items()
            if k in ("binderhub_url", "jupyterhub_url") and v} if repo_url else {}
    assert repo_url or not any("binder" in u for page in visits.values() for u in page.get("links", [])), (
        "a launch button without a repository")
    for docname in toc_files():
        box = visits[f"{docname}.html"]["exercise"]
        if docname not in mapping:
            assert box is None, f"{docname} has an exercise box but no assignment"
            continue
        assignment = mapping[docname]
        source = REPO / "exercises" / assignment / f"{assignment}.ipynb"
        assert box and box["visible"], f"{docname}: no visible exercise box"
        assert len(box["downloads"]) == 1, f"{docname}: downloads {box['downloads']}"
        served = _local_path(built_book.html, server, box["downloads"][0])
        assert served.name == source.name
        assert served.read_bytes() == source.read_bytes(), (
            f"{docname}: the downloadable notebook differs from {source}")
        assert len(box["wheels"]) == 1 and _local_path(built_book.html, server, box["wheels"][0]).is_file(), (
            f"{docname}: the course package's wheel is not served: {box['wheels']}")
        path = f"exercises/{assignment}/{assignment}.ipynb"
        assert len(box["launches"]) == len(hubs), f"{docname}: {box['launches']}"
        for key, hub in hubs.items():
            matching = [u for u in box["launches"] if u.startswith(hub + "/")]
            assert len(matching) == 1, f"{docname}: no link to {key} {hub}"
            assert path in unquote(matching[0]), matching[0]
            assert org_repo in unquote(matching[0]), matching[0]


def test_search_works_offline(visits):
    search = visits["search.html?q=kernel"]
    assert search["hits"] > 0
    assert not search["errors"] and not search["remote"], search


def test_an_animation_steps_and_plays_offline(server):
    """The padding animation of padding_stride: Next, Previous, Play and Pause in Chromium, offline."""
    import torch
    import torch.nn.functional as F

    expected = F.conv2d(torch.arange(9.0).reshape(1, 1, 3, 3), torch.arange(4.0).reshape(1, 1, 2, 2),
                        padding=1).flatten().tolist()
    with _offline_page({"width": 1280, "height": 900}) as (page, current):
        page.goto(server + "book/padding_stride.html", wait_until="load")
        anim = page.locator(".convlab-anim").first
        counter, play = anim.locator(".ca-counter"), anim.locator("button[data-action=play]")

        def shown():
            """The numbers in the output grid of the frame on screen."""
            assert anim.locator(".ca-frame:visible").count() == 1, "not exactly one frame shown"
            cells = anim.locator(".ca-frame:visible table[data-role=output] td")
            return [float(t) for t in cells.evaluate_all("tds => tds.map(td => td.textContent)") if t]

        assert anim.locator(".ca-controls").is_visible()
        assert counter.inner_text() == f"step 1 of {len(expected)}"
        assert shown() == expected[:1]
        anim.locator("button[data-action=next]").click()
        assert counter.inner_text() == f"step 2 of {len(expected)}"
        assert shown() == expected[:2]
        anim.locator("button[data-action=prev]").click()
        assert counter.inner_text() == f"step 1 of {len(expected)}" and shown() == expected[:1]

        play.click()
        assert play.inner_text() == "Pause"
        page.wait_for_function("el => el.textContent.startsWith('step 3 ')",
                               arg=counter.element_handle(), timeout=10_000)
        play.click()
        assert play.inner_text() == "Play"
        paused = counter.inner_text()
        page.wait_for_timeout(2_500)  # more than two frames' time: nothing moves while paused
        assert counter.inner_text() == paused
        step = int(paused.split()[1])
        assert step >= 3 and shown() == expected[:step]
        assert not current["errors"] and not current["remote"], current


# ---------------------------------------------------------------------------
# On a phone: 390 px wide, the width of a common phone held upright

NARROW = {"width": 390, "height": 844}

# What makes a page wider than the screen: the outermost elements that stick out
# on the right and are not inside a box that scrolls or clips them (nor in a
# fixed, hidden panel such as the closed table of contents).
TOO_WIDE_JS = r"""
() => {
  const contained = el => {
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.overflowX !== 'visible' || style.position === 'fixed') return true;
    }
    return false;
  };
  const sticksOut = el => el.getBoundingClientRect().right > innerWidth + 0.5
      && el.getBoundingClientRect().width > 0;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (!sticksOut(el) || getComputedStyle(el).visibility === 'hidden' || contained(el)) continue;
    if (el.parentElement && sticksOut(el.parentElement)) continue;
    const name = el.tagName.toLowerCase() + (typeof el.className === 'string' && el.className.trim()
        ? '.' + el.className.trim().split(/\s+/).join('.') : '');
    wide.push(`${name} (right edge ${Math.round(el.getBoundingClientRect().right)} px): `
        + (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 60));
  }
  return {scroll_width: document.documentElement.scrollWidth, inner_width: innerWidth,
          too_wide: wide.slice(0, 5)};
}
"""


# The language switch's links, and whether each is on the screen (not under another element).
SWITCH_JS = r"""
() => Array.from(document.querySelectorAll('.convlab-language-switch a')).map(a => {
  const r = a.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {href: a.href, shown: r.width > 0 && r.left >= 0 && r.right <= innerWidth && r.top >= 0
          && r.bottom <= innerHeight && getComputedStyle(a).visibility !== 'hidden'
          && !!top && (top === a || a.contains(top))};
})
"""


def _click_visible_toggle(page, toggle, dialog, contents):
    """Click the visible ``toggle`` button; return whether ``dialog`` opened showing ``contents``.

    None if the page has no visible such button. The dialog is closed again with Escape.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    button = page.locator(f"{toggle}:visible")
    if button.count() == 0:
        return None
    button.first.click()
    try:
        page.wait_for_function(f"document.querySelector('{dialog}')?.open === true", timeout=5_000)
    except PlaywrightTimeout:
        return False
    shown = page.locator(f"{dialog} {contents}").first.is_visible()
    page.keyboard.press("Escape")
    page.wait_for_function(f"document.querySelector('{dialog}').open === false", timeout=5_000)
    return shown


@pytest.fixture(scope="module")
def narrow_visits(built_book, server):
    """Open every page at 390 px; return {page: width, and what its header buttons did}."""
    results = {}
    with _offline_page(NARROW) as (page, current):
        for rel in _pages(built_book.html):
            if rel in REDIRECTS:
                continue  # a redirect to the root page, visited as itself
            current.update(errors=[], remote=[])
            page.goto(server + rel, wait_until="load")
            seen = page.evaluate(TOO_WIDE_JS)
            seen["switch"] = page.evaluate(SWITCH_JS)
            seen["sidebar"] = _click_visible_toggle(
                page, ".primary-toggle", "#pst-primary-sidebar-modal", "nav.bd-docs-nav a")
            seen["contents"] = _click_visible_toggle(
                page, ".secondary-toggle", "#pst-secondary-sidebar-modal", "nav.page-toc a")
            seen["errors"] = list(current["errors"])
            results[rel] = seen
    return results


def test_no_page_scrolls_sideways_on_a_phone(narrow_visits):
    wide = {page: f"{seen['scroll_width']} px wide on a {seen['inner_width']} px screen: "
                  f"{seen['too_wide']}"
            for page, seen in narrow_visits.items() if seen["scroll_width"] > seen["inner_width"]}
    assert not wide, f"pages wider than the screen (what sticks out): {wide}"


def test_the_sidebar_button_opens_the_sidebar_on_a_phone(narrow_visits):
    broken = {page: seen["sidebar"] for page, seen in narrow_visits.items() if not seen["sidebar"]}
    assert not broken, ("pages whose visible sidebar button did not open the sidebar with its "
                        f"links (None: no visible button): {broken}")


def test_the_contents_button_opens_the_table_of_contents_on_a_phone(narrow_visits):
    chapters = [f"{docname}.html" for docname in toc_files()]
    with_toc = [page for page in chapters if narrow_visits[page]["contents"] is not None]
    assert with_toc, "no chapter has a visible table-of-contents button at 390 px"
    broken = [page for page in with_toc if not narrow_visits[page]["contents"]]
    assert not broken, f"the table-of-contents button did not open the contents on: {broken}"


def test_the_header_buttons_cause_no_console_errors_on_a_phone(narrow_visits):
    problems = {page: seen["errors"] for page, seen in narrow_visits.items() if seen["errors"]}
    assert not problems, f"browser errors at 390 px, after clicking the header buttons: {problems}"


# ---------------------------------------------------------------------------
# The two editions: a language switch on every page, to the same page in the other language


def _switch_problems(rel, links, server, key):
    """What is wrong with the switch of page ``rel``: it must hold one link per other edition,
    shown, leading to the same page in that edition."""
    others = [language for language in EDITIONS if language != edition_of(rel)]
    problems = []
    if len(links) != len(others):
        return [f"{len(links)} switch links, {len(others)} other editions"]
    for link, language in zip(links, others):
        if not link[key]:
            problems.append(f"link to {language} not shown")
        if link["href"] != server + counterpart(rel, language):
            problems.append(f"link to {link['href']}, not {counterpart(rel, language)}")
    return problems


def test_every_page_switches_to_the_same_page_in_the_other_language(server, visits):
    pages = [rel for rel in _page_ids(visits) if rel not in REDIRECTS]
    assert any(edition_of(rel) != "en" for rel in pages), "no page of a translated edition was visited"
    for rel in pages:  # every English page has its translation, and the other way round
        for language in EDITIONS:
            assert counterpart(rel, language) in visits, f"{rel}: no {language} page"
    problems = {rel: found for rel in pages
                if (found := _switch_problems(rel, visits[rel]["switch"], server, "visible"))}
    assert not problems, f"language switches at 1280 px: {problems}"
    wrong_lang = {rel: visits[rel]["lang"] for rel in pages
                  if visits[rel]["lang"] != edition_of(rel).replace("_", "-")}
    assert not wrong_lang, f"pages whose <html lang> is not their edition's: {wrong_lang}"


def test_the_language_switch_is_on_screen_on_a_phone(server, narrow_visits):
    problems = {rel: found for rel, seen in narrow_visits.items()
                if (found := _switch_problems(rel, seen["switch"], server, "shown"))}
    assert not problems, f"language switches at 390 px: {problems}"


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, NARROW], ids=["desktop", "phone"])
def test_the_language_switch_goes_there_and_back(server, viewport):
    """Click the switch on a chapter: the same chapter in Chinese; click again: back in English."""
    start = "book/cross_correlation.html"
    with _offline_page(viewport) as (page, current):
        page.goto(server + start, wait_until="load")
        for rel in (counterpart(start, TRANSLATED[0]), start):
            page.locator(".convlab-language-switch a:visible").first.click()
            page.wait_for_url(server + rel)
            page.wait_for_load_state("load")
            assert page.evaluate("document.documentElement.lang") == edition_of(rel).replace("_", "-")
        assert not current["errors"] and not current["remote"], current


def test_search_works_offline_in_chinese(visits):
    search = visits[f"{TRANSLATED[0]}/search.html?q=卷积"]
    assert search["hits"] > 0
    assert not search["errors"] and not search["remote"], search


def test_an_animation_speaks_chinese_in_the_chinese_edition(server):
    """The same animation HTML shows its buttons, counter and grid labels in Chinese on a Chinese page."""
    with _offline_page({"width": 1280, "height": 900}) as (page, current):
        page.goto(server + f"{TRANSLATED[0]}/book/padding_stride.html", wait_until="load")
        anim = page.locator(".convlab-anim").first
        counter = anim.locator(".ca-counter")
        assert re.fullmatch(r"第1步，共\d+步", counter.inner_text()), counter.inner_text()
        buttons = anim.locator("button").evaluate_all("bs => bs.map(b => b.textContent)")
        assert buttons == ["上一步", "播放", "下一步"], buttons
        anim.locator("button[data-action=next]").click()
        assert counter.inner_text().startswith("第2步")
        labels = anim.locator(".ca-frame:visible figcaption").evaluate_all("cs => cs.map(c => c.textContent)")
        assert labels and all(re.search(r"[\u4e00-\u9fff]", label) for label in labels), labels
        words = re.findall(r"[A-Za-z]{2,}", anim.locator(".ca-frame:visible").inner_text())
        assert not words, f"English words in the Chinese animation: {words}"
        assert not current["errors"] and not current["remote"], current
