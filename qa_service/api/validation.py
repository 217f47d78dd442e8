"""Request bodies are validated in one place: every request model derives from `ApiRequest`.

    class AskRequest(ApiRequest):
        question: str = Field(..., min_length=1)

- Unknown fields are refused (422), so a client cannot smuggle a 10 MB array past the contract.
- Text must be valid Unicode: JSON may carry a lone surrogate (`"\\ud800"`), which no database, tokenizer or
  UTF-8 encoder accepts; it is a 422 here instead of a 500 deep inside.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_unicode(value: Any) -> Any:
    """`value` unchanged, or ValueError when a string in it (or in a list) holds a lone surrogate."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise ValueError("文本包含无效的Unicode字符 / the text contains invalid Unicode (a lone surrogate)")
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_unicode(item)
    return value


class ApiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        return check_unicode(value)
