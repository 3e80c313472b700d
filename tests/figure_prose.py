"""What a chapter's code would write into its figures as words (tests/test_i18n.py).

A figure is the same image in both editions of the book, so it carries no prose: its titles,
axis labels, legends and texts are symbols, numbers, math or code names, and the words go to
its caption, which is translated. This module finds, in the code cells of a MyST chapter, the
string constants that reach matplotlib's text (``set_title``, ``set_xlabel``, ``set_ylabel``,
``suptitle``, ``text``, ``annotate``, ``figtext``, a ``label=`` or ``title=`` argument) through
the cell's names, loops over ``zip`` and the chapter's own helper functions, and reports those
with an English word (two letters or more, outside ``$...$`` math).
"""

import ast
import re

TEXT_CALLS = {"set_title", "set_xlabel", "set_ylabel", "suptitle", "text", "annotate", "figtext",
              "supxlabel", "supylabel", "set_label"}
TEXT_KEYWORDS = {"label", "title", "s", "xlabel", "ylabel"}
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
MATH = re.compile(r"\$[^$]*\$")
# Code names stay as they are in every language: a name called or indexed (corr2d(X, K), Y[0]),
# a dotted name (F.conv2d), one with an underscore or a digit (P_max, corr2d), a constant (SOBEL).
CODE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?=[\[(])|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+"
                  r"|\b\w*[_\d]\w*\b|\b[A-Z]{2,}\b")
WORD = re.compile(r"[A-Za-z]{2,}")


def code_of(cell):
    """A code cell's Python: without its front matter and IPython magics."""
    lines = cell.splitlines()
    if lines and lines[0].strip() == "---":
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
        lines = lines[end + 1:]
    while lines and lines[0].startswith(":"):  # short options, ":tags: [hide-input]"
        lines = lines[1:]
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


class _Chapter:
    def __init__(self, source):
        self.trees = [ast.parse(code_of(cell)) for cell in CELL.findall(source)]
        self.parents = {}
        for tree in self.trees:
            for node in ast.walk(tree):
                for child in ast.iter_child_nodes(node):
                    self.parents[child] = node

    def scope(self, node):
        while node in self.parents and not isinstance(node, (ast.FunctionDef, ast.Module)):
            node = self.parents[node]
        return node

    def bindings(self, name, scope):
        """Expressions bound to ``name`` in ``scope``: assignments, and loops over zip or a list."""
        found = []
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    found += self._match(target, node.value, name)
            elif isinstance(node, (ast.For, ast.comprehension)):
                found += self._match(node.target, node.iter, name, loop=True)
        return found

    def _match(self, target, value, name, loop=False):
        if isinstance(target, ast.Name):
            if target.id != name:
                return []
            if loop and isinstance(value, ast.Constant) and isinstance(value.value, str):
                return [ast.Constant(ch) for ch in value.value]  # letters of a string
            return [value]
        if isinstance(target, ast.Tuple):
            if loop and isinstance(value, ast.Call) and getattr(value.func, "id", "") == "zip":
                return [e for t, v in zip(target.elts, value.args) for e in self._match(t, v, name, loop=True)]
            if loop and isinstance(value, ast.Constant) and isinstance(value.value, str):
                return [ast.Constant(ch) for ch in value.value]  # letters of a string
            if loop and isinstance(value, (ast.List, ast.Tuple)):
                return [e for item in value.elts for e in self._match(target, item, name)]
            if isinstance(value, ast.Tuple):
                return [e for t, v in zip(target.elts, value.elts) for e in self._match(t, v, name)]
            if isinstance(value, ast.Call) and getattr(value.func, "attr", "") in ("items", "enumerate"):
                return []
        return []

    def strings(self, expr, depth=0):
        """The string constants that can reach ``expr``'s value."""
        if depth > 6:
            return []
        found = []
        # A format's spec (:g) and a subscript's index (fields[name]) do not reach the text.
        skip = {id(n) for node in ast.walk(expr) if isinstance(node, ast.FormattedValue) and node.format_spec
                for n in ast.walk(node.format_spec)}
        skip |= {id(n) for node in ast.walk(expr) if isinstance(node, ast.Subscript) for n in ast.walk(node.slice)}
        for node in ast.walk(expr):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
            elif isinstance(node, ast.Name):
                scope = self.scope(node)
                for value in self.bindings(node.id, scope):
                    found += self.strings(value, depth + 1) if value is not expr else []
                if isinstance(scope, ast.FunctionDef):
                    found += self._from_callers(scope, node.id, depth)
        return found

    def _from_callers(self, function, name, depth):
        params = [a.arg for a in function.args.args]
        if name not in params:
            return []
        index, found = params.index(name), []
        for tree in self.trees:
            for call in ast.walk(tree):
                if isinstance(call, ast.Call) and (getattr(call.func, "id", None) == function.name
                                                   or getattr(call.func, "attr", None) == function.name):
                    args = [a for a in call.args if not isinstance(a, ast.Starred)]
                    if index < len(args):
                        found += self.strings(args[index], depth + 1)
                    found += [s for k in call.keywords if k.arg == name for s in self.strings(k.value, depth + 1)]
        return found

    def drawn(self):
        """Every string constant that reaches a text-drawing call or argument."""
        found = []
        for tree in self.trees:
            for call in ast.walk(tree):
                if not isinstance(call, ast.Call):
                    continue
                if getattr(call.func, "attr", None) in TEXT_CALLS:
                    text_args = call.args[2:3] if call.func.attr in ("text", "figtext") else call.args[:1]
                    for arg in text_args:
                        found += self.strings(arg)
                for keyword in call.keywords:
                    if keyword.arg in TEXT_KEYWORDS:
                        found += self.strings(keyword.value)
        return found


def prose(text):
    """The English words of a figure text, outside math and code names.

    >>> prose("$S_{a,b}X$"), prose("K[0, 1]"), prose("3x3"), prose("input pixel"), prose("F.conv2d")
    ([], [], [], ['input', 'pixel'], [])
    >>> prose("corr2d(X, K)"), prose("Y_max[0, 1] = 4"), prose("SOBEL_X"), prose("stride (3, 4)")
    ([], [], [], ['stride'])
    """
    return WORD.findall(CODE.sub(" ", MATH.sub(" ", text)))


def figure_prose(source, allowed=()):
    """``{text: its words}`` for each figure text of a chapter with English words, but code names
    listed in ``allowed``."""
    found = {}
    for text in _Chapter(source).drawn():
        words = [w for w in prose(text) if not any(w in name for name in allowed)]
        if words:
            found[text] = words
    return found
