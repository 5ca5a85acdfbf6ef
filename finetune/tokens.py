"""Chat examples -> token ids with labels on assistant turns only, plus packing and batching.

Labels: the model's own chat template renders the conversation; an assistant turn's span runs
from the end of the generation prompt (``<|im_start|>assistant\\n``) to the end of the turn,
including its end-of-turn token (``<|im_end|>``, ``<|eot_id|>``, ...) so the tuned model learns
to stop. Everything else (system, user turns, role headers) is ``-100``.

Long dialogues are split into windows, never cut mid-turn: each window keeps the system prompt
(which carries the problem), the student's opening turn when it fits, one exchange of context
before its first new answer, then as many consecutive turns as fit ``max_length``. Each answer
is a target in exactly one window (context repeated from an earlier window stays unlabelled),
so every teacher turn is trained on unless the turn alone cannot fit.

Packing puts several examples in one row with ``position_ids`` restarting at 0 for each; with
no attention mask, transformers turns restarts into a block-diagonal causal mask, so examples
never attend to each other.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Container, Iterable, Sequence
from dataclasses import dataclass, field
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


@dataclass
class Windowed:
    """One conversation as training rows: ``windows`` cover every target answer that fits."""

    windows: list[Encoded]
    target_tokens: int  # labelled tokens of the whole conversation, encoded without a limit
    dropped_turns: int = 0  # target answers that fit in no window

    @property
    def label_tokens(self) -> int:
        return sum(sum(x != IGNORE_INDEX for x in w.labels) for w in self.windows)


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
        self, messages: Sequence[dict[str, str]], targets: Container[int] | None = None
    ) -> tuple[str, list[tuple[int, int]]]:
        """The full text and the character span of every assistant turn (end-of-turn included)
        whose index is in ``targets`` (default: all of them)."""
        full = self._render(messages, False)
        spans = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant" or (targets is not None and i not in targets):
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

    def encode_messages(
        self, messages: Sequence[dict[str, str]], targets: Container[int] | None = None
    ) -> Encoded:
        text, spans = self.render_with_spans(messages, targets)
        ids, labels = self._tokenize(text, spans)
        self._check_end_of_turn(ids, labels)
        return Encoded(ids, labels)

    def encode(self, messages: Sequence[dict[str, str]]) -> Encoded | None:
        """The whole conversation, or ``None`` when it does not fit (see ``windows``)."""
        full = self.encode_messages(messages)
        return full if len(full.input_ids) <= self.max_length else None

    def windows(
        self, messages: Sequence[dict[str, str]], targets: Collection[int] | None = None
    ) -> Windowed:
        """The conversation as one row, or as windows when it is longer than ``max_length``.
        ``targets``: indices of the assistant messages to learn (default: all)."""
        answers = [
            i
            for i, m in enumerate(messages)
            if m["role"] == "assistant" and (targets is None or i in targets)
        ]
        full = self.encode_messages(messages, answers)
        total = sum(x != IGNORE_INDEX for x in full.labels)
        if len(full.input_ids) <= self.max_length:
            return Windowed([full], total)
        head = 1 if messages and messages[0]["role"] == "system" else 0
        first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), head - 1)
        out = Windowed([], total)
        k = 0
        while k < len(answers):
            found = self._window(messages, answers, k, head, first_user)
            if found is None:
                out.dropped_turns += 1
                k += 1
                continue
            k, enc = found
            out.windows.append(enc)
        return out

    def _window(
        self,
        messages: Sequence[dict[str, str]],
        answers: list[int],
        k: int,
        head: int,
        first_user: int,
    ) -> tuple[int, Encoded] | None:
        """The window whose first target is ``answers[k]`` with the most context that lets it
        fit, extended to as many later answers as fit: ``(next k, encoded)``."""
        a = answers[k]
        opening = list(range(head, first_user + 1)) if first_user < a else []
        contexts: list[list[int]] = []
        for keep_opening, back in ((True, 2), (True, 1), (False, 1), (False, 0)):
            before = [i for i in range(max(head, a - back), a)]
            ctx = sorted(set((opening if keep_opening else []) + before))
            if ctx not in contexts:
                contexts.append(ctx)
        if k == 0:
            contexts.insert(0, list(range(head, a)))  # the first window starts at the start
        for ctx in contexts:
            best: tuple[int, Encoded] | None = None
            lo, hi = k, len(answers) - 1
            while lo <= hi:  # lengths grow with the last answer: binary search the longest
                mid = (lo + hi) // 2
                idx = list(range(head)) + ctx + list(range(a, answers[mid] + 1))
                window = [messages[i] for i in idx]
                wanted = {j for j, i in enumerate(idx) if i in answers[k : mid + 1]}
                enc = self.encode_messages(window, wanted)
                if len(enc.input_ids) <= self.max_length:
                    best, lo = (mid + 1, enc), mid + 1
                else:
                    hi = mid - 1
            if best is not None:
                return best
        return None


@dataclass
class EncodeReport:
    """What fitting the examples into ``max_length`` did."""

    windowed: int = 0  # examples split into more than one window
    windows: int = 0  # rows made from the split examples
    dropped_turns: int = 0  # target answers that fit in no window
    target_tokens: int = 0  # labelled tokens of the examples encoded without a limit
    label_tokens: int = 0  # labelled tokens of the rows (each target answer once)
    dropped: list[str] = field(default_factory=list)  # sources of examples with no row

    def add(self, other: EncodeReport) -> None:
        for f in ("windowed", "windows", "dropped_turns", "target_tokens", "label_tokens"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.dropped += other.dropped


def encode_examples(
    examples: Sequence[ChatExample],
    encoder: ChatEncoder,
    *,
    too_long: str = "drop",
) -> tuple[list[dict[str, list[int]]], EncodeReport]:
    """-> (features, report). A teacher turn that does not fit ``max_length`` even alone with
    the system prompt is dropped (``too_long="drop"``) or an error (``"error"``)."""
    features: list[dict[str, list[int]]] = []
    report = EncodeReport()
    for ex in examples:
        w = encoder.windows(ex.messages, ex.targets)
        if w.dropped_turns and too_long == "error":
            raise DataError(
                f"{ex.source}: {w.dropped_turns} teacher turn(s) do not fit finetune.max_length="
                f"{encoder.max_length} tokens even alone with the system prompt; raise "
                f"max_length or set finetune.too_long=drop"
            )
        report.dropped_turns += w.dropped_turns
        report.target_tokens += w.target_tokens
        report.label_tokens += w.label_tokens
        if not w.windows:
            report.dropped.append(ex.source)
        if len(w.windows) > 1:
            report.windowed += 1
            report.windows += len(w.windows)
        features += [{"input_ids": e.input_ids, "labels": e.labels} for e in w.windows]
    return features, report


def load_base_tokenizer(config: Any) -> Any:
    """The base model's tokenizer (cheap: no weights), for counting and encoding data."""
    from tutor.lm.resolve import ensure_bundled_cache, load_tokenizer, resolve_source

    spec = config.finetune.base_model or config.lm.model
    models_dir = config.paths.models_dir
    source = resolve_source(spec, models_dir)
    if source.alias and source.gguf_file:
        ensure_bundled_cache(source.alias, models_dir)
        source = resolve_source(spec, models_dir)
    return load_tokenizer(source, config.lm.chat_template)


def tokenize_splits(
    cfg: Any, tokenizer: Any, train: list, val: list, stats: Any
) -> tuple[list[dict], list[dict]]:
    """Encode both splits (labels on target assistant turns, long dialogues as windows), pack
    the train split when asked, and record token counts, windows, drops and the share of
    teacher tokens trained on in ``stats`` (a ``finetune.data.DataStats``)."""
    encoder = ChatEncoder(tokenizer, cfg.max_length)
    train_f, rep = encode_examples(train, encoder, too_long=cfg.too_long)
    val_f, val_rep = encode_examples(val, encoder, too_long=cfg.too_long)
    n_train_rows = len(train_f)
    rep.add(val_rep)
    s = stats
    s.windowed, s.windows, s.dropped_turns = rep.windowed, rep.windows, rep.dropped_turns
    s.target_tokens, s.trained_target_tokens = rep.target_tokens, rep.label_tokens
    s.too_long = len(rep.dropped)
    if rep.dropped_turns:
        log.warning(
            "%d teacher turns do not fit max_length=%d even alone with the system prompt and "
            "were dropped (%d examples lost every turn: %s); raise finetune.max_length to keep "
            "them",
            rep.dropped_turns,
            cfg.max_length,
            len(rep.dropped),
            ", ".join(rep.dropped[:3]),
        )
    if not train_f:
        raise DataError(
            f"every training example is longer than finetune.max_length={cfg.max_length} "
            f"tokens; raise max_length"
        )
    lengths = [len(f["input_ids"]) for f in train_f]
    s.train_tokens = sum(lengths)
    s.train_label_tokens = sum(sum(x != IGNORE_INDEX for x in f["labels"]) for f in train_f)
    s.eval_tokens = sum(len(f["input_ids"]) for f in val_f)
    s.max_tokens, s.mean_tokens = max(lengths), s.train_tokens / len(lengths)
    s.train_examples, s.eval_examples = n_train_rows, len(val_f)
    if cfg.packing:
        train_f = pack(train_f, cfg.max_length)
        s.packed_rows = len(train_f)
    return train_f, val_f


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
        # real (unpadded) tokens, for the trainer's count of training tokens (popped there)
        batch["num_real_tokens"] = torch.tensor(sum(len(f["input_ids"]) for f in features))
        batch["position_ids" if packed else "attention_mask"] = torch.tensor(extra)
        if packed:
            # transformers only derives the block-diagonal mask from position_ids when no KV
            # cache is built, and training forwards build one unless told not to.
            batch["use_cache"] = False
        return batch
