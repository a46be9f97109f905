"""Language models for `generate`: a name and backend registry, and backends (template, llamacpp, transformers, openai)."""

from .base import LLM, Completion, Params, Request, Stats
from .registry import backend_class, get_llm, list_llms, register

__all__ = ["LLM", "Completion", "Params", "Request", "Stats", "backend_class", "get_llm", "list_llms", "register"]
