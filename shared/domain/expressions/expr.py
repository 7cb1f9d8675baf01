"""A restricted expression language for policy data (a rule's `when`, routing conditions and
actions).

Routing rules and workflow branches carry conditions such as
`cosine_similarity(ctx_embedding, adapter_centroid) > 0.6 and safety_risk != 'high'`. They are
data an LLM may edit, so they are never handed to `eval`: `ast.parse` is used only
as a parser, the tree is checked against an explicit whitelist, and this module interprets it.

Design choices:
- Everything that can be refused statically is refused by `compile_expression`: unknown node
  types, `**` (a tiny source such as `9 ** 9 ** 9` would run for ages), attributes starting with
  `_` or hung on anything but a plain name chain, calls of anything but a whitelisted bare name,
  keyword or starred arguments, oversized literals, and sources that are too long, too deep or
  too big. Deep nesting is caught from the parser (RecursionError, MemoryError) as well.
- What depends on values is refused at evaluation: arithmetic takes numbers only, so
  `'a' * 10**9` or list repetition can never allocate; ordering incompatible types, unknown
  names and missing keys raise `ExpressionError`, never a bare TypeError or KeyError.
- `a.b` is a key lookup in a Mapping, never `getattr`: no Python object is ever reachable.
- `true`, `false` and `null` are literals beside `True`, `False` and `None`, since policies are
  JSON written by people and LLMs (seeded policies write `"when": "true"`).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shared.domain.expressions.errors import ExpressionError
from shared.domain.expressions.functions import FUNCTIONS, call, is_number, kind, member

__all__ = ["FUNCTIONS", "Expression", "ExpressionError", "compile_expression"]

MAX_SOURCE_CHARS = 1000
MAX_DEPTH = 32
MAX_NODES = 256
MAX_STRING_CHARS = 256
MAX_NUMBER = 1e12
MAX_SEQUENCE_ITEMS = 64
# Arithmetic on values from the environment may grow; past this many bits an int is refused.
_MAX_INT_BITS = 1024

_LITERAL_NAMES: Mapping[str, Any] = MappingProxyType({"true": True, "false": False, "null": None})


@dataclass(frozen=True)
class Expression:
    """A compiled expression: the checked tree plus the root names it reads."""

    source: str
    names: frozenset[str]
    _tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        try:
            return _eval(self._tree, env)
        except ExpressionError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:  # a safety net, not the plan
            raise ExpressionError(f"evaluation failed: {exc}") from None

    def truthy(self, env: Mapping[str, Any]) -> bool:
        value = self.evaluate(env)
        try:
            return bool(value)
        except Exception as exc:  # an environment object with a broken __bool__
            raise ExpressionError(f"cannot take the truth of {kind(value)}: {exc}") from None


def compile_expression(source: str) -> Expression:
    """Parse and check `source`; raise ExpressionError saying what is not allowed."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, got {kind(source)}")
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionError(f"expression longer than {MAX_SOURCE_CHARS} characters")
    if not source.strip():
        raise ExpressionError("expression is empty")
    if _bracket_depth(source) > MAX_DEPTH:
        raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at line {exc.lineno}, column {exc.offset}" if exc.lineno else ""
        raise ExpressionError(f"syntax error{where}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise ExpressionError(f"cannot parse expression: {exc}") from None
    names = _check(tree.body)
    return Expression(source=source, names=frozenset(names), _tree=tree.body)


# --- compile-time checks -------------------------------------------------------------------


def _bracket_depth(source: str) -> int:
    """Deepest bracket nesting outside string literals, found before the parser is asked.

    Redundant brackets make no tree nodes, so the tree check cannot see them; refusing them
    here also keeps the parser far from its own limits.
    """
    depth = deepest = 0
    quote: str | None = None
    escaped = False
    for char in source:
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


_BOOL_OPS = (ast.And, ast.Or)
_UNARY_OPS = (ast.Not, ast.USub, ast.UAdd)
_BIN_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod)
_SYMBOLS: Mapping[type, str] = MappingProxyType(
    {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
)
_CMP_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)

# Friendlier words for the refusals people are most likely to meet.
_REFUSED: Mapping[type, str] = MappingProxyType(
    {
        ast.Pow: "'**' is",
        ast.Lambda: "lambda is",
        ast.ListComp: "comprehensions are",
        ast.SetComp: "comprehensions are",
        ast.DictComp: "comprehensions are",
        ast.GeneratorExp: "comprehensions are",
        ast.Subscript: "subscripts such as 'a[0]' are",
        ast.JoinedStr: "f-strings are",
        ast.FormattedValue: "f-strings are",
        ast.NamedExpr: "':=' is",
        ast.Starred: "starred arguments are",
        ast.IfExp: "conditional expressions are",
        ast.Dict: "dict literals are",
        ast.Set: "set literals are",
        ast.Await: "await is",
        ast.Yield: "yield is",
        ast.YieldFrom: "yield is",
        ast.FloorDiv: "'//' is",
        ast.MatMult: "'@' is",
        ast.BitAnd: "bitwise operators are",
        ast.BitOr: "bitwise operators are",
        ast.BitXor: "bitwise operators are",
        ast.LShift: "bitwise operators are",
        ast.RShift: "bitwise operators are",
        ast.Invert: "bitwise operators are",
        ast.Is: "'is' is",
        ast.IsNot: "'is not' is",
    }
)


def _refuse(what: object) -> ExpressionError:
    label = _REFUSED.get(type(what), f"{type(what).__name__} is")
    return ExpressionError(f"{label} not allowed")


def _check(root: ast.expr) -> set[str]:
    """Walk the tree without recursion; return the root variable names read."""
    names: set[str] = set()
    callee_ids: set[int] = set()
    count = 0
    stack: list[tuple[ast.expr, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(f"expression has more than {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")
        for child in _check_node(node, names, callee_ids):
            stack.append((child, depth + 1))
    return names


def _check_node(node: ast.expr, names: set[str], callee_ids: set[int]) -> list[ast.expr]:
    """Check one node; return its children to check next."""
    if isinstance(node, ast.BoolOp):
        if not isinstance(node.op, _BOOL_OPS):
            raise _refuse(node.op)
        return list(node.values)
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _UNARY_OPS):
            raise _refuse(node.op)
        return [node.operand]
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, _BIN_OPS):
            raise _refuse(node.op)
        return [node.left, node.right]
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if not isinstance(op, _CMP_OPS):
                raise _refuse(op)
        return [node.left, *node.comparators]
    if isinstance(node, ast.Constant):
        _check_constant(node.value)
        return []
    if isinstance(node, ast.List | ast.Tuple):
        if len(node.elts) > MAX_SEQUENCE_ITEMS:
            raise ExpressionError(f"list literal longer than {MAX_SEQUENCE_ITEMS} items")
        return list(node.elts)
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise ExpressionError(f"name {node.id!r} is not allowed")
        if id(node) not in callee_ids and node.id not in _LITERAL_NAMES:
            names.add(node.id)
        return []
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise ExpressionError(f"attribute {node.attr!r} is not allowed")
        if not isinstance(node.value, ast.Name | ast.Attribute):
            raise ExpressionError(
                f"attribute {node.attr!r} is allowed only on a name such as 'vars.{node.attr}'"
            )
        return [node.value]
    if isinstance(node, ast.Call):
        return _check_call(node, callee_ids)
    raise _refuse(node)


def _check_call(node: ast.Call, callee_ids: set[int]) -> list[ast.expr]:
    if not isinstance(node.func, ast.Name):
        raise ExpressionError("only whitelisted functions may be called, by their bare name")
    if node.func.id not in FUNCTIONS:
        raise ExpressionError(f"function {node.func.id!r} is not allowed")
    if node.keywords:
        raise ExpressionError("keyword arguments are not allowed")
    callee_ids.add(id(node.func))
    return [node.func, *node.args]


def _check_constant(value: object) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise ExpressionError(f"string literal longer than {MAX_STRING_CHARS} characters")
        return
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise ExpressionError(f"number literal outside ±{MAX_NUMBER:g}")
        return
    raise ExpressionError(f"{type(value).__name__} literals are not allowed")


# --- evaluation ----------------------------------------------------------------------------
# The tree was checked, so each node below is one `_check_node` let through; depth is bounded
# by MAX_DEPTH, so recursion here is safe.


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _LITERAL_NAMES:
            return _LITERAL_NAMES[node.id]
        if node.id not in env:
            raise ExpressionError(f"unknown name {node.id!r}")
        return env[node.id]
    if isinstance(node, ast.Attribute):
        base = _eval(node.value, env)
        if not isinstance(base, Mapping):
            raise ExpressionError(f"cannot read {node.attr!r} of {kind(base)}")
        if node.attr not in base:
            raise ExpressionError(f"no key {node.attr!r}")
        return base[node.attr]
    if isinstance(node, ast.BoolOp):
        return _eval_boolop(node, env)
    if isinstance(node, ast.UnaryOp):
        return _eval_unary(node, env)
    if isinstance(node, ast.BinOp):
        return _arith(node.op, _eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.Compare):
        return _eval_compare(node, env)
    if isinstance(node, ast.List):
        return [_eval(elt, env) for elt in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_eval(elt, env) for elt in node.elts)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return call(node.func.id, [_eval(arg, env) for arg in node.args])
    raise ExpressionError(f"{type(node).__name__} is not allowed")  # unreachable once checked


def _eval_boolop(node: ast.BoolOp, env: Mapping[str, Any]) -> Any:
    """Python's short-circuit semantics: the deciding operand is the value."""
    value: Any = None
    for operand in node.values:
        value = _eval(operand, env)
        if bool(value) == isinstance(node.op, ast.Or):
            return value
    return value


def _eval_unary(node: ast.UnaryOp, env: Mapping[str, Any]) -> Any:
    value = _eval(node.operand, env)
    if isinstance(node.op, ast.Not):
        return not value
    if not is_number(value):
        raise ExpressionError(f"unary minus/plus needs a number, got {kind(value)}")
    return -value if isinstance(node.op, ast.USub) else +value


def _arith(op: ast.operator, left: Any, right: Any) -> Any:
    # Checked before computing: 'a' * 10**9 or [0] * 10**9 never allocates.
    if not (is_number(left) and is_number(right)):
        symbol = _SYMBOLS.get(type(op), type(op).__name__)
        raise ExpressionError(f"'{symbol}' needs numbers, got {kind(left)} and {kind(right)}")
    if isinstance(op, ast.Div | ast.Mod) and right == 0:
        raise ExpressionError("division by zero")
    if isinstance(op, ast.Add):
        result = left + right
    elif isinstance(op, ast.Sub):
        result = left - right
    elif isinstance(op, ast.Mult):
        result = left * right
    elif isinstance(op, ast.Div):
        result = left / right
    else:
        result = left % right
    if isinstance(result, float) and not math.isfinite(result):
        raise ExpressionError("numeric overflow")
    if isinstance(result, int) and result.bit_length() > _MAX_INT_BITS:
        raise ExpressionError("numeric overflow")
    return result


def _eval_compare(node: ast.Compare, env: Mapping[str, Any]) -> bool:
    left = _eval(node.left, env)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _eval(comparator, env)
        if not _compare(op, left, right):
            return False
        left = right
    return True


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(op, ast.Eq):
        return bool(left == right)
    if isinstance(op, ast.NotEq):
        return bool(left != right)
    if isinstance(op, ast.In | ast.NotIn):
        found = member(left, right)
        return found if isinstance(op, ast.In) else not found
    if not _orderable(left, right):
        raise ExpressionError(f"cannot order {kind(left)} and {kind(right)}")
    try:
        if isinstance(op, ast.Lt):
            return bool(left < right)
        if isinstance(op, ast.LtE):
            return bool(left <= right)
        if isinstance(op, ast.Gt):
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        raise ExpressionError(f"cannot order {kind(left)} and {kind(right)}") from None


def _orderable(left: Any, right: Any) -> bool:
    if is_number(left) and is_number(right):
        return True
    if isinstance(left, str) and isinstance(right, str):
        return True
    return isinstance(left, list | tuple) and isinstance(right, list | tuple)
