"""YAML / JSON text -> typed Argo objects, with errors that name the file and field.

Every problem is a LoadError whose message reads `source: where: problem`:
`templates.yaml:3:5: mapping values are not allowed here` for YAML syntax, and
`templates.yaml: spec.metrics[1].count: must be an integer or a string` for a
document that parses but is not a valid AnalysisTemplate / ClusterAnalysisTemplate /
AnalysisRun. Text over the size limit is refused before it is parsed, alias
expansion is bounded so a "billion laughs" document cannot exhaust memory, and
nesting is bounded (MAX_DEPTH) before anything is built: libyaml composes nodes
recursively in C, so 30,000 nested brackets would crash the process, not raise.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from analysisd import AnalysisdError
from analysisd.spec import (
    API_VERSION,
    KINDS,
    AnalysisRun,
    AnalysisTemplate,
    AnyObject,
    ClusterAnalysisTemplate,
)

DEFAULT_MAX_BYTES = 1 << 20
# Nodes a document may expand to through aliases; real templates have hundreds.
MAX_EXPANDED_NODES = 100_000
# Mappings and sequences inside one another; real templates nest about a dozen deep.
MAX_DEPTH = 100
# Integers longer than this stay text (no field holds one; int() of 4,300+ digits fails).
MAX_INT_DIGITS = 100
FRAGMENT_SUFFIX = ".fragment.yaml"

_MODELS: dict[str, type[BaseModel]] = {
    "AnalysisTemplate": AnalysisTemplate,
    "ClusterAnalysisTemplate": ClusterAnalysisTemplate,
    "AnalysisRun": AnalysisRun,
}


class LoadError(AnalysisdError, ValueError):
    """Input that is not a loadable Argo object; the message names file and field."""


def _size_error(source: str, size: int, max_bytes: int) -> LoadError:
    return LoadError(
        f"{source}: document is {size} bytes, over the {max_bytes}-byte limit "
        "(not parsed; raise the limit if this is intended)"
    )


# ---- YAML with bounded alias expansion ----


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int], limit: int) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise ValueError("recursive alias (a node that contains itself)")
    active.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo, active, limit)
            if size > limit:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo, active, limit)
            size += _expanded_size(v, memo, active, limit)
            if size > limit:
                break
    active.discard(key)
    memo[key] = size
    return size


# libyaml's parser when PyYAML was built with it (about ten times faster), else pure Python.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

if _BaseLoader is not yaml.SafeLoader:

    class _Composing(yaml.composer.Composer, _BaseLoader):  # type: ignore[valid-type,misc]
        """libyaml's events, composed into nodes in Python.

        libyaml's own composer builds a whole document in one C call that holds the
        GIL: parsing a 1 MiB body in a worker thread then froze the event loop for
        half a second at a time. Composed here, one event per C call, the thread
        yields the GIL like any Python code, at no cost in speed (measured: about
        the same, the C parser doing the lexing either way). Depth is checked before
        composing (_check_yaml_depth), so this recursion is bounded.
        """

        def __init__(self, stream: str) -> None:
            _BaseLoader.__init__(self, stream)
            yaml.composer.Composer.__init__(self)

    _Base: type[yaml.SafeLoader] = _Composing
else:
    _Base = yaml.SafeLoader


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader whose bad scalars (`2020-13-45` read as a date) are marked YAML errors."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value: {exc}", node.start_mark
            ) from None

    def construct_big_int(self, node: yaml.ScalarNode) -> Any:
        text = self.construct_scalar(node)
        if isinstance(text, str) and len(text) > MAX_INT_DIGITS:
            return text  # see _json_int
        return yaml.constructor.SafeConstructor.construct_yaml_int(self, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_big_int)


def _json_int(text: str) -> int | str:
    # Python refuses int() of 4,300+ digits and no field holds even 20; such a number
    # is kept as its text, so the field it sits in reports it ("is not an integer").
    return int(text) if len(text) <= MAX_INT_DIGITS else text


def _too_deep(source: str, max_depth: int) -> LoadError:
    return LoadError(f"{source}: nested more than {max_depth} levels deep; refusing to load it")


def _check_yaml_depth(text: str, source: str, max_depth: int) -> None:
    """Refuse deep nesting from the event stream, before libyaml composes (recursively)."""
    # The C parser itself keeps an explicit stack: reading events is safe at any depth.
    loader = _BaseLoader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise _too_deep(source, max_depth)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def check_depth(data: Any, source: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse parsed data nested deeper than max_depth (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth + 1 > max_depth:
            raise _too_deep(source, max_depth)
        stack.extend((child, depth + 1) for child in children)


def _parse_yaml(text: str, source: str, max_nodes: int) -> list[Any]:
    docs: list[Any] = []
    loader: _Loader | None = None
    try:
        _check_yaml_depth(text, source, MAX_DEPTH)
        # The reader checks the characters as it is built, so this is inside the try.
        loader = _Loader(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            try:
                size = _expanded_size(node, {}, set(), max_nodes)
            except ValueError as exc:
                raise LoadError(f"{source} (document {len(docs) + 1}): {exc}") from None
            if size > max_nodes:
                raise LoadError(
                    f"{source} (document {len(docs) + 1}): aliases expand to more than "
                    f"{max_nodes} nodes (a YAML bomb?); refusing to load it"
                )
            docs.append(loader.construct_document(node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        raise LoadError(f"{where}: {problem}") from None
    except yaml.reader.ReaderError as exc:
        raise LoadError(
            f"{source}: invalid YAML: {exc.reason} (character {exc.position})"
        ) from None
    except yaml.YAMLError as exc:
        raise LoadError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise LoadError(f"{source}: YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return docs


def _parse_json(text: str, source: str) -> list[Any]:
    try:
        data = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise LoadError(f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise LoadError(f"{source}: JSON nested too deeply") from None
    except ValueError as exc:  # a number json cannot represent; not expected
        raise LoadError(f"{source}: invalid JSON: {exc}") from None
    return data if isinstance(data, list) else [data]


def parse_data(
    text: str,
    *,
    source: str = "<input>",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_nodes: int = MAX_EXPANDED_NODES,
) -> list[Any]:
    """The plain documents of a YAML or JSON text, under the size, alias and depth limits."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise _size_error(source, size, max_bytes)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        raw = _parse_json(text, source)
    else:
        raw = _parse_yaml(text, source, max_nodes)
    for doc in raw:
        check_depth(doc, source)
    return raw


# ---- documents -> typed objects ----


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a YAML path: `spec.metrics[1].count`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside `X`, `X | None`, `list[X]`, `dict[str, X]` (None if none)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for inner in typing.get_args(annotation):
        found = _model_in(inner)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The field names (YAML spelling) the model accepts where `loc`'s last part was found."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        current = _model_in(field.annotation) if field is not None else None
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _describe(error: Any, model: type[BaseModel] | None = None) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        loc = error.get("loc", ())
        import difflib  # only to name the field meant (~1 ms of every start-up otherwise)

        known = _fields_at(model, loc) if model is not None and loc else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
        return f"unknown field (did you mean {close[0]}?)" if close else "unknown field"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _typed(doc: Any, where: str) -> AnyObject:
    if not isinstance(doc, dict):
        raise LoadError(f"{where}: expected a mapping (an Argo object), got {type(doc).__name__}")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(kind, str) or kind not in _MODELS:
        raise LoadError(
            f"{where}: kind: {kind!r} is not one of {', '.join(KINDS)}"
            if kind is not None
            else f"{where}: kind: required field is missing"
        )
    if api_version != API_VERSION:
        raise LoadError(
            f"{where}: apiVersion: {api_version!r} is not {API_VERSION}"
            if api_version is not None
            else f"{where}: apiVersion: required field is missing"
        )
    try:
        obj = _MODELS[kind].model_validate(doc)
    except ValidationError as exc:
        problems = [
            f"{where}: {field_path(e['loc']) or '(document)'}: {_describe(e, _MODELS[kind])}"
            for e in exc.errors()
        ]
        raise LoadError("\n".join(problems)) from None
    assert isinstance(obj, AnalysisTemplate | ClusterAnalysisTemplate | AnalysisRun)
    return obj


def _expand_lists(docs: list[Any], source: str) -> list[Any]:
    # `kubectl get -o yaml` wraps objects in a List; take its items.
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            items = doc["items"] or []
            if not isinstance(items, list):
                raise LoadError(f"{source}: items: a List's items must be a sequence")
            out.extend(items)
        elif doc is not None:
            out.append(doc)
    return out


def load_documents(
    text: str,
    *,
    source: str = "<input>",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_nodes: int = MAX_EXPANDED_NODES,
) -> list[AnyObject]:
    """Every Argo object in a YAML (multi-document) or JSON text."""
    raw = parse_data(text, source=source, max_bytes=max_bytes, max_nodes=max_nodes)
    return typed_documents(raw, source=source)


def typed_documents(raw: list[Any], *, source: str = "<input>") -> list[AnyObject]:
    """Every Argo object in documents parse_data already read (parse once, type once)."""
    docs = _expand_lists(raw, source)
    if not docs:
        raise LoadError(f"{source}: no documents found")
    many = len(docs) > 1
    return [
        _typed(doc, f"{source} (document {i + 1})" if many else source)
        for i, doc in enumerate(docs)
    ]


def load_fragment(
    text: str, *, source: str, name: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> AnalysisTemplate:
    """A bare template spec body (dryRun, metrics, ...) as an AnalysisTemplate named `name`."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise _size_error(source, size, max_bytes)
    docs = [d for d in _parse_yaml(text, source, MAX_EXPANDED_NODES) if d is not None]
    for doc in docs:
        check_depth(doc, source)
    if len(docs) != 1:
        raise LoadError(f"{source}: a spec fragment must be exactly one document")
    doc = {"apiVersion": API_VERSION, "kind": "AnalysisTemplate"}
    obj = _typed({**doc, "metadata": {"name": name}, "spec": docs[0]}, source)
    assert isinstance(obj, AnalysisTemplate)
    return obj


def is_fragment(path: Path | str) -> bool:
    return str(path).endswith(FRAGMENT_SUFFIX)


def load_file(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[AnyObject]:
    """Every Argo object in a file; `*.fragment.yaml` files are template spec bodies."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as fh:
            # Read one byte past the limit: enough to know, without reading a huge file.
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise LoadError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise _size_error(source, path.stat().st_size, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    if is_fragment(path):
        name = path.name.removesuffix(FRAGMENT_SUFFIX)
        return [load_fragment(text, source=source, name=name, max_bytes=max_bytes)]
    return load_documents(text, source=source, max_bytes=max_bytes)
