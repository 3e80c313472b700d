"""Link each chapter to its graded exercise notebook.

``_config.yml`` maps chapters to nbgrader assignments::

    sphinx:
      config:
        exercise_notebooks:
          book/shapes: shapes_padding_stride

Each mapped chapter gets a box under its title with a download link to
``exercises/<assignment>/<assignment>.ipynb`` (Sphinx copies the notebook into
the build), with ``exercise_package`` (a Python project's folder, relative to
the book) a link to that project's wheel, built into ``_wheels/`` of the HTML
output, and the one command that installs it, so that a downloaded notebook runs
without the repository; and launch links for the hubs set in ``launch_buttons``
(``binderhub_url``, ``jupyterhub_url``), all built from the one repository
setting, the URL of the repository the course is published from:
``repository: url`` in ``_config.yml``, or when that is empty the environment's
``COURSE_REPOSITORY`` (``make book`` sets it from ``git remote get-url origin``
when that is a public https URL). With neither, the book shows no launch button
at all, rather than one that opens a wrong repository. A mapped notebook that
does not exist, or a mapped chapter that is not in the book, is a build warning,
so an error under ``-W``.
"""

import os
import subprocess
import sys
import tomllib
from urllib.parse import quote, urlencode, urlsplit

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

INTERFACES = {"classic": "tree", "jupyterlab": "lab/tree"}


def notebook_path(assignment, language="en"):
    """Path of an assignment's released notebook, relative to the book root: the English
    one, or its translation (``exercises/<language>/<a>/<a>.ipynb``, made by
    ``book/_ext/editions.py notebooks``) for another edition of the book.

    >>> notebook_path("shapes"), notebook_path("shapes", "zh_CN")
    ('exercises/shapes/shapes.ipynb', 'exercises/zh_CN/shapes/shapes.ipynb')
    """
    if language and language != "en":
        return f"exercises/{language}/{assignment}/{assignment}.ipynb"
    return f"exercises/{assignment}/{assignment}.ipynb"


# The words of the exercise box in each edition of the book (the box is made after Sphinx
# translates a page, so its words are here rather than in the catalogs).
LABELS = {
    "en": {"title": "Graded exercise", "download": "Download ", "open": " and open it in Jupyter",
           "online": ", or work on it online:", "end": ".", "launch": "Open on {}",
           "needs": "Its tests use the course package: download ",
           "install": " and install it, with PyTorch, in the environment of your Jupyter: "},
    "zh_CN": {"title": "评分练习", "download": "下载 ", "open": " 并在 Jupyter 中打开",
              "online": "，或在线完成：", "end": "。", "launch": "在 {} 上打开",
              "needs": "它的测试要用课程的软件包：下载 ",
              "install": " 并把它连同 PyTorch 安装到你的 Jupyter 所用的环境中："},
}


def labels(language):
    """The words of the exercise box for a language (English when it has none).

    >>> labels("zh_CN")["title"], labels("fr")["title"]
    ('评分练习', 'Graded exercise')
    """
    return LABELS.get(language or "en", LABELS["en"])


def launch_urls(path, *, repository_url, branch="main", binderhub_url="",
                jupyterhub_url="", notebook_interface="classic"):
    """Return ``[(label, url), ...]`` that open ``path`` on each configured hub.

    ``path`` is relative to the repository root. JupyterHub links use
    nbgitpuller's ``git-pull`` endpoint, which clones the repository into a
    folder named after it; Binder links use the ``gh`` provider for GitHub and
    the generic ``git`` provider for any other host.

    >>> dict(launch_urls("exercises/a/a.ipynb",
    ...      repository_url="https://github.com/org/repo",
    ...      binderhub_url="https://mybinder.org"))["Binder"]
    'https://mybinder.org/v2/gh/org/repo/main?urlpath=tree/exercises/a/a.ipynb'
    """
    if notebook_interface not in INTERFACES:
        raise ValueError(
            f"launch_buttons.notebook_interface must be one of "
            f"{sorted(INTERFACES)}, got {notebook_interface!r}")
    repository_url = repository_url.rstrip("/").removesuffix(".git")
    parts = urlsplit(repository_url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("http", "https") or not segments:
        raise ValueError(
            f"repository.url must be an http(s) URL of a git repository, "
            f"got {repository_url!r}")
    ui_path = f"{INTERFACES[notebook_interface]}/{path}"
    urls = []
    if binderhub_url:
        hub = binderhub_url.rstrip("/")
        if parts.netloc == "github.com" and len(segments) == 2:
            spec = f"gh/{segments[0]}/{segments[1]}/{quote(branch, safe='')}"
        else:
            spec = f"git/{quote(repository_url, safe='')}/{quote(branch, safe='')}"
        urls.append(("Binder", f"{hub}/v2/{spec}?" + urlencode({"urlpath": ui_path}, safe="/")))
    if jupyterhub_url:
        hub = jupyterhub_url.rstrip("/")
        query = urlencode({"repo": repository_url,
                           "urlpath": f"{INTERFACES[notebook_interface]}/{segments[-1]}/{path}",
                           "branch": branch}, safe="/")
        urls.append(("JupyterHub", f"{hub}/hub/user-redirect/git-pull?{query}"))
    return urls


class ExerciseLinks(SphinxTransform):
    """Insert the exercise box under the title of each mapped chapter."""

    default_priority = 500

    def apply(self, **kwargs):
        docname = self.env.docname
        assignment = self.config.exercise_notebooks.get(docname)
        if assignment is None:
            return
        section = next(iter(self.document.findall(nodes.section)), None)
        if section is None or not isinstance(section[0], nodes.title):
            logger.warning("exercise_notebooks: chapter %s has no title to put "
                           "the exercise link under", docname, location=docname)
            return
        language = self.config.language or "en"
        words = labels(language)
        path = notebook_path(assignment, language)
        _, abspath = self.env.relfn2path("/" + path, docname)
        options = _launch_options(self.config)
        launches = launch_urls(path, **options) if options["repository_url"] else []
        para = nodes.paragraph()
        if os.path.isfile(abspath):
            para += nodes.Text(words["download"])
            ref = addnodes.download_reference(
                "", "", refdoc=docname, reftarget="/" + path, refexplicit=True,
                reftype="download", refdomain="", classes=["exercise-download"])
            ref += nodes.literal("", f"{assignment}.ipynb", classes=["xref", "download"])
            para += ref
        else:
            logger.warning("exercise_notebooks: the notebook %s for chapter %s does "
                           "not exist (run nbgrader generate_assignment %s)",
                           path, docname, assignment, location=docname)
            para += nodes.Text(words["download"])
            para += nodes.literal("", f"{assignment}.ipynb")
        para += nodes.Text(words["open"] + (words["online"] if launches else words["end"]))
        box = nodes.admonition(classes=["tip", "exercise-links"])
        box += nodes.title("", words["title"])
        box += para
        if launches:
            buttons = nodes.paragraph(classes=["exercise-launch"])
            for label, url in launches:
                if len(buttons):
                    buttons += nodes.Text(" ")
                buttons += nodes.reference(
                    "", words["launch"].format(label), refuri=url,
                    classes=["sd-btn", "sd-btn-outline-primary",
                             "exercise-launch-" + label.lower()])
            box += buttons
        wheel = wheel_name(self.app.srcdir, self.config.exercise_package)
        if wheel:
            needs = nodes.paragraph(classes=["exercise-package"])
            needs += nodes.Text(words["needs"])
            needs += nodes.reference("", "", nodes.literal("", wheel), refuri="../" * docname.count("/")
                                     + f"_wheels/{wheel}", classes=["exercise-wheel"])
            needs += nodes.Text(words["install"])
            needs += nodes.literal("", f"pip install {wheel}")
            box += needs
        section.insert(1, box)


def wheel_name(srcdir, package):
    """The file name of the wheel of the project ``package`` (relative to ``srcdir``), or ``''`` for none.

    >>> wheel_name(os.path.join(os.path.dirname(__file__), "..", ".."), ".").startswith("convlab-")
    True
    """
    if not package:
        return ""
    project = os.path.join(srcdir, package)
    with open(os.path.join(project, "pyproject.toml"), "rb") as file:
        meta = tomllib.load(file)["project"]
    return f"{meta['name'].replace('-', '_')}-{meta['version']}-py3-none-any.whl"


def build_wheel(project, dest):
    """Build the wheel of the Python project in ``project`` into ``dest`` (pip, no dependencies, offline).

    setuptools leaves ``build/`` and ``*.egg-info`` in the project: those it created are removed.
    """
    import glob
    import shutil

    def leftovers():
        return {p for p in [os.path.join(project, "build"), *glob.glob(os.path.join(project, "*.egg-info"))]
                if os.path.exists(p)}

    before = leftovers()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(dest), str(project)], capture_output=True, text=True)
    for path in leftovers() - before:
        shutil.rmtree(path, ignore_errors=True)
    if done.returncode:
        raise RuntimeError(f"pip wheel {project} failed:\n{done.stdout}{done.stderr}")


def _build_package(app, exception):
    wheel = wheel_name(app.srcdir, app.config.exercise_package)
    if exception is not None or not wheel or app.builder.format != "html":
        return
    dest = os.path.join(app.outdir, "_wheels")
    try:
        build_wheel(os.path.join(app.srcdir, app.config.exercise_package), dest)
    except RuntimeError as error:
        logger.warning("exercise_package: %s", error)
        return
    if not os.path.isfile(os.path.join(dest, wheel)):
        logger.warning("exercise_package: the wheel %s linked from the exercise boxes was not built "
                       "(found %s)", wheel, sorted(os.listdir(dest)))


def course_repository(configured, environ=os.environ):
    """The URL of the repository the course is published from, or ``''`` if it is not set.

    >>> course_repository("https://github.com/a/b", {"COURSE_REPOSITORY": "https://x.org/c"})
    'https://github.com/a/b'
    >>> course_repository("", {"COURSE_REPOSITORY": "https://x.org/c"}), course_repository("", {})
    ('https://x.org/c', '')
    """
    return (configured or environ.get("COURSE_REPOSITORY", "")).strip()


_HUBS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")


def _set_repository(app, config):
    """Settle the repository URL before the theme reads it; without one, no hub is offered anywhere."""
    theme = dict(config.html_theme_options or {})
    url = course_repository(theme.get("repository_url", ""))
    theme["repository_url"] = url
    if not url:
        theme["launch_buttons"] = {key: value for key, value in (theme.get("launch_buttons") or {}).items()
                                   if key not in _HUBS}
    config.html_theme_options = theme


def _launch_options(config):
    """The launch settings that Jupyter Book puts in ``html_theme_options``."""
    theme = config.html_theme_options or {}
    buttons = theme.get("launch_buttons") or {}
    return dict(repository_url=theme.get("repository_url", ""),
                branch=theme.get("repository_branch") or "main",
                binderhub_url=buttons.get("binderhub_url", ""),
                jupyterhub_url=buttons.get("jupyterhub_url", ""),
                notebook_interface=buttons.get("notebook_interface", "classic"))


def _check_config(app, config):
    if not config.exercise_notebooks:
        return
    options = _launch_options(config)
    if options["binderhub_url"] or options["jupyterhub_url"]:
        launch_urls("exercises/x/x.ipynb", **options)  # raises on a bad setting


def _check_chapters(app, env):
    for docname in sorted(app.config.exercise_notebooks):
        if docname not in env.found_docs:
            logger.warning("exercise_notebooks: %s is not a page of the book "
                           "(keys are docnames such as book/shapes)", docname)


def setup(app):
    app.add_config_value("exercise_notebooks", {}, "env", types=[dict])
    app.add_config_value("exercise_package", "", "env", types=[str])
    app.add_transform(ExerciseLinks)
    app.connect("config-inited", _set_repository, priority=100)
    app.connect("config-inited", _check_config)
    app.connect("build-finished", _build_package)
    app.connect("env-check-consistency", _check_chapters)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
