"""Pydantic validation errors -> one Auriko error envelope (code and ``param`` path)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from akgate.errors import ERROR_CODES, GatewayError
from akgate.schemas.chat_request import TAG

__all__ = ["error_from_validation", "loc_to_param"]

#: Error types raised on purpose by the schemas that carry their registry code.
_OWN_CODES: Final = frozenset(code for code, (status, _) in ERROR_CODES.items() if status == 400)


def loc_to_param(loc: Iterable[int | str]) -> str:
    """``("messages", 3, "content")`` -> ``"messages[3].content"`` (union tags are dropped)."""
    param = ""
    for item in loc:
        if isinstance(item, int):
            param += f"[{item}]"
        elif not item.startswith(TAG):
            param = f"{param}.{item}" if param else item
    return param


def _param(error: ErrorDetails, loc_prefix: tuple[int | str, ...]) -> str:
    param = loc_to_param((*loc_prefix, *error["loc"]))
    ctx: dict[str, Any] | None = error.get("ctx")
    if ctx and isinstance(ctx.get("field"), str):
        field: str = ctx["field"]
        param = f"{param}.{field}" if param else field
    return param


def error_from_validation(
    exc: ValidationError, *, loc_prefix: tuple[int | str, ...] = ()
) -> GatewayError:
    """The envelope for the first error of ``exc`` (pydantic reports them in field order).

    ``loc_prefix`` is where the validated object sits in the request (``("gateway",)`` when
    only the ``gateway`` object was validated), so ``param`` names the field in the request.
    """
    error = exc.errors(include_url=False, include_input=False)[0]
    kind = error["type"]
    param = _param(error, loc_prefix)
    if kind in ("missing", "missing_required_parameter"):
        return GatewayError(
            "missing_required_parameter", f"Missing required parameter: '{param}'.", param
        )
    if kind == "extra_forbidden":
        return GatewayError("unknown_field", f"Unknown field: '{param}'.", param)
    if kind in _OWN_CODES:
        return GatewayError(kind, f"Invalid '{param}': {error['msg']}", param)
    return GatewayError(
        "invalid_parameter_value", f"Invalid value for '{param}': {error['msg']}.", param
    )
