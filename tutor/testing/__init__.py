"""Fakes for tests and benchmarks, one of each; the product never imports this package
(``tests/test_architecture.py`` checks it).

- ``tutor.testing.fake_lm.ScriptedGenerator``: a ``Generator`` that streams a scripted reply
  word by word and records its prompts;
- ``tutor.testing.openai_server.ScriptedServer``: the same over the OpenAI-compatible HTTP
  protocol, on loopback (``python -m tutor.testing.openai_server`` serves one);
- ``tutor.testing.tiny_llama``: a tiny random 2-layer Llama and word-level tokenizer;
- the fake embedder is ``knowledge_base.testing.HashEmbedder`` (``knowledge_base`` does not
  import ``tutor``, so it lives there).
"""
