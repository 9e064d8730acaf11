"""YAML manifests: one resource, a list, or several ``---`` documents; and dumps back."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from routr.models.errors import FieldProblem, ManifestError, problems
from routr.models.resources import HIDE_SECRETS, KIND_CLASSES, KINDS, Resource, kind_of

_NUMERIC_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps number-looking scalars as written (``0123`` stays ``"0123"``).

    YAML 1.1 turns ``secret: 0123`` into 83 and ``username: yes`` into True; pydantic's lax
    mode still turns ``"5060"`` into an int where a field wants one.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _NUMERIC_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _validation_error(loc: tuple[int | str, ...], kind: str, message: str) -> ValidationError:
    detail = InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)
    return ValidationError.from_exception_data("Resource", [detail])


def parse_resource(data: Any, kind: str | None = None) -> Resource:
    """Validate one resource mapping. ``kind`` is the expected kind (a file's or a URL's).

    Raises ``ValidationError``; turn it into lines with ``routr.models.errors.problems``.
    """
    if not isinstance(data, Mapping):
        raise _validation_error((), "not_mapping", "expected a mapping (one resource)")
    given = data.get("kind")
    if given is None and kind is None:
        raise _validation_error(("kind",), "missing", "required")
    try:
        canonical = kind_of(str(given)) if given is not None else kind_of(str(kind))
    except KeyError:
        raise _validation_error(
            ("kind",), "unknown_kind", f"must be one of {', '.join(KINDS)}"
        ) from None
    if kind is not None and canonical != kind_of(kind):
        raise _validation_error(("kind",), "wrong_kind", f"must be {kind_of(kind)} here")
    return KIND_CLASSES[canonical].model_validate({**data, "kind": canonical})


def _line_of(node: yaml.Node, loc: tuple[int | str, ...]) -> int:
    """1-based line of the deepest node of ``loc`` that exists in the YAML tree."""
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _documents(text: str, source: str) -> list[yaml.Node]:
    try:
        return [n for n in yaml.compose_all(text, Loader=_Loader) if n is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise ManifestError(source, [FieldProblem("", f"invalid YAML: {problem}")], line) from None


def _construct(node: yaml.Node) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_manifest(text: str, source: str = "<manifest>", kind: str | None = None) -> list[Resource]:
    """Every resource of a YAML text. Raises ``ManifestError`` naming line, path and problem."""
    items: list[tuple[yaml.Node, tuple[int | str, ...]]] = []
    for doc in _documents(text, source):
        if isinstance(doc, yaml.SequenceNode):
            items.extend((node, (i,)) for i, node in enumerate(doc.value))
        else:
            items.append((doc, ()))
    many = len(items) > 1 or any(prefix for _, prefix in items)
    resources: list[Resource] = []
    found: list[FieldProblem] = []
    first_line: int | None = None
    for position, (node, _) in enumerate(items):
        try:
            resources.append(parse_resource(_construct(node), kind))
        except ValidationError as exc:
            where = (position,) if many else ()
            found.extend(problems(exc, where))
            if first_line is None:
                first_line = _line_of(node, tuple(exc.errors()[0]["loc"]))
    if found:
        raise ManifestError(source, found, first_line)
    return resources


def resource_to_dict(
    resource: Resource, *, secrets: bool = True, defaults: bool = True
) -> dict[str, Any]:
    """JSON-ready dict. ``secrets=False`` for API output; ``defaults=False`` keeps files short."""
    body = resource.model_dump(
        mode="json",
        exclude_none=True,
        exclude_unset=not defaults,
        exclude={"apiVersion", "kind"},
        context={HIDE_SECRETS: not secrets},
    )
    return {"apiVersion": resource.apiVersion, "kind": resource.kind, **body}


def public_dict(resource: Resource) -> dict[str, Any]:
    """What the API returns: every field with its default, no secrets."""
    return resource_to_dict(resource, secrets=False)


def dump_manifest(resources: Iterable[Resource], *, secrets: bool = True) -> str:
    """A YAML list that ``load_manifest`` reads back to the same resources."""
    data = [resource_to_dict(r, secrets=secrets, defaults=False) for r in resources]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def keep_secrets(data: Mapping[str, Any], previous: Resource) -> dict[str, Any]:
    """``data`` (an update without secrets, e.g. ``rctl get -o yaml`` output) with the
    previous resource's secret filled in where it was left out."""
    out = copy.deepcopy(dict(data))
    old_creds = getattr(previous.spec, "credentials", None)
    spec = out.get("spec")
    new_creds = spec.get("credentials") if isinstance(spec, dict) else None
    if old_creds is not None and isinstance(new_creds, dict) and "secret" not in new_creds:
        new_creds["secret"] = old_creds.secret
    return out


__all__ = [
    "dump_manifest",
    "keep_secrets",
    "load_manifest",
    "parse_resource",
    "public_dict",
    "resource_to_dict",
]
