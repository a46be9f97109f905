"""Language models for `generate`: a name registry and backends (template, llamacpp, transformers, openai)."""

from .base import LLM, Completion, Params, Request, Stats
from .registry import get_llm, list_llms

__all__ = ["LLM", "Completion", "Params", "Request", "Stats", "get_llm", "list_llms"]
