"""LM backends behind one streaming interface (see ``tutor.lm.base.Generator``)."""

from tutor.lm.base import GenerationOptions, Generator, Message, generate

__all__ = ["GenerationOptions", "Generator", "Message", "generate"]
