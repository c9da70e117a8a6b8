"""A small Amazon States Language checker and interpreter for the stack's two state machines.

The checker holds what Step Functions' own validation would refuse: unknown state types, a
Next/Default/Catch target that is not a state of the same scope, a non-terminal state without
Next or End, an unreachable state, a Map without a valid ItemProcessor. The interpreter runs the
subset the definitions use (Task, Choice, Wait, Pass, Map, Succeed, Fail; JSONPath `$.a.b` and
`$$.` context paths; States.Format and States.StringToJson), with Wait taking no time, so tests
can drive a definition with fake task results. Semantics follow the ASL specification
(states-language.net): Parameters/ItemSelector `.$` keys, ResultSelector, ResultPath, OutputPath.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

STATE_TYPES = {"Task", "Choice", "Wait", "Pass", "Map", "Parallel", "Succeed", "Fail"}
TERMINAL = {"Succeed", "Fail"}
WAIT_FIELDS = {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"}
CHOICE_OPERATORS = {"And", "Or", "Not", "StringEquals", "StringMatches", "NumericLessThan",
                    "NumericEquals", "NumericGreaterThanEquals", "BooleanEquals", "IsPresent"}


def _choice_targets(state: Mapping[str, Any]) -> Iterator[str]:
    for rule in state.get("Choices", []):
        yield rule["Next"]
    if "Default" in state:
        yield state["Default"]


def _targets(state: Mapping[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if state["Type"] == "Choice":
        yield from _choice_targets(state)
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def _check_rule(rule: Mapping[str, Any], where: str) -> list[str]:
    errors = []
    ops = set(rule) & CHOICE_OPERATORS
    if len(ops) != 1:
        errors.append(f"{where}: a choice rule needs exactly one operator, has {sorted(ops)}")
    for op in ops & {"And", "Or"}:
        for sub in rule[op]:
            errors += _check_rule(sub, where)
    if ops - {"And", "Or", "Not"} and "Variable" not in rule:
        errors.append(f"{where}: a comparison needs a Variable")
    return errors


def check(definition: Mapping[str, Any], where: str = "") -> list[str]:
    """Every problem found in `definition` (a machine, or a Map's ItemProcessor); [] when valid."""
    errors: list[str] = []
    states = definition.get("States")
    if not isinstance(states, dict) or not states:
        return [f"{where or 'machine'}: no States"]
    start = definition.get("StartAt")
    if start not in states:
        errors.append(f"{where or 'machine'}: StartAt {start!r} is not a state")
    for name, state in states.items():
        at = f"{where}{name}"
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            errors.append(f"{at}: unknown Type {kind!r}")
            continue
        for target in _targets(state):
            if target not in states:
                errors.append(f"{at}: target {target!r} is not a state of this scope")
        if kind in TERMINAL or kind == "Choice":
            if "Next" in state or "End" in state:
                errors.append(f"{at}: a {kind} state takes neither Next nor End")
        elif ("Next" in state) == bool(state.get("End")):
            errors.append(f"{at}: needs exactly one of Next or End: true")
        if kind == "Task" and not str(state.get("Resource", "")).startswith("arn:"):
            errors.append(f"{at}: a Task needs a Resource ARN")
        if kind == "Wait" and len(set(state) & WAIT_FIELDS) != 1:
            errors.append(f"{at}: a Wait needs exactly one of {sorted(WAIT_FIELDS)}")
        if kind == "Choice":
            if not state.get("Choices"):
                errors.append(f"{at}: a Choice needs Choices")
            for rule in state.get("Choices", []):
                errors += _check_rule(rule, at)
        if kind == "Map":
            proc = state.get("ItemProcessor")
            if not isinstance(proc, dict):
                errors.append(f"{at}: a Map needs an ItemProcessor")
            else:
                mode = proc.get("ProcessorConfig", {}).get("Mode", "INLINE")
                if mode not in ("INLINE", "DISTRIBUTED"):
                    errors.append(f"{at}: unknown ProcessorConfig Mode {mode!r}")
                errors += check(proc, f"{at}/")
            if not isinstance(state.get("MaxConcurrency", 0), int):
                errors.append(f"{at}: MaxConcurrency must be an integer")
        for retrier in state.get("Retry", []):
            if not retrier.get("ErrorEquals"):
                errors.append(f"{at}: a Retry needs ErrorEquals")
    reached, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in reached or name not in states:
            continue
        reached.add(name)
        todo.extend(_targets(states[name]))
    errors += [f"{where}{name}: unreachable" for name in states if name not in reached]
    return errors


def placeholders(definition: Mapping[str, Any]) -> set[str]:
    """The ${Name} substitutions a definition uses."""
    return set(re.findall(r"\$\{(\w+)\}", json.dumps(definition)))


# ---- Interpreter -------------------------------------------------------------------------------


class TaskFailed(Exception):
    """What a fake task raises: ASL error name and cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


Handler = Callable[[str, dict[str, Any]], Any]  # (resource or function placeholder, payload)


def get_path(data: Any, path: str, context: Mapping[str, Any]) -> Any:
    """The value at `$.a.b` in `data` or `$$.a.b` in the context (KeyError if absent)."""
    root: Any = context if path.startswith("$$") else data
    rest = path[2:] if path.startswith("$$") else path[1:]
    for part in filter(None, rest.split(".")):
        root = root[part]
    return root


def _set_path(data: Any, path: str | None, value: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return value
    out = json.loads(json.dumps(data))
    node = out
    parts = path[2:].split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _intrinsic(expr: str, data: Any, context: Mapping[str, Any]) -> Any:
    m = re.fullmatch(r"States\.Format\('([^']*)',\s*(\$[\w.$]*)\)", expr)
    if m:
        return m.group(1).replace("{}", str(get_path(data, m.group(2), context)), 1)
    m = re.fullmatch(r"States\.StringToJson\((\$[\w.$]*)\)", expr)
    if m:
        return json.loads(get_path(data, m.group(1), context))
    if expr.startswith("$"):
        return get_path(data, expr, context)
    raise ValueError(f"unsupported expression {expr!r}")


def resolve(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    """A Parameters / ItemSelector / ResultSelector template filled from `data`."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _intrinsic(value, data, context)
            else:
                out[key] = resolve(value, data, context)
        return out
    if isinstance(template, list):
        return [resolve(v, data, context) for v in template]
    return template


def _rule(rule: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> bool:
    if "And" in rule:
        return all(_rule(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(_rule(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not _rule(rule["Not"], data, context)
    try:
        value = get_path(data, rule["Variable"], context)
    except (KeyError, TypeError):
        return rule.get("IsPresent") is False
    if "IsPresent" in rule:
        return bool(rule["IsPresent"])
    if "StringEquals" in rule:
        return value == rule["StringEquals"]
    if "BooleanEquals" in rule:
        return value is rule["BooleanEquals"]
    if "NumericLessThan" in rule:
        return isinstance(value, int | float) and value < rule["NumericLessThan"]
    raise ValueError(f"unsupported rule {rule}")


def _matches(error: str, names: list[str]) -> bool:
    return "States.ALL" in names or error in names


def run(definition: Mapping[str, Any], data: Any, handler: Handler, *,
        context: dict[str, Any] | None = None, trace: list[str] | None = None,
        max_steps: int = 10_000) -> tuple[str, Any]:
    """Run `definition` on `data`: (Succeed | Fail | End, output); `trace` gets state names."""
    ctx = context if context is not None else {"Execution": {"Id": "exec-1", "Name": "exec-1"}}
    states = definition["States"]
    name = definition["StartAt"]
    for _ in range(max_steps):
        state = states[name]
        if trace is not None:
            trace.append(name)
        kind = state["Type"]
        if kind == "Succeed":
            return "Succeed", data
        if kind == "Fail":
            return "Fail", {"Error": state.get("Error"), "Cause": state.get("Cause")}
        if kind == "Choice":
            name = next((r["Next"] for r in state["Choices"] if _rule(r, data, ctx)),
                        state.get("Default"))
            if name is None:
                return "Fail", {"Error": "States.NoChoiceMatched"}
            continue
        if kind == "Wait":
            result = data
        elif kind == "Pass":
            result = resolve(state["Parameters"], data, ctx) if "Parameters" in state else data
        elif kind == "Map":
            items = get_path(data, state.get("ItemsPath", "$"), ctx)
            result = []
            for index, item in enumerate(items):
                item_ctx = {**ctx, "Map": {"Item": {"Value": item, "Index": index}}}
                one = resolve(state["ItemSelector"], data, item_ctx) if "ItemSelector" in state \
                    else item
                end, out = run(state["ItemProcessor"], one, handler, context=item_ctx,
                               trace=trace, max_steps=max_steps)
                if end == "Fail":
                    return "Fail", out
                result.append(out)
        elif kind == "Task":
            task_ctx = {**ctx, "Task": {"Token": f"token-{name}"}}
            params = resolve(state.get("Parameters", {}), data, task_ctx)
            try:
                result = handler(state["Resource"], params)
            except TaskFailed as e:
                catcher = next((c for c in state.get("Catch", [])
                                if _matches(e.error, c["ErrorEquals"])), None)
                if catcher is None:
                    return "Fail", {"Error": e.error, "Cause": e.cause}
                data = _set_path(data, catcher.get("ResultPath", "$"),
                                 {"Error": e.error, "Cause": e.cause})
                name = catcher["Next"]
                continue
            if "ResultSelector" in state:
                result = resolve(state["ResultSelector"], result, task_ctx)
        else:
            raise ValueError(f"unsupported state type {kind}")
        data = _set_path(data, state.get("ResultPath", "$"), result)
        if "OutputPath" in state:
            data = get_path(data, state["OutputPath"], ctx)
        if state.get("End"):
            return "End", data
        name = state["Next"]
    raise RuntimeError("state machine did not finish")
