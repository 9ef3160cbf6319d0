"""Property: lint reports problems for any loadable template; it never raises."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from analysisd.commands.lint import _compiler, lint_objects
from analysisd.spec import AnalysisTemplate

TEXT = st.sampled_from(
    ["", "5m", "x", "{{args.a}}", "{{ args.b }}", "{{env}}", "{{args.a", "}}", "0", "-1", "3"]
)
INTSTR = st.one_of(st.integers(-3, 5), TEXT)
CONDITION = st.sampled_from(
    ["", "result > 1", "result[0] >= {{args.a}}", "result ==", "len(result) == 0", "((", "{{"]
)
PROVIDER = st.dictionaries(
    st.sampled_from(["prometheus", "web", "kayenta", "judge", "nope"]),
    st.one_of(st.none(), st.just({"query": "{{args.a}}"}), st.just("x")),
    max_size=2,
)
METRIC = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "{{args.a}}"])},
    optional={
        "interval": TEXT,
        "initialDelay": TEXT,
        "count": INTSTR,
        "failureLimit": INTSTR,
        "inconclusiveLimit": INTSTR,
        "consecutiveErrorLimit": INTSTR,
        "consecutiveSuccessLimit": INTSTR,
        "successCondition": CONDITION,
        "failureCondition": CONDITION,
        "provider": PROVIDER,
    },
)
SPEC = st.fixed_dictionaries(
    {"metrics": st.lists(METRIC, max_size=3)},
    optional={
        "args": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["a", "b"])}, optional={"value": TEXT}),
            max_size=2,
        ),
        "dryRun": st.lists(st.fixed_dictionaries({"metricName": TEXT}), max_size=2),
        "templates": st.lists(st.fixed_dictionaries({"templateName": TEXT}), max_size=1),
    },
)


@settings(max_examples=300, deadline=None)
@given(SPEC)
def test_lint_never_raises(spec: dict[str, Any]) -> None:
    template = AnalysisTemplate.model_validate({"metadata": {"name": "t"}, "spec": spec})
    problems = lint_objects("t.yaml", [template], compile_expr=_compiler())
    for problem in problems:
        assert str(problem).startswith("t.yaml: spec")
