"""Test doubles that need no network: a local OpenAI-compatible server with fault injection."""

from .openai_server import Faults, FakeOpenAIServer

__all__ = ["FakeOpenAIServer", "Faults"]
