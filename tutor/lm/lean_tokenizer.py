"""The tokenizer of the lean start without ``transformers``: ``tokenizer.json`` through the
``tokenizers`` library and the chat template through a sandboxed Jinja environment, set up as
``transformers`` sets up its own (``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``, the
``tojson`` filter, ``raise_exception`` and ``strftime_now``).

Importing ``transformers`` costs ~0.5 s of a ``tutor ask`` (it indexes its model packages at
import), more than the model's load. ``LeanTokenizer`` does what the generator asks of a
tokenizer: ``apply_chat_template``, ``decode``, ``__call__`` (``{"input_ids": ...}``), the
special tokens and their ids. ``load_lean_tokenizer`` returns None where it could differ from the
full tokenizer (no ``tokenizer.json``, a template with ``{% generation %}`` blocks, or one that
does not compile): the caller loads the ``transformers`` one then. The tests compare the two
token for token on the bundled model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token")


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _compile(template: str) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        x: Any,
        ensure_ascii: bool = False,
        indent: Any = None,
        separators: Any = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


class LeanTokenizer:
    """A ``tokenizers.Tokenizer`` with the chat template and special tokens of its model dir."""

    def __init__(self, tokenizer: Any, template: str, special: dict[str, str | None]) -> None:
        self.backend = tokenizer
        self.chat_template = template
        self._template = _compile(template)
        self.special = special
        self.bos_token = special.get("bos_token")
        self.eos_token = special.get("eos_token")
        self.unk_token = special.get("unk_token")
        self.pad_token = special.get("pad_token") or self.eos_token

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)

    @property
    def eos_token_id(self) -> int | None:
        return self._id(self.eos_token)

    @property
    def bos_token_id(self) -> int | None:
        return self._id(self.bos_token)

    @property
    def pad_token_id(self) -> int | None:
        return self._id(self.pad_token)

    def __len__(self) -> int:
        return int(self.backend.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def __call__(
        self, text: str, add_special_tokens: bool = True, **_: Any
    ) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text, add_special_tokens=add_special_tokens)}

    def decode(self, ids: Any, skip_special_tokens: bool = False, **_: Any) -> str:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return str(self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def render(
        self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = False
    ) -> str:
        data = {k: v for k, v in self.special.items() if v is not None}
        return str(
            self._template.render(
                messages=list(messages), add_generation_prompt=add_generation_prompt, **data
            )
        )

    def apply_chat_template(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        add_generation_prompt: bool = False,
        tokenize: bool = True,
        return_dict: bool = False,
        **_: Any,
    ) -> Any:
        """As ``transformers``: the rendered text, or its ids (no special tokens added: the
        template writes them), or ``{"input_ids": ids}`` with ``return_dict``."""
        text = self.render(messages, add_generation_prompt)
        if not tokenize:
            return text
        ids = self.encode(text, add_special_tokens=False)
        return {"input_ids": ids} if return_dict else ids


def load_lean_tokenizer(directory: Path, chat_template: str = "") -> LeanTokenizer | None:
    """The lean tokenizer of a model dir, or None where the ``transformers`` one is needed.
    ``chat_template``: the resolved ``lm.chat_template`` text, used when the model has none."""
    tok_file = directory / "tokenizer.json"
    if not tok_file.is_file():
        return None
    config: dict[str, Any] = {}
    cfg_file = directory / "tokenizer_config.json"
    if cfg_file.is_file():
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    template = config.get("chat_template")
    jinja_file = directory / "chat_template.jinja"
    if jinja_file.is_file():
        template = jinja_file.read_text(encoding="utf-8")
    template = template if isinstance(template, str) and template else chat_template
    if not template or "{% generation" in template or "{%- generation" in template:
        return None
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(str(tok_file))
        special = {name: _token_text(config.get(name)) for name in SPECIAL}
        return LeanTokenizer(backend, template, special)
    except Exception as e:  # a template or file the lean reader cannot take: the full one can
        log.debug("lean tokenizer unavailable for %s: %s", directory, e)
        return None
