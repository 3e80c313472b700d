"""The book's Sphinx extensions (book/_ext), each on a one-page Sphinx project."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXT = Path(__file__).resolve().parents[1] / "book" / "_ext"
sys.path.insert(0, str(EXT))
from exercise_links import launch_urls  # noqa: E402

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'


def build(tmp_path, *, conf="", notebook=True, page="A chapter\n=========\n\nSome text.\n",
          repository="https://github.com/someone/course", env=None):
    """Build a one-page project whose page maps to the assignment 'demo'."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.rst").write_text(page)
    if notebook:
        (src / "exercises" / "demo").mkdir(parents=True)
        (src / "exercises" / "demo" / "demo.ipynb").write_text(NOTEBOOK)
    (src / "conf.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(EXT)!r})
        extensions = ["exercise_links", "offline_pages", "sphinx_thebe"]
        html_theme = "sphinx_book_theme"
        exclude_patterns = ["exercises"]
        exercise_notebooks = {{"index": "demo"}}
        html_theme_options = {{
            "repository_url": {repository!r},
            "repository_branch": "spring",
            "launch_buttons": {{"binderhub_url": "https://binder.example.org/",
                                "jupyterhub_url": "https://hub.example.edu",
                                "notebook_interface": "jupyterlab"}},
        }}
    """) + textwrap.dedent(conf))
    out = tmp_path / "html"
    environ = {k: v for k, v in os.environ.items() if k != "COURSE_REPOSITORY"}
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html",
                             str(src), str(out)], capture_output=True, text=True, env=dict(environ, **(env or {})))
    return result, out


def test_chapter_gets_download_and_launch_links(tmp_path):
    result, out = build(tmp_path)
    assert result.returncode == 0, result.stderr
    page = (out / "index.html").read_text()
    assert 'class="tip exercise-links admonition"' in page
    downloads = list(out.glob("_downloads/*/demo.ipynb"))
    assert len(downloads) == 1 and downloads[0].read_text() == NOTEBOOK
    assert f'href="_downloads/{downloads[0].parent.name}/demo.ipynb"' in page
    assert ('href="https://binder.example.org/v2/gh/someone/course/spring'
            '?urlpath=lab/tree/exercises/demo/demo.ipynb"') in page
    assert ('href="https://hub.example.edu/hub/user-redirect/git-pull'
            '?repo=https%3A//github.com/someone/course'
            '&amp;urlpath=lab/tree/course/exercises/demo/demo.ipynb'
            '&amp;branch=spring"') in page


def test_each_script_is_included_once(tmp_path):
    """sphinx-thebe's inline `const THEBE_JS_URL` twice is a console error."""
    result, out = build(tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "index.html").read_text().count("const THEBE_JS_URL") == 1


def test_missing_notebook_fails_the_build(tmp_path):
    result, _ = build(tmp_path, notebook=False)
    assert result.returncode != 0
    assert "exercises/demo/demo.ipynb" in result.stderr


def test_mapping_to_a_page_that_does_not_exist_fails_the_build(tmp_path):
    result, _ = build(tmp_path, conf='exercise_notebooks["book/nope"] = "demo"\n')
    assert result.returncode != 0
    assert "book/nope is not a page of the book" in result.stderr


@pytest.mark.parametrize("setting, url", [("html_js_files", "https://cdn.example.org/x.js"),
                                          ("html_css_files", "https://cdn.example.org/x.css")])
def test_remote_script_or_stylesheet_fails_the_build(tmp_path, setting, url):
    result, _ = build(tmp_path, conf=f'{setting} = ["{url}"]\n')
    assert result.returncode != 0
    assert f"{url} from another site" in result.stderr


def test_chapter_without_a_title_fails_the_build(tmp_path):
    result, _ = build(tmp_path, page="Some text, no title.\n")
    assert result.returncode != 0
    assert "chapter index has no title to put the exercise link under" in result.stderr


def test_launch_urls_for_other_hosts_and_classic_notebook():
    urls = dict(launch_urls("exercises/a/a.ipynb",
                            repository_url="https://gitlab.example.org/group/sub/repo.git",
                            binderhub_url="https://mybinder.org",
                            jupyterhub_url="https://hub.example.edu/"))
    assert urls["Binder"] == ("https://mybinder.org/v2/git/"
                              "https%3A%2F%2Fgitlab.example.org%2Fgroup%2Fsub%2Frepo/main"
                              "?urlpath=tree/exercises/a/a.ipynb")
    assert urls["JupyterHub"] == (
        "https://hub.example.edu/hub/user-redirect/git-pull"
        "?repo=https%3A//gitlab.example.org/group/sub/repo"
        "&urlpath=tree/repo/exercises/a/a.ipynb&branch=main")
    assert launch_urls("x.ipynb", repository_url="https://github.com/o/r") == []


@pytest.mark.parametrize("options, message", [
    (dict(repository_url="github.com/o/r"), "repository.url"),
    (dict(repository_url="https://github.com/o/r", notebook_interface="lab"),
     "notebook_interface"),
])
def test_bad_launch_settings_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        launch_urls("x.ipynb", binderhub_url="https://mybinder.org", **options)


def test_without_a_repository_no_launch_button_is_shown(tmp_path):
    """No invented URL: with repository_url and COURSE_REPOSITORY unset, no hub link anywhere on the page."""
    result, out = build(tmp_path, repository="")
    assert result.returncode == 0, result.stderr
    page = (out / "index.html").read_text()
    assert 'class="tip exercise-links admonition"' in page and "demo.ipynb" in page
    assert "binder.example.org" not in page and "hub.example.edu" not in page and "Open on" not in page


def test_the_repository_can_come_from_course_repository(tmp_path):
    result, out = build(tmp_path, repository="", env={"COURSE_REPOSITORY": "https://gitlab.example.org/us/term"})
    assert result.returncode == 0, result.stderr
    page = (out / "index.html").read_text()
    assert ("https://binder.example.org/v2/git/https%3A%2F%2Fgitlab.example.org%2Fus%2Fterm/spring"
            "?urlpath=lab/tree/exercises/demo/demo.ipynb") in page
    assert "someone/course" not in page


def test_the_box_links_the_course_package_and_says_how_to_install_it(tmp_path):
    root = Path(__file__).resolve().parents[1]
    result, out = build(tmp_path, conf=f"exercise_package = {os.path.relpath(root, tmp_path / 'src')!r}\n")
    assert result.returncode == 0, result.stderr
    import convlab
    wheel = f"convlab-{convlab.__version__}-py3-none-any.whl"
    page = (out / "index.html").read_text()
    assert f'href="_wheels/{wheel}"' in page
    assert f'<span class="pre">pip</span> <span class="pre">install</span> <span class="pre">{wheel}</span>' in page
    assert (out / "_wheels" / wheel).stat().st_size > 10_000
