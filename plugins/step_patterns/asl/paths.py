"""Run-time values inside payload templates: JSONPath references and intrinsic functions.

ASL marks a templated field by suffixing its key with ``.$`` (``"Payload.$": "$"``). Writing
those keys by hand is how typos reach production (a forgotten ``.$`` silently sends the
literal string ``"$.sql"``). Here a template is a plain dict whose dynamic values are
``JsonPath``/``Intrinsic`` objects; :func:`render_template` adds the suffix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_INTRINSIC = re.compile(r"^States\.[A-Za-z]+\(.*\)$", re.DOTALL)


@dataclass(frozen=True)
class JsonPath:
    """A reference path (``$.a.b``) or context-object path (``$$.Execution.Name``)."""

    path: str

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("$"):
            raise ValueError(f"JSONPath must start with '$', got {self.path!r}")

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class Intrinsic:
    """An intrinsic function call, e.g. ``States.MathAdd($.poll.polls, 1)``."""

    expression: str

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str) or not _INTRINSIC.match(self.expression):
            raise ValueError(f"intrinsic function must look like States.Name(...), got {self.expression!r}")

    def __str__(self) -> str:
        return self.expression


Dynamic = JsonPath | Intrinsic


def render_template(template: Any, where: str = "template") -> Any:
    """Render a payload template to ASL: dynamic values get their key suffixed with ``.$``."""
    if isinstance(template, dict):
        rendered: dict[str, Any] = {}
        for key, value in template.items():
            if not isinstance(key, str) or key.endswith(".$"):
                raise ValueError(
                    f"{where}: key {key!r} must be a plain string; use JsonPath/Intrinsic values "
                    "instead of writing '.$' keys"
                )
            if isinstance(value, (JsonPath, Intrinsic)):
                rendered[f"{key}.$"] = str(value)
            else:
                rendered[key] = render_template(value, f"{where}.{key}")
        return rendered
    if isinstance(template, (list, tuple)):
        return [render_template(item, f"{where}[{index}]") for index, item in enumerate(template)]
    if isinstance(template, (JsonPath, Intrinsic)):
        # ASL only resolves dynamic values as object members ("key.$"), never in arrays.
        raise ValueError(f"{where}: a dynamic value must be the value of an object key")
    if template is None or isinstance(template, (str, int, float, bool)):
        return template
    raise ValueError(f"{where}: {type(template).__name__} is not JSON")
