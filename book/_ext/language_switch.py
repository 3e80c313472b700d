"""A language switch in the header of every page: a link to the same page in the other
edition of the book (the English one at the root of the build, each translation in a folder
named after its language, ``zh_CN/``; ``python book/_ext/editions.py build`` makes both).

``_config.yml`` lists the editions, the English one first::

    sphinx:
      config:
        book_editions:
          en: English
          zh_CN: 中文

The links are relative (``../zh_CN/book/shapes.html`` from ``book/shapes.html``), so they
work from ``file://`` and from any host or folder the build is published in. The switch is
a template (``templates/language-switch.html``) put first among the theme's header buttons
(``article_header_end``), which the theme shows at every width, phones included.

What code cells output (text, tables, Markdown they display) is the same in every edition:
``CodeOutputs`` marks it untranslatable, so the catalogs hold prose only and the Chinese pages
show the English build's outputs unchanged (the captions of figures are prose, and translated).
"""

import os

from docutils import nodes
from sphinx.transforms import SphinxTransform

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def edition_folder(language, source_language):
    """The folder of an edition, relative to the root of the build.

    >>> edition_folder("en", "en"), edition_folder("zh_CN", "en")
    ('', 'zh_CN/')
    """
    return "" if language == source_language else f"{language}/"


def switch_links(pagename, language, editions):
    """``[(language, label, href)]``: the same page in each other edition, relative to the page.

    ``editions`` maps each language to its label, the source language first.

    >>> editions = {"en": "English", "zh_CN": "中文"}
    >>> switch_links("book/shapes", "en", editions)
    [('zh_CN', '中文', '../zh_CN/book/shapes.html')]
    >>> switch_links("book/shapes", "zh_CN", editions)
    [('en', 'English', '../../book/shapes.html')]
    >>> switch_links("search", "zh_CN", editions)
    [('en', 'English', '../search.html')]
    """
    source = next(iter(editions))
    root = "../" * pagename.count("/") + ("../" * edition_folder(language, source).count("/"))
    return [(other, label, f"{root}{edition_folder(other, source)}{pagename}.html")
            for other, label in editions.items() if other != language]


def hreflang(language):
    """The HTML form of a Sphinx language code.

    >>> hreflang("zh_CN"), hreflang("en")
    ('zh-CN', 'en')
    """
    return language.replace("_", "-")


class CodeOutputs(SphinxTransform):
    """Mark everything a code cell outputs as not translatable (but its figure's caption), before
    the gettext builder reads the page and before Sphinx translates it (``Locale``, priority 20)."""

    default_priority = 15

    def apply(self, **kwargs):
        for output in self.document.findall(nodes.container):
            if output.get("nb_element") == "cell_code_output" or "cell_output" in output.get("classes", []):
                captions = {id(n) for figure in output.findall(nodes.figure)
                            for part in figure.children if isinstance(part, (nodes.caption, nodes.legend))
                            for n in part.findall(nodes.Element)}
                for node in output.findall(nodes.TextElement):
                    if id(node) not in captions:
                        node["translatable"] = False


def _add_links(app, pagename, templatename, context, doctree):
    editions = app.config.book_editions or {}
    language = app.config.language or "en"
    if language not in editions:
        return
    context["language_links"] = [dict(language=hreflang(other), label=label, href=href)
                                 for other, label, href in switch_links(pagename, language, editions)]


def _add_template(app, config):
    if not config.book_editions:
        return
    if TEMPLATES not in config.templates_path:
        config.templates_path = [*config.templates_path, TEMPLATES]
    theme = dict(config.html_theme_options or {})
    end = theme.get("article_header_end") or ["article-header-buttons.html"]
    if isinstance(end, str):
        end = [end]
    if "language-switch.html" not in end:
        theme["article_header_end"] = ["language-switch.html", *end]
    config.html_theme_options = theme


def setup(app):
    app.add_config_value("book_editions", {}, "html", types=[dict])
    app.connect("config-inited", _add_template, priority=600)
    app.connect("html-page-context", _add_links)
    app.add_transform(CodeOutputs)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
