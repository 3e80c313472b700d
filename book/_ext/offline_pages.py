"""Keep every HTML page loadable offline and free of console errors.

* A page that would load a script or stylesheet from another site is a build
  warning (an error under ``-W``): the book is read in labs without internet,
  so MathJax and everything else must come from ``_static``.
* Each script and stylesheet is included once. sphinx-thebe adds its inline
  configuration (``const THEBE_JS_URL = ...``) on ``env-before-read-docs``, when
  the HTML builder already holds it, and the two copies differ only in
  ``None`` versus ``''`` as file name; the second ``const`` then throws
  "Identifier 'THEBE_JS_URL' has already been declared" on every page.
"""

from sphinx.util import logging

logger = logging.getLogger(__name__)


def _key(asset):
    """Identity of a script/stylesheet entry, whatever Sphinx version made it."""
    filename = getattr(asset, "filename", asset) or ""
    attributes = getattr(asset, "attributes", {}) or {}
    return (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _unique(assets):
    seen, unique = set(), []
    for asset in assets:
        if _key(asset) not in seen:
            seen.add(_key(asset))
            unique.append(asset)
    return unique


def _is_remote(filename):
    return "://" in filename or filename.startswith("//")


def check_page_assets(app, pagename, templatename, context, doctree):
    for name in ("script_files", "css_files"):
        if name not in context:
            continue
        context[name] = _unique(context[name])
        for asset in context[name]:
            filename = _key(asset)[0]
            if _is_remote(filename):
                logger.warning("page %s loads %s from another site; the book must "
                               "read offline (serve it from _static)", pagename,
                               filename, location=pagename)


def setup(app):
    # After the themes and other extensions have added their files (priority 500).
    app.connect("html-page-context", check_page_assets, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
