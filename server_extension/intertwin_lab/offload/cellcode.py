"""What a cell needs from the notebook: the names it reads before (or without) binding them.

Found with the AST, in the order Python runs the statements of the cell's top level (an
assignment's value before its targets, so ``x = x + 1`` needs ``x``); names a function or class
body reads as globals count when the cell never binds them at its top level. Builtins are
left out by the caller (only names the notebook holds are shipped).
"""

from __future__ import annotations

import ast
import symtable


class _TopLevel(ast.NodeVisitor):
    """Names read at the top level before any binding there, and names bound there."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.needed: set[str] = set()

    def _bind(self, name: str) -> None:
        self.bound.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if node.id not in self.bound:
                self.needed.add(node.id)
        else:
            self._bind(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for t in node.targets:
            self.visit(t)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            if node.target.id not in self.bound:
                self.needed.add(node.target.id)
            self._bind(node.target.id)
        else:
            self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self._bind(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def _scope(self, node: ast.AST, name: str | None) -> None:
        # decorators, defaults and bases run now; the body later (see needed_names)
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        args = getattr(node, "args", None)
        if isinstance(args, ast.arguments):
            for default in [*args.defaults, *args.kw_defaults]:
                if default is not None:
                    self.visit(default)
        for b in getattr(node, "bases", []):
            self.visit(b)
        if name:
            self._bind(name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._scope(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node, None)

    def _comprehension(self, node: ast.AST) -> None:
        # the first iterable runs in the cell's scope; the rest is the comprehension's own
        gens = getattr(node, "generators", [])
        if gens:
            self.visit(gens[0].iter)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension


def _globals_of_nested_scopes(table: symtable.SymbolTable) -> set[str]:
    names: set[str] = set()
    for child in table.get_children():
        for sym in child.get_symbols():
            if sym.is_referenced() and sym.is_global():
                names.add(sym.get_name())
        names |= _globals_of_nested_scopes(child)
    return names


def needed_names(source: str) -> set[str]:
    """The names ``source`` reads that it does not bind first. SyntaxError as Python raises
    it."""
    tree = ast.parse(source)
    top = _TopLevel()
    for stmt in tree.body:
        top.visit(stmt)
    nested = _globals_of_nested_scopes(symtable.symtable(source, "<cell>", "exec"))
    return top.needed | (nested - top.bound)
