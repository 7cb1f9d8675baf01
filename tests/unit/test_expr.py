"""The restricted policy expression language: what it runs and what it refuses."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import pytest

from shared.domain.expressions.expr import (
    FUNCTIONS,
    Expression,
    ExpressionError,
    compile_expression,
)


def run(source: str, **env: Any) -> Any:
    return compile_expression(source).evaluate(env)


# --- refused at compile time ---------------------------------------------------------------

MALICIOUS = [
    ("().__class__.__bases__", "attribute '__bases__' is not allowed"),
    ("x.__class__", "attribute '__class__' is not allowed"),
    ("vars.intent.__dict__", "attribute '__dict__' is not allowed"),
    ("__import__('os')", "'__import__' is not allowed"),
    ("open('/etc/passwd')", "function 'open' is not allowed"),
    ("eval('1')", "function 'eval' is not allowed"),
    ("exec('1')", "function 'exec' is not allowed"),
    ("getattr(x, 'y')", "function 'getattr' is not allowed"),
    ("__builtins__", "name '__builtins__' is not allowed"),
    ("2 ** 999999999", r"'\*\*' is not allowed"),
    ("9 ** 9 ** 9", r"'\*\*' is not allowed"),
    ("(" * 500 + "1" + ")" * 500, "longer than 1000"),
    ("(" * 199 + "1" + ")" * 199, "nested deeper than 32"),
    ("[" * 33 + "]" * 33, "nested deeper than 32"),
    ("len(" * 40 + "x" + ")" * 40, "nested deeper than 32"),
    ("not " * 1000 + "True", "longer than 1000"),
    ("not " * 200 + "True", "nested deeper than 32"),
    ("-" * 900 + "1", "nested deeper than 32"),
    ("[x for x in y]", "comprehensions are not allowed"),
    ("{x: 1 for x in y}", "comprehensions are not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("a[0]", "subscripts"),
    ("f'{x}'", "f-strings are not allowed"),
    ("(y := 1)", "':=' is not allowed"),
    ("len(x, key=1)", "keyword arguments are not allowed"),
    ("len(*x)", "starred arguments are not allowed"),
    ("'" + "a" * 2000 + "'", "longer than 1000"),
    ("'" + "a" * 300 + "'", "string literal longer than 256"),
    ("a.b().c", "allowed only on a name"),
    ("a.b()", "only whitelisted functions"),
    ("(1).real", "allowed only on a name"),
    ("len(x).real", "allowed only on a name"),
    ("x.y.__z", "attribute '__z' is not allowed"),
    ("a if b else c", "conditional expressions are not allowed"),
    ("{'a': 1}", "dict literals are not allowed"),
    ("1 // 2", "'//' is not allowed"),
    ("1 | 2", "bitwise operators are not allowed"),
    ("~1", "bitwise operators are not allowed"),
    ("a is None", "'is' is not allowed"),
    ("b'x'", "bytes literals are not allowed"),
    ("1e13", "number literal outside"),
    ("[" + "1," * 65 + "]", "list literal longer than 64"),
    ("min(" + "1," * 300 + ")", "more than 256 nodes"),
    ("1 +", "syntax error at line 1"),
    ("", "empty"),
]


@pytest.mark.parametrize(("source", "message"), MALICIOUS, ids=lambda v: repr(v)[:40])
def test_malicious_or_unsupported_expressions_are_refused_at_compile_time(
    source: str, message: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(source)


def test_a_string_bomb_is_refused_at_evaluation_without_allocating() -> None:
    bomb = compile_expression("'a' * 1000000000")
    tracemalloc.start()
    try:
        with pytest.raises(ExpressionError, match=r"'\*' needs numbers, got str and int"):
            bomb.evaluate({})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize(
    ("source", "env"),
    [
        ("x * 1000000000", {"x": [0]}),
        ("x + x", {"x": "ab"}),
        ("x + 1", {"x": True}),
        ("-x", {"x": "a"}),
    ],
)
def test_arithmetic_takes_numbers_only(source: str, env: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError, match="needs"):
        compile_expression(source).evaluate(env)


def test_compile_errors_are_expression_errors_and_value_errors() -> None:
    assert issubclass(ExpressionError, ValueError)
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(42)  # type: ignore[arg-type]


# --- what it runs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true", True),
        ("false or null", None),
        ("True and not False", True),
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("3 >= 3 != 4", True),
        ("-2 + 3 * 4 - 10 / 4 + 7 % 3", 8.5),
        ("+1.5", 1.5),
        ("'b' in ['a', 'b']", True),
        ("'c' not in ('a', 'b')", True),
        ("'ell' in 'hello'", True),
        ("'x' == 'x' and 1 != 2", True),
        ("len('abc') + len([1, 2]) + abs(-1)", 6),
        ("min(3, 1, 2) + max([4, 9])", 10),
        ("lower('DeBug')", "debug"),
        ("contains('Kernel Panic', 'PANIC')", True),
        ("contains([1, 2], 3)", False),
        ("contains(null, 'x')", False),
        ("cluster_label_contains('Kernel debugging', 'DEBUG')", True),
        ("cluster_label_contains(null, 'debug')", False),
        ("cosine_similarity([1, 0], [1, 0])", 1.0),
        ("cosine_similarity([1, 0], [0, 1])", 0.0),
        ("cosine_similarity([0, 0], [1, 1])", 0.0),
        ("cosine_similarity(null, [1, 1])", 0.0),
    ],
)
def test_evaluation(source: str, expected: Any) -> None:
    assert run(source) == expected


def test_names_dotted_lookups_and_the_names_read() -> None:
    expr = compile_expression(
        "vars.intent in ['qa_with_docs', 'analysis'] and len(input.context_ids) > 0 "
        "and cosine_similarity(ctx_embedding, adapter_centroid) > 0.6 and true"
    )
    assert isinstance(expr, Expression)
    assert expr.names == {"vars", "input", "ctx_embedding", "adapter_centroid"}
    env = {
        "vars": {"intent": "analysis"},
        "input": {"context_ids": ["c1"]},
        "ctx_embedding": (0.9, 0.1),
        "adapter_centroid": (1.0, 0.0),
    }
    assert expr.truthy(env) is True
    assert expr.truthy({**env, "vars": {"intent": "chat"}}) is False


def test_cluster_label_contains_reads_a_mapping_label() -> None:
    source = "cluster_label_contains(ctx_cluster, 'debug')"
    assert run(source, ctx_cluster={"label": "Debugging kernels"}) is True
    assert run(source, ctx_cluster={"label": None}) is False


def test_boolean_operators_short_circuit() -> None:
    # The right side would fail (unknown name), but is never reached.
    assert run("false and missing") is False
    assert run("true or missing") is True


@pytest.mark.parametrize(
    ("source", "env", "message"),
    [
        ("'a' < 1", {}, "cannot order str and int"),
        ("x < 1", {"x": None}, "cannot order None and int"),
        ("missing", {}, "unknown name 'missing'"),
        ("vars.nope", {"vars": {}}, "no key 'nope'"),
        ("x.y", {"x": 3}, "cannot read 'y' of int"),
        ("1 / 0", {}, "division by zero"),
        ("1 % 0", {}, "division by zero"),
        ("len(1)", {}, r"len\(\) of int"),
        ("len('a', 'b')", {}, r"len\(\) takes 1 argument"),
        ("cosine_similarity([1], [1, 2])", {}, "length 1 and 2"),
        ("cosine_similarity('ab', [1, 2])", {}, "needs vectors"),
        ("contains('abc', 1)", {}, "needs a string"),
        ("1 in 'abc'", {}, "needs a string"),
        ("1 in 5", {}, "'in' needs"),
        ("max([])", {}, "empty"),
        ("min(1, 'a')", {}, "all numbers or all strings"),
        ("lower(1)", {}, r"lower\(\) of int"),
        ("x * x", {"x": 10**300}, "numeric overflow"),
        ("x * 2", {"x": 1e308}, "numeric overflow"),
    ],
)
def test_evaluation_errors_are_expression_errors(
    source: str, env: dict[str, Any], message: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(source).evaluate(env)


def test_truthy_is_a_bool() -> None:
    expr = compile_expression("x")
    assert expr.truthy({"x": [1]}) is True
    assert expr.truthy({"x": ""}) is False


def test_no_python_object_is_reachable_through_lookups() -> None:
    # `a.b` is a key lookup, never getattr: an object attribute is not visible.
    class Thing:
        secret = "s"

    with pytest.raises(ExpressionError, match="cannot read 'secret'"):
        run("t.secret", t=Thing())


def test_the_whitelist() -> None:
    assert {
        "cosine_similarity",
        "contains",
        "len",
        "cluster_label_contains",
        "lower",
        "min",
        "max",
        "abs",
    } == FUNCTIONS


def test_cosine_similarity_is_bounded() -> None:
    value = run("cosine_similarity([1, 2, 3], [2, 4, 6.000001])")
    assert math.isclose(value, 1.0) and value <= 1.0
