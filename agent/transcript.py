"""The typed transcript of a turn: what is stored in SQLite, resumed after an approval, and sent.

A message is a role and a list of parts; a part is a discriminated union on `type` (text, a tool
call, a tool result), converted to and from JSON by one `TypeAdapter`. A tool result carries its
trust label (`label`: the outside sources it holds) as data next to its content, so resuming a
paused turn never has to read a label back out of text. What goes to the Messages API is
`to_api()`: labels stay here, cache breakpoints become `cache_control`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from memory.labels import Label
from memory.turns import TokenUsage

__all__ = [
    "ImagePart",
    "Message",
    "PausedState",
    "TextPart",
    "ToolResultPart",
    "ToolUsePart",
    "api_form",
    "dump_transcript",
    "load_transcript",
    "to_api",
    "with_breakpoint",
]

_CACHE = {"type": "ephemeral"}


class _Part(BaseModel):
    # Unknown keys (cache_control in transcripts stored before this module) are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)

    cache: bool = False
    """A prompt-cache breakpoint after this part (sent as `cache_control`, stored as is)."""


class TextPart(_Part):
    type: Literal["text"] = "text"
    text: str


class ImagePart(_Part):
    """An image the user sent (issue 17): the Messages API's image block, base64 source."""

    type: Literal["image"] = "image"
    source: dict[str, Any]


class ToolUsePart(_Part):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ToolResultPart(_Part):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False
    label: tuple[str, ...] = ()
    """The outside sources this result holds (empty: it holds none)."""

    @property
    def trust(self) -> Label:
        return Label(self.label)


Part = Annotated[TextPart | ImagePart | ToolUsePart | ToolResultPart, Field(discriminator="type")]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    content: list[Part]

    @classmethod
    def from_api(cls, message: dict[str, Any]) -> Message:
        """A message in the Messages API form (`cache_control` becomes `cache`)."""
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = [{**block, "cache": "cache_control" in block} for block in content]
        return cls.model_validate({"role": message["role"], "content": parts})

    def with_breakpoint(self) -> Message:
        """This message with a cache breakpoint on its last part."""
        *earlier, last = self.content
        return Message(role=self.role, content=[*earlier, last.model_copy(update={"cache": True})])


class PausedState(BaseModel):
    """What a turn that waits for approvals keeps besides its transcript: the step's calls in
    order, the results of those that already ran, usage so far, its label and where it talks."""

    model_config = ConfigDict(extra="ignore")

    order: list[str]
    results: dict[str, ToolResultPart] = Field(default_factory=dict)
    usage: dict[str, int] = Field(default_factory=dict)
    label: tuple[str, ...] = ()
    address: dict[str, Any] | None = None
    prompt: int = 0
    """How many messages of the stored transcript are the prompt (left out once it finishes)."""

    @property
    def token_usage(self) -> TokenUsage:
        return TokenUsage(**self.usage)


_TRANSCRIPT: TypeAdapter[list[Message]] = TypeAdapter(list[Message])


def dump_transcript(messages: list[Message]) -> str:
    return _TRANSCRIPT.dump_json(messages).decode()


def load_transcript(text: str) -> list[Message]:
    return _TRANSCRIPT.validate_json(text)


def _api_part(part: TextPart | ImagePart | ToolUsePart | ToolResultPart) -> dict[str, Any]:
    block = part.model_dump(exclude={"cache", "label"})
    if isinstance(part, ToolResultPart) and not part.is_error:
        del block["is_error"]
    if part.cache:
        block["cache_control"] = _CACHE
    return block


def to_api(messages: list[Message]) -> list[dict[str, Any]]:
    """The messages as the Messages API takes them (labels left out)."""
    return [{"role": m.role, "content": [_api_part(p) for p in m.content]} for m in messages]


_TEXT_KEYS = frozenset({"type", "text", "cache_control"})


def api_form(message: dict[str, Any]) -> dict[str, Any]:
    """`to_api([Message.from_api(message)])[0]`: the message as the transcript would send it.
    A message of plain text blocks (a turn's history: a hundred or more of them) is written
    directly, as validating and dumping it gives back the same blocks; any other goes through
    the models (and their validation)."""
    role, content = message["role"], message["content"]
    if role in ("user", "assistant") and type(content) is list:
        blocks: list[dict[str, Any]] = []
        for block in content:
            if not (
                type(block) is dict
                and block.get("type") == "text"
                and type(block.get("text")) is str
                and block.keys() <= _TEXT_KEYS
            ):
                break
            plain: dict[str, Any] = {"type": "text", "text": block["text"]}
            if "cache_control" in block:
                plain["cache_control"] = _CACHE
            blocks.append(plain)
        else:
            return {"role": role, "content": blocks}
    return to_api([Message.from_api(message)])[0]


def with_breakpoint(message: dict[str, Any]) -> dict[str, Any]:
    """An API-form message (as `api_form` gives) with a cache breakpoint on its last block, as
    `to_api([Message.with_breakpoint()])` would send it; `message` is left as it is."""
    *earlier, last = message["content"]
    return {"role": message["role"], "content": [*earlier, {**last, "cache_control": _CACHE}]}
