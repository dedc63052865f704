"""Breaking-change detection between two OpenAPI documents, black-box: an older one (a baseline a client was built
against) and the one a target serves now.

What breaks a client built against the baseline:
- an operation removed;
- a new required input (parameter, body, body property), a parameter or body media type removed, or a request
  schema narrowed — a type or enum value no longer accepted, a tighter bound, a property no longer accepted;
- a response field removed or made optional, a response type or enum widened (a value the client never saw), a
  response media type removed;
- a documented status removed, or a new success status (a client that expects 200 gets 202).
What does not (reported as additive): new operations, optional inputs, response fields, error statuses, wider
request schemas, and operations newly marked deprecated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Document = dict[str, Any]
Schema = dict[str, Any]
Direction = Literal["request", "response"]
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
MAX_DEPTH = 12
_BOUNDS_TIGHTER_WHEN_LOWER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_BOUNDS_TIGHTER_WHEN_HIGHER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")


@dataclass(frozen=True)
class Change:
    breaking: bool
    where: str
    what: str

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'additive'}: {self.where}: {self.what}"


def diff(old: Document, new: Document) -> list[Change]:
    """Every difference that matters to a client, breaking first."""
    changes: list[Change] = []
    old_ops, new_ops = _operations(old), _operations(new)
    for key in sorted(old_ops.keys() - new_ops.keys()):
        changes.append(Change(True, key, "operation removed"))
    for key in sorted(new_ops.keys() - old_ops.keys()):
        changes.append(Change(False, key, "operation added"))
    for key in sorted(old_ops.keys() & new_ops.keys()):
        _Comparison(old, new, key, changes).operation(old_ops[key], new_ops[key])
    return sorted(changes, key=lambda c: (not c.breaking, c.where, c.what))


def breaking(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.breaking]


def _operations(document: Document) -> dict[str, Document]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


class _Comparison:
    def __init__(self, old: Document, new: Document, where: str, changes: list[Change]) -> None:
        self.old, self.new, self.where, self.changes = old, new, where, changes

    def add(self, is_breaking: bool, what: str) -> None:
        self.changes.append(Change(is_breaking, self.where, what))

    # -- operations ------------------------------------------------------------------------------------------
    def operation(self, old: Document, new: Document) -> None:
        if new.get("deprecated") and not old.get("deprecated"):
            self.add(False, "operation deprecated")
        self.parameters(old.get("parameters", []), new.get("parameters", []))
        self.request_body(old.get("requestBody"), new.get("requestBody"))
        self.responses(old.get("responses", {}), new.get("responses", {}))

    def parameters(self, old: list[Document], new: list[Document]) -> None:
        olds = {(p.get("in"), p.get("name")): p for p in (self._resolve(self.old, p) for p in old)}
        news = {(p.get("in"), p.get("name")): p for p in (self._resolve(self.new, p) for p in new)}
        for where, name in sorted(olds.keys() - news.keys(), key=str):
            self.add(True, f"{where} parameter `{name}` removed")
        for key in sorted(news.keys() - olds.keys(), key=str):
            required = bool(news[key].get("required"))
            self.add(required, f"{'required' if required else 'optional'} {key[0]} parameter `{key[1]}` added")
        for key in sorted(olds.keys() & news.keys(), key=str):
            if news[key].get("required") and not olds[key].get("required"):
                self.add(True, f"{key[0]} parameter `{key[1]}` became required")
            self.schema(
                olds[key].get("schema", {}),
                news[key].get("schema", {}),
                "request",
                f"{key[0]} parameter `{key[1]}`",
            )

    def request_body(self, old: Document | None, new: Document | None) -> None:
        if new is None:
            if old is not None:
                self.add(False, "request body no longer read")
            return
        new = self._resolve(self.new, new)
        if old is None:
            self.add(bool(new.get("required")), "request body added")
            return
        old = self._resolve(self.old, old)
        if new.get("required") and not old.get("required"):
            self.add(True, "request body became required")
        old_media, new_media = old.get("content", {}), new.get("content", {})
        for media in sorted(old_media.keys() - new_media.keys()):
            self.add(True, f"request media type {media} no longer accepted")
        for media in sorted(new_media.keys() - old_media.keys()):
            self.add(False, f"request media type {media} accepted")
        for media in sorted(old_media.keys() & new_media.keys()):
            self.schema(
                old_media[media].get("schema", {}), new_media[media].get("schema", {}), "request", f"body ({media})"
            )

    def responses(self, old: Document, new: Document) -> None:
        for status in sorted(old.keys() - new.keys()):
            self.add(True, f"status {status} no longer documented")
        for status in sorted(new.keys() - old.keys()):
            success = status.startswith("2") and any(s.startswith("2") for s in old)
            self.add(success, f"{'new success' if success else 'new'} status {status}")
        for status in sorted(old.keys() & new.keys()):
            old_response = self._resolve(self.old, old[status])
            new_response = self._resolve(self.new, new[status])
            old_media, new_media = old_response.get("content", {}), new_response.get("content", {})
            for media in sorted(old_media.keys() - new_media.keys()):
                self.add(True, f"response {status}: media type {media} no longer sent")
            for media in sorted(old_media.keys() & new_media.keys()):
                self.schema(
                    old_media[media].get("schema", {}),
                    new_media[media].get("schema", {}),
                    "response",
                    f"response {status} ({media})",
                )

    # -- schemas ---------------------------------------------------------------------------------------------
    def schema(self, old: Schema, new: Schema, direction: Direction, at: str, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            return
        old, new = self._resolve(self.old, old), self._resolve(self.new, new)
        # In a request, accepting less breaks the client; in a response, sending more does.
        narrowed_breaks = direction == "request"
        old_types, new_types = _types(self.old, old), _types(self.new, new)
        if old_types is not None and (new_types is None or not new_types <= old_types):
            wider = sorted((new_types or {"any"}) - (old_types or set()))
            self.add(not narrowed_breaks, f"{at}: type widened by {', '.join(wider)}")
        if new_types is not None and (old_types is None or not old_types <= new_types):
            lost = sorted((old_types or {"any"}) - new_types)
            self.add(narrowed_breaks, f"{at}: type narrowed, no longer {', '.join(lost)}")
        self._enum(old, new, narrowed_breaks, at)
        if narrowed_breaks:
            self._bounds(old, new, at)
        self._properties(old, new, direction, at, depth)
        old_items, new_items = _branch(self.old, old, "items"), _branch(self.new, new, "items")
        if old_items is not None and new_items is not None:
            self.schema(old_items, new_items, direction, f"{at}[]", depth + 1)

    def _enum(self, old: Schema, new: Schema, narrowed_breaks: bool, at: str) -> None:
        old_enum, new_enum = _enum(self.old, old), _enum(self.new, new)
        if old_enum is None and new_enum is not None:
            self.add(narrowed_breaks, f"{at}: now limited to {sorted(map(str, new_enum))}")
        elif old_enum is not None and new_enum is not None:
            if old_enum - new_enum:
                self.add(narrowed_breaks, f"{at}: values {sorted(map(str, old_enum - new_enum))} removed")
            if new_enum - old_enum:
                self.add(not narrowed_breaks, f"{at}: values {sorted(map(str, new_enum - old_enum))} added")

    def _bounds(self, old: Schema, new: Schema, at: str) -> None:
        for bound in _BOUNDS_TIGHTER_WHEN_LOWER + _BOUNDS_TIGHTER_WHEN_HIGHER:
            before, after = _bound(self.old, old, bound), _bound(self.new, new, bound)
            if not isinstance(after, int | float):
                if isinstance(before, int | float):
                    self.add(False, f"{at}: {bound} {before} lifted")
                continue
            lower_is_tighter = bound in _BOUNDS_TIGHTER_WHEN_LOWER
            if not isinstance(before, int | float) or (after < before if lower_is_tighter else after > before):
                self.add(True, f"{at}: {bound} tightened to {after}")
            elif after != before:
                self.add(False, f"{at}: {bound} relaxed to {after}")
        if new.get("pattern") and new.get("pattern") != old.get("pattern"):
            self.add(True, f"{at}: pattern changed to {new['pattern']!r}")

    def _properties(self, old: Schema, new: Schema, direction: Direction, at: str, depth: int) -> None:
        old_obj, new_obj = _object(self.old, old), _object(self.new, new)
        if old_obj is None or new_obj is None:
            return
        old_props, new_props = old_obj.get("properties", {}), new_obj.get("properties", {})
        old_required, new_required = set(old_obj.get("required", [])), set(new_obj.get("required", []))
        for name in sorted(old_props.keys() - new_props.keys()):
            if direction == "response":
                self.add(True, f"{at}: field `{name}` removed")
            else:
                closed = new_obj.get("additionalProperties") is False
                self.add(closed, f"{at}: field `{name}` no longer {'accepted' if closed else 'read'}")
        for name in sorted(new_props.keys() - old_props.keys()):
            required = direction == "request" and name in new_required
            self.add(required, f"{at}: {'required' if required else 'optional'} field `{name}` added")
        for name in sorted(old_props.keys() & new_props.keys()):
            if direction == "request" and name in new_required and name not in old_required:
                self.add(True, f"{at}: field `{name}` became required")
            if direction == "response" and name in old_required and name not in new_required:
                self.add(True, f"{at}: field `{name}` may now be missing")
            self.schema(old_props[name], new_props[name], direction, f"{at}.{name}", depth + 1)

    def _resolve(self, document: Document, node: Schema) -> Schema:
        return _resolve(document, node)


def _resolve(document: Document, node: Schema) -> Schema:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < MAX_DEPTH:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        node, seen = target, seen + 1
    return node if isinstance(node, dict) else {}


def _branches(document: Document, schema: Schema) -> list[Schema]:
    """The alternatives a schema allows (anyOf/oneOf), resolved; the schema itself when it has none."""
    schema = _resolve(document, schema)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return [schema]
    return [branch for alt in alternatives for branch in _branches(document, alt)]


def _types(document: Document, schema: Schema) -> set[str] | None:
    """The JSON types a schema allows (a `number` also allows an `integer`); None: any."""
    found: set[str] = set()
    for branch in _branches(document, schema):
        kind = branch.get("type")
        if kind is None:
            if "properties" in branch:
                kind = "object"
            elif "enum" in branch or "const" in branch:
                continue
            else:
                return None
        found |= set(kind) if isinstance(kind, list) else {kind}
    if "number" in found:
        found.add("integer")  # a number schema accepts integers too
    return found or None


def _enum(document: Document, schema: Schema) -> set[Any] | None:
    values: set[Any] = set()
    for branch in _branches(document, schema):
        if "enum" in branch:
            values |= {_hashable(v) for v in branch["enum"]}
        elif "const" in branch:
            values.add(_hashable(branch["const"]))
        elif branch.get("type") == "null":
            values.add(None)
        else:
            return None
    return values


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def _bound(document: Document, schema: Schema, bound: str) -> Any:
    values = [b.get(bound) for b in _branches(document, schema) if b.get("type") != "null"]
    present = [v for v in values if v is not None]
    return present[0] if present and len(present) == len(values) else None


def _object(document: Document, schema: Schema) -> Schema | None:
    for branch in _branches(document, schema):
        if branch.get("type") == "object" or "properties" in branch:
            return branch
    return None


def _branch(document: Document, schema: Schema, key: str) -> Schema | None:
    for branch in _branches(document, schema):
        if key in branch and isinstance(branch[key], dict):
            return _resolve(document, branch[key])
    return None
