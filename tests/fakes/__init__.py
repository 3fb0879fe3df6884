"""Fake model providers on 127.0.0.1 speaking the real wire protocols, for tests and bench scripts.

Plain classes (no pytest needed): FakeAnthropic, FakeOllama, FakeOpenAICompatible, LiteLLMProxy (a real proxy process in
front of a fake), OutsideTrafficTrap. pytest fixtures are in tests/fakes/fixtures.py.
"""

from .anthropic import FakeAnthropic
from .litellm_proxy import LiteLLMProxy
from .ollama import FakeOllama
from .openai_compat import FakeOpenAICompatible
from .trap import OutsideTrafficTrap

__all__ = ("FakeAnthropic", "FakeOllama", "FakeOpenAICompatible", "LiteLLMProxy", "OutsideTrafficTrap")
