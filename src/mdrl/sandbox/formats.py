"""Test formats the sandbox runs, and how each becomes per-case results.

- `AssertTests`: test code whose `assert` statements are the cases: a LeetCode/HumanEval
  `check(candidate)` function plus its call, an MBPP assert list. Every assert the code executes is
  one case (an assert in a loop is one case per iteration), so proportional reward is exact.
  The asserts are rewritten (with `ast`, in the caller) into calls to the case hooks of the trusted
  test process, which runs the test code and evaluates each assert itself; the program runs in
  another process and is only called. `AssertionError` replaced by the program, `sys.exit(0)`,
  a printed "OK" or an object equal to everything cannot make a case pass.
- `StdioTests`: one case per input; the program runs afresh on each input and its output is
  compared here, after dropping trailing white space on each line and white space at both ends of
  the whole output (TACO's expected outputs carry stray leading blank lines and spaces). Expected
  outputs never enter the sandbox.
- `PytestTests`: a pytest-style file importing the program as a module (in the test process,
  a module whose names are the program's, fetched through the call pipe); each test function (and
  each `parametrize` variant) is one case. A small built-in runner, not pytest: fixtures other than
  parametrize are not provided (the case fails with "unsupported fixture").
"""

from __future__ import annotations

import ast
import builtins
import functools
import marshal
import re
import symtable
import sys
from dataclasses import dataclass, field
from typing import NamedTuple, Union

#: LeetCodeDataset's import prelude (its `prompt` column for test problems), plus the helpers
#: its tests call. LeetCode solutions assume it: without it most references fail to run.
LEETCODE_PRELUDE = '''\
from typing import *
from functools import *
from collections import *
from itertools import *
from heapq import *
from bisect import *
from string import *
from operator import *
from math import *
import math
import datetime
import collections
import heapq
import bisect
import itertools
import functools
import string
import re
import random
import operator
import sys
from collections import deque
from sortedcontainers import SortedList, SortedDict, SortedSet
inf = float('inf')


class ListNode:
    def __init__(self, val=0, next=None):
        self.val = val
        self.next = next


def list_node(values: list):
    if not values:
        return None
    head = ListNode(values[0])
    p = head
    for val in values[1:]:
        node = ListNode(val)
        p.next = node
        p = node
    return head


def is_same_list(p1, p2):
    if p1 is None and p2 is None:
        return True
    if not p1 or not p2:
        return False
    return p1.val == p2.val and is_same_list(p1.next, p2.next)


class TreeNode:
    def __init__(self, val=0, left=None, right=None):
        self.val = val
        self.left = left
        self.right = right


def tree_node(values: list):
    if not values:
        return None
    root = TreeNode(values[0])
    i = 1
    queue = deque()
    queue.append(root)
    while queue:
        node = queue.popleft()
        if i < len(values) and values[i] is not None:
            node.left = TreeNode(values[i])
            queue.append(node.left)
        i += 1
        if i < len(values) and values[i] is not None:
            node.right = TreeNode(values[i])
            queue.append(node.right)
        i += 1
    return root


def is_same_tree(p, q):
    if not p and not q:
        return True
    elif not p or not q:
        return False
    elif p.val != q.val:
        return False
    else:
        return is_same_tree(p.left, q.left) and is_same_tree(p.right, q.right)
'''


class MalformedTestsError(ValueError):
    """Test code that cannot run at all (syntax error, no test case): a data problem."""


@dataclass(frozen=True)
class AssertTests:
    """Test code whose executed `assert` statements are the cases."""

    code: str = field(metadata={"help": "Python test code; runs after the program, in its namespace."})
    prelude: str = field(default="", metadata={"help": "Code run before the program (imports, helpers)."})
    entry_points: tuple[str, ...] = field(
        default=(), metadata={"help": "Built-in names the program provides (a function under test named "
                                      "`sum`); every other built-in name is the tests' own."})

    @property
    def mode(self) -> str:
        return "asserts"


@dataclass(frozen=True)
class StdioTests:
    """One case per stdin input; output compared after stripping trailing white space."""

    inputs: tuple[str, ...] = field(metadata={"help": "stdin for each case."})
    outputs: tuple[str, ...] = field(metadata={"help": "Expected stdout for each case."})

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.outputs):
            raise MalformedTestsError(f"{len(self.inputs)} inputs but {len(self.outputs)} outputs")
        if not self.inputs:
            raise MalformedTestsError("no stdin/stdout cases")
        for value in (*self.inputs, *self.outputs):
            if not isinstance(value, str):
                raise MalformedTestsError(f"stdin/stdout cases must be strings, got {type(value).__name__}")

    @property
    def mode(self) -> str:
        return "stdio"


@dataclass(frozen=True)
class PytestTests:
    """A pytest-style test file; the program is importable as `module`."""

    code: str = field(metadata={"help": "The test file's source."})
    module: str = field(default="solution", metadata={"help": "Module name the tests import."})
    prelude: str = field(default="", metadata={"help": "Code run before the program."})

    @property
    def mode(self) -> str:
        return "pytest"


TestSpec = Union[AssertTests, StdioTests, PytestTests]


def functional_tests(code: str, prelude: str | None = None) -> AssertTests:
    """The study's {"functional": ...} ground truth: test code, usually a check(candidate) function
    and its call. LeetCode-style code (a `def check(...)`) runs after LeetCodeDataset's prelude, as
    its references expect; TACO's call-based code (`_inputs`/`_outputs` loops) runs without it, as
    the prelude's `from math import *` would shadow the built-in three-argument `pow`."""
    if prelude is None:
        prelude = LEETCODE_PRELUDE if re.search(r"^def check\(", code, re.MULTILINE) else ""
    return AssertTests(code=code, prelude=prelude)


def humaneval_tests(test: str, entry_point: str, prompt: str = "") -> AssertTests:
    """HumanEval: a `check(candidate)` function, called on the entry point.

    Three of HumanEval's tests call a helper the prompt defines (`poly`, `encode_cyclic`,
    `encode_shift`) with the expected answer as its argument. With the `prompt`, the tests get the
    prompt's own helpers, so the program's copies are never called (a program could otherwise keep
    what its helper was given and return it)."""
    if not entry_point.isidentifier():
        raise MalformedTestsError(f"entry_point {entry_point!r} is not an identifier")
    return AssertTests(code=f"{prompt_helpers(prompt, entry_point)}{test}\n\ncheck({entry_point})\n",
                       entry_points=(entry_point,))


def prompt_helpers(prompt: str, entry_point: str) -> str:
    """The prompt's imports and definitions other than the entry point, as source ("" if none)."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    body = [node for node in tree.body if getattr(node, "name", None) != entry_point
            and isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign))]
    return ast.unparse(ast.Module(body=body, type_ignores=[])) + "\n\n" if body else ""


def mbpp_tests(test_list: list[str] | tuple[str, ...], setup: str = "") -> AssertTests:
    """MBPP: setup code, then a list of assert statements."""
    return AssertTests(code="\n".join([setup or "", *test_list]) + "\n",
                       entry_points=builtin_entry_points(test_list))


# --- compiling tests (in the trusted process) ---------------------------------------------------

def _hook(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


class _AssertRewriter(ast.NodeTransformer):
    """`assert T, M`  ->  if enter(): try: v = T / except BaseException as e: fail(e) / else: check(v)."""

    def __init__(self) -> None:
        self.sites = 0

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        if isinstance(node.test, ast.Constant) and node.test.value:
            return ast.copy_location(ast.Pass(), node)  # `assert True`: not a test of the program
        self.sites += 1
        value = ast.Name(id="__mdrl_v__", ctx=ast.Store())
        guarded = ast.Try(
            body=[ast.Assign(targets=[value], value=node.test)],
            handlers=[ast.ExceptHandler(
                type=ast.Name(id="BaseException", ctx=ast.Load()), name="__mdrl_e__",
                body=[ast.Expr(_hook("__mdrl_fail__", ast.Name(id="__mdrl_e__", ctx=ast.Load())))],
            )],
            orelse=[ast.Expr(_hook("__mdrl_check__", ast.Name(id="__mdrl_v__", ctx=ast.Load())))],
            finalbody=[],
        )
        out = ast.If(test=_hook("__mdrl_enter__"), body=[guarded], orelse=[])
        return ast.copy_location(out, node)


def _static_count(tree: ast.Module) -> int:
    """Cases the code would run, counted without running it: asserts, times the length of loops
    over literals (TACO's `for i, o in zip(_inputs, _outputs)`). Used only when a run stops early."""
    literals: dict[str, int] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, (ast.List, ast.Tuple)):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    literals[target.id] = len(stmt.value.elts)

    def length(it: ast.expr) -> int | None:
        if isinstance(it, (ast.List, ast.Tuple)):
            return len(it.elts)
        if isinstance(it, ast.Name):
            return literals.get(it.id)
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name):
            sizes = [length(a) for a in it.args]
            if it.func.id == "zip" and sizes and all(s is not None for s in sizes):
                return min(sizes)  # type: ignore[type-var]
            if it.func.id == "enumerate" and sizes and sizes[0] is not None:
                return sizes[0]
            if it.func.id == "range" and len(it.args) == 1 and isinstance(it.args[0], ast.Constant):
                value = it.args[0].value
                return value if isinstance(value, int) else None
        return None

    def count(node: ast.AST, factor: int) -> int:
        if isinstance(node, ast.Assert):
            trivial = isinstance(node.test, ast.Constant) and node.test.value
            return 0 if trivial else factor
        if isinstance(node, ast.For):
            times = length(node.iter) or 1
            return (sum(count(child, factor * times) for child in node.body)
                    + sum(count(child, factor) for child in node.orelse))
        return sum(count(child, factor) for child in ast.iter_child_nodes(node))

    return count(tree, 1)


def _globals_of(code: str) -> tuple[set[str], set[str]]:
    """(global names the code reads in any scope, names it binds at module level)."""
    table = symtable.symtable(code, "<tests>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    reads: set[str] = set()

    def visit(scope: symtable.SymbolTable) -> None:
        module = scope.get_type() == "module"
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and (module or symbol.is_global()):
                reads.add(symbol.get_name())
            if symbol.is_declared_global() and symbol.is_assigned():
                bound.add(symbol.get_name())
        for child in scope.get_children():
            visit(child)

    visit(table)
    return reads, bound


def program_names(code: str, entry_points: tuple[str, ...] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names the program may provide, names of standard-library modules among them).

    The program provides only global names the test code reads but does not bind: its functions,
    classes and globals. Built-in names are the tests' own unless declared an entry point: through a
    program's `zip`, `len` or `isinstance` the tests would hand the program their expected values.
    A module name (MBPP's `sys.getsizeof` relies on the program's `import sys`) is the tests' own
    module unless the program defines a function or class of that name (a function under test
    named `time`): never an object of the program's, which could answer both sides of a comparison."""
    reads, bound = _globals_of(code)
    free = reads - bound
    names = free - (set(dir(builtins)) - set(entry_points))
    return tuple(sorted(names)), tuple(sorted(names & set(sys.stdlib_module_names)))


def builtin_entry_points(test_list) -> tuple[str, ...]:
    """MBPP names its function by its asserts; a few functions are named like built-ins (`sum`).
    A built-in name is the program's only where an assert calls it, leftmost, on literals alone
    (`assert sum(10, 15) == 6`): then no value of the tests' can reach the program through it."""
    found = set()
    for test in test_list:
        try:
            tree = ast.parse(test)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            expr = node.test if isinstance(node, ast.Assert) else None
            while isinstance(expr, (ast.Compare, ast.UnaryOp)):
                expr = expr.left if isinstance(expr, ast.Compare) else expr.operand
            if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name)
                    and expr.func.id in dir(builtins) and all(_literal(a) for a in (*expr.args, *expr.keywords))):
                found.add(expr.func.id)
    return tuple(sorted(found))


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node.value if isinstance(node, ast.keyword) else node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


class CompiledTests(NamedTuple):
    code: bytes  # marshalled, asserts rewritten into case hooks
    static_count: int  # cases counted without running (used when a run stops early)
    program_names: tuple[str, ...]  # names the program provides (`program_names`)
    modules: tuple[str, ...]  # standard-library modules the tests use without importing them


@functools.lru_cache(maxsize=4096)
def compile_asserts(code: str, entry_points: tuple[str, ...] = ()) -> CompiledTests:
    """Rewrite and compile assert-style test code once."""
    try:
        tree = ast.parse(code, filename="<tests>")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise MalformedTestsError(f"test code does not parse: {exc}") from None
    rewriter = _AssertRewriter()
    static = _static_count(tree)
    try:
        names, modules = program_names(code, entry_points)
        tree = ast.fix_missing_locations(rewriter.visit(tree))
        code_obj = compile(tree, "<tests>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise MalformedTestsError(f"test code does not compile: {exc}") from None
    if rewriter.sites == 0:
        raise MalformedTestsError("test code has no assert statements")
    return CompiledTests(marshal.dumps(code_obj), max(static, 1), names, modules)


@functools.lru_cache(maxsize=1024)
def compile_pytest(code: str) -> tuple[bytes, int]:
    try:
        tree = ast.parse(code, filename="<tests>")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise MalformedTestsError(f"test file does not parse: {exc}") from None
    count = 0
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name.startswith("test"):
            count += 1
        elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith("Test"):
            count += sum(1 for s in stmt.body if isinstance(s, ast.FunctionDef) and s.name.startswith("test"))
    if count == 0:
        raise MalformedTestsError("test file defines no test functions")
    return marshal.dumps(compile(tree, "<tests>", "exec", dont_inherit=True)), count
