"""Local stand-ins for external services, for tests and benchmarks.

``FakeOpenAIServer`` (OpenAI chat completions) and ``FakeAnthropicServer`` (Anthropic
messages) run in-process on 127.0.0.1 and are scripted with the behaviours defined in
``tests.fakes.fake_openai_server`` (``Answer``, ``Latency``, ``RateLimited``, ...).
"""
