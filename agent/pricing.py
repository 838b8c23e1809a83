"""Estimated cost of a turn from its token counts (USD per million tokens, list prices)."""

from __future__ import annotations

from dataclasses import dataclass

from memory.turns import TokenUsage

__all__ = ["Price", "estimate_cost", "price_for"]


@dataclass(frozen=True)
class Price:
    input: float
    output: float

    @property
    def cache_write(self) -> float:
        return self.input * 1.25

    @property
    def cache_read(self) -> float:
        return self.input * 0.1


_PRICES: dict[str, Price] = {
    "claude-opus": Price(5.0, 25.0),
    "claude-opus-4-0": Price(15.0, 75.0),
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-sonnet": Price(3.0, 15.0),
    "claude-haiku": Price(1.0, 5.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
}
_DEFAULT = Price(3.0, 15.0)


def price_for(model: str) -> Price:
    """The price of the longest matching model-name prefix; Sonnet's for an unknown model."""
    matches = [key for key in _PRICES if model.startswith(key)]
    return _PRICES[max(matches, key=len)] if matches else _DEFAULT


def estimate_cost(model: str, usage: TokenUsage) -> float:
    price = price_for(model)
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_creation_input_tokens * price.cache_write
        + usage.cache_read_input_tokens * price.cache_read
    ) / 1_000_000
