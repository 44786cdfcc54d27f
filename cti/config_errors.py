"""One clear line for a bad config: pydantic's errors turned into what an admin
reads (``advisors[6] (sofia).topics: unknown key (did you mean 'topic'?)``), and
a YAML loader that refuses a key given twice."""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


def _step(tp: Any, part: Any) -> Any:
    """The type found at `part` (a key or a list index) inside type `tp`, or None."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _step(args[0], part)
    if origin in (Union, types.UnionType):
        return next((t for a in args if (t := _step(a, part)) is not None), None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    if origin in (list, tuple, set) and isinstance(part, int) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _model_of(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if get_origin(tp) in (Annotated, Union, types.UnionType):
        return next((m for a in get_args(tp) if (m := _model_of(a)) is not None), None)
    return None


def _known_keys(loc: tuple[Any, ...], root: Any) -> list[str]:
    """The keys allowed at the place a loc points into (for 'did you mean')."""
    tp: Any = root
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return []
    model = _model_of(tp)
    return [f.alias or k for k, f in model.model_fields.items() if k != "source"] if model else []


def _suggestion(err: ErrorDetails, root: Any) -> str | None:
    """For an unknown key: the known key it is probably a typo of."""
    close = difflib.get_close_matches(str(err["loc"][-1]),
                                      _known_keys(err["loc"][:-1], root), 1)
    return close[0] if close else None


def _where(data: Any, loc: tuple[Any, ...]) -> str:
    """A loc as people read it: list items counted from 1, named when they have a
    name: ``advisors[6] (sofia).topics.digit``, ``routing.escalation.default[1]``."""
    out, node = "", data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
        if isinstance(part, int):
            name = node.get("name") if isinstance(node, dict) else None
            out += f"[{part + 1}]" + (f" ({name})" if isinstance(name, str) else "")
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_SECRET_KEYS = frozenset({"password"})
_KEY_PREFIX = re.compile(r"^([A-Za-z_][\w.+]*): (.*)$", re.DOTALL)


def _describe_error(err: ErrorDetails, data: Any, root: Any,
                    prefix: tuple[Any, ...] = ()) -> str:
    """One line for a validation error; ``root`` is the model the loc starts in
    (Settings, or a plugin's model whose section is at ``prefix``)."""
    loc = tuple(err["loc"])
    msg, kind, inp = err["msg"], err["type"], err.get("input")
    got = True
    if kind == "extra_forbidden":
        close = _suggestion(err, root)
        msg = f"unknown key (did you mean {close!r}?)" if close else "unknown key"
        known = _known_keys(loc[:-1], root)
        if not close and known:
            msg += f" (expected one of {', '.join(known)})"
        got = False
    elif kind == "missing":
        msg, got = "required key is missing", False
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = "expected a section of keys (a mapping)"
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        # A validator may name the key inside the section it checked.
        if m := _KEY_PREFIX.match(msg):
            keys = (int(k) if k.isdigit() else k for k in m.group(1).split("."))
            loc, msg = (*loc, *keys), m.group(2)
        got = not isinstance(inp, (dict, list))  # a whole section is noise
    loc = (*prefix, *loc)
    if loc and loc[-1] in _SECRET_KEYS:
        got = False  # a password is never echoed
    suffix = f" (got {inp!r:.60})" if got else ""
    return f"{_where(data, loc)}: {msg}{suffix}"


def describe_validation_error(e: ValidationError, model: type[BaseModel], data: Any,
                              prefix: tuple[Any, ...]) -> str:
    """The one-line message for the first error of ``model`` validated from ``data``
    (the section found at ``prefix`` of the config, e.g. ("plugins", "crisis_line"))."""
    errors = e.errors()
    # A typo shows as an unknown key plus a missing one: the missing one is the typo.
    typo_of = {(*x["loc"][:-1], s) for x in errors
               if x["type"] == "extra_forbidden" and (s := _suggestion(x, model))}
    errors = [x for x in errors if not (x["type"] == "missing" and tuple(x["loc"]) in typo_of)]
    errors.sort(key=lambda x: x["type"] != "extra_forbidden")  # name the typo first
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{_describe_error(errors[0], data, model, prefix)}{more}"


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice (the second would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (the second would silently replace "
                        "the first)", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

