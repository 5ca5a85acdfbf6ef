"""Chat examples -> token ids with labels on assistant turns only, plus packing and batching.

Labels: the model's own chat template renders the conversation; an assistant turn's span runs
from the end of the generation prompt (``<|im_start|>assistant\\n``) to the end of the turn,
including its end-of-turn token (``<|im_end|>``, ``<|eot_id|>``, ...) so the tuned model learns
to stop. Everything else (system, user turns, role headers) is ``-100``.

Truncation never cuts an answer: whole early turns are dropped (keeping the system prompt and
starting at a user turn) until the example fits ``max_length``; an example whose last exchange
alone does not fit is reported as too long.

Packing puts several examples in one row with ``position_ids`` restarting at 0 for each; with
no attention mask, transformers turns restarts into a block-diagonal causal mask, so examples
never attend to each other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from finetune.formats import ChatExample, DataError

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
# Tokens that end an assistant turn in common chat templates.
END_OF_TURN_TOKENS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|end|>",
    "<|endoftext|>",
    "</s>",
)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    dropped_turns: int = 0  # early messages removed to fit max_length


class ChatEncoder:
    """Encodes chat examples with a tokenizer's chat template; see the module docstring."""

    def __init__(self, tokenizer: Any, max_length: int, extra_stop_ids: Iterable[int] = ()) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise DataError(
                "the tokenizer has no chat template; set lm.chat_template (e.g. 'chatml')"
            )
        self.tok = tokenizer
        self.max_length = max_length
        self.fast = bool(getattr(tokenizer, "is_fast", False))
        self.stop_ids = self._stop_ids(extra_stop_ids)
        self.appended_eos = 0

    def _stop_ids(self, extra: Iterable[int]) -> set[int]:
        ids = {int(i) for i in extra if i is not None}
        if self.tok.eos_token_id is not None:
            ids.add(int(self.tok.eos_token_id))
        vocab = self.tok.get_vocab()
        ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
        return ids

    # -- rendering -----------------------------------------------------------------------------
    def _render(self, messages: Sequence[dict[str, str]], generation_prompt: bool) -> str:
        try:
            return self.tok.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=generation_prompt
            )
        except Exception as e:  # jinja2 TemplateError and friends
            raise DataError(
                f"the model's chat template rejected a conversation ({type(e).__name__}: {e}); "
                f"roles were {[m['role'] for m in messages]}"
            ) from e

    def render_with_spans(
        self, messages: Sequence[dict[str, str]]
    ) -> tuple[str, list[tuple[int, int]]]:
        """The full text and the character span of every assistant turn (end-of-turn included)."""
        full = self._render(messages, False)
        spans = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prefix = self._render(messages[:i], True)
            upto = self._render(messages[: i + 1], False)
            if not (upto.startswith(prefix) and full.startswith(upto)):
                raise DataError(
                    "the chat template renders earlier turns differently when later turns "
                    "follow, so assistant tokens cannot be located; use a template without "
                    "history rewriting (set lm.chat_template)"
                )
            spans.append((len(prefix), len(upto.rstrip())))
        return full, spans

    # -- tokenizing -----------------------------------------------------------------------------
    def _tokenize(self, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
        if self.fast:
            enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = list(enc["input_ids"])
            labels = [IGNORE_INDEX] * len(ids)
            j = 0
            for k, (start, _end) in enumerate(enc["offset_mapping"]):
                while j < len(spans) and start >= spans[j][1]:
                    j += 1
                if j < len(spans) and spans[j][0] <= start:
                    labels[k] = ids[k]
            return ids, labels
        # Slow tokenizers have no offsets: tokenize the pieces between span borders.
        ids, labels, pos = [], [], 0
        for start, end in [*spans, (len(text), len(text))]:
            for piece, learn in ((text[pos:start], False), (text[start:end], True)):
                if piece:
                    part = self.tok.encode(piece, add_special_tokens=False)
                    ids += part
                    labels += part if learn else [IGNORE_INDEX] * len(part)
            pos = end
        return ids, labels

    def _check_end_of_turn(self, ids: list[int], labels: list[int]) -> None:
        """Each labelled run must end on an end-of-turn token; the last one gets EOS appended
        when the template has none (so generation stops), middle ones are only reported."""
        ends = [
            k
            for k in range(len(labels))
            if labels[k] != IGNORE_INDEX and (k + 1 == len(labels) or labels[k + 1] == IGNORE_INDEX)
        ]
        missing = [k for k in ends if ids[k] not in self.stop_ids]
        if not missing:
            return
        last = ends[-1]
        if missing[-1] == last and self.tok.eos_token_id is not None:
            ids.insert(last + 1, int(self.tok.eos_token_id))
            labels.insert(last + 1, int(self.tok.eos_token_id))
            if self.appended_eos == 0:
                log.warning(
                    "the chat template does not end assistant turns with an end-of-turn token; "
                    "appending %s after the last answer so the tuned model learns to stop",
                    self.tok.eos_token,
                )
            self.appended_eos += 1

    def encode_messages(self, messages: Sequence[dict[str, str]]) -> Encoded:
        text, spans = self.render_with_spans(messages)
        ids, labels = self._tokenize(text, spans)
        self._check_end_of_turn(ids, labels)
        return Encoded(ids, labels)

    def encode(self, messages: Sequence[dict[str, str]]) -> Encoded | None:
        """Encode, dropping whole early turns until it fits; ``None`` when it cannot fit."""
        full = self.encode_messages(messages)
        if len(full.input_ids) <= self.max_length:
            return full
        system = list(messages[:1]) if messages and messages[0]["role"] == "system" else []
        rest = list(messages[len(system) :])
        last_answer = max(i for i, m in enumerate(rest) if m["role"] == "assistant")
        # Cut points: each later user turn that still leaves an answer after it.
        cuts = [i for i in range(1, last_answer) if rest[i]["role"] == "user"]
        # Lengths shrink as the cut moves right: binary search the first cut that fits.
        lo, hi, best = 0, len(cuts) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            enc = self.encode_messages(system + rest[cuts[mid] :])
            if len(enc.input_ids) <= self.max_length:
                best, hi = (cuts[mid], enc), mid - 1
            else:
                lo = mid + 1
        if best is None:
            return None
        best[1].dropped_turns = best[0]
        return best[1]


def encode_examples(
    examples: Sequence[ChatExample],
    encoder: ChatEncoder,
    *,
    too_long: str = "drop",
) -> tuple[list[dict[str, list[int]]], int, list[str]]:
    """-> (features, number truncated, sources of examples dropped as too long)."""
    features, truncated, dropped = [], 0, []
    for ex in examples:
        enc = encoder.encode(ex.messages)
        if enc is None:
            if too_long == "error":
                raise DataError(
                    f"{ex.source}: the example does not fit finetune.max_length="
                    f"{encoder.max_length} tokens even with only its last exchange; raise "
                    f"max_length or set finetune.too_long=drop"
                )
            dropped.append(ex.source)
            continue
        truncated += enc.dropped_turns > 0
        features.append({"input_ids": enc.input_ids, "labels": enc.labels})
    return features, truncated, dropped


def pack(features: Sequence[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """First-fit-decreasing packing into rows of at most ``max_length`` tokens; each example
    keeps its own ``position_ids`` starting at 0."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = len(features[i]["input_ids"])
        for b, room in enumerate(free):
            if n <= room:
                bins[b].append(i)
                free[b] -= n
                break
        else:
            bins.append([i])
            free.append(max_length - n)
    rows = []
    for members in bins:
        row: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
        for i in sorted(members):
            f = features[i]
            row["input_ids"] += f["input_ids"]
            row["labels"] += f["labels"]
            row["position_ids"] += list(range(len(f["input_ids"])))
        rows.append(row)
    return rows


class Collator:
    """Pads a batch. Plain rows get an attention mask; packed rows get ``position_ids`` (the
    padding forms its own segment), no mask and ``use_cache=False``. Counts the real tokens."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id
        self.tokens = 0

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        packed = "position_ids" in features[0]
        ids, labels, extra = [], [], []
        for f in features:
            n = len(f["input_ids"])
            pad = width - n
            ids.append(f["input_ids"] + [self.pad_token_id] * pad)
            labels.append(f["labels"] + [IGNORE_INDEX] * pad)
            extra.append(f["position_ids"] + list(range(pad)) if packed else [1] * n + [0] * pad)
            self.tokens += n
        batch: dict[str, Any] = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}
        batch["position_ids" if packed else "attention_mask"] = torch.tensor(extra)
        if packed:
            # transformers only derives the block-diagonal mask from position_ids when no KV
            # cache is built, and training forwards build one unless told not to.
            batch["use_cache"] = False
        return batch
