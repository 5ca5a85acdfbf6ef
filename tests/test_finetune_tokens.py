"""Tokenization: labels exactly on assistant tokens (incl. end-of-turn), truncation by whole
turns, packing without cross-example attention, batching."""

from __future__ import annotations

import pytest

from finetune.errors import DataError
from finetune.formats import ChatExample
from finetune.tokens import IGNORE_INDEX, ChatEncoder, Collator, encode_examples, pack
from tutor.testing.tiny_llama import make_model, make_tokenizer

DIALOGUE = [
    {"role": "system", "content": "you are a tutor ."},
    {"role": "assistant", "content": "hello , what is your answer ?"},
    {"role": "user", "content": "i think 1 / 2 ."},
    {"role": "assistant", "content": "good . what is the next step ?"},
    {"role": "user", "content": "add 1 / 4 ."},
    {"role": "assistant", "content": "yes , check the denominator ."},
]


def labelled_runs(labels: list[int]) -> list[list[int]]:
    runs, cur = [], []
    for x in labels:
        if x == IGNORE_INDEX:
            if cur:
                runs.append(cur)
            cur = []
        else:
            cur.append(x)
    return runs + ([cur] if cur else [])


def test_labels_are_exactly_the_assistant_tokens_with_end_of_turn() -> None:
    tok = make_tokenizer()
    enc = ChatEncoder(tok, max_length=512).encode(DIALOGUE)
    assert enc is not None
    # the input is exactly what the chat template renders
    assert (
        enc.input_ids
        == tok(tok.apply_chat_template(DIALOGUE, tokenize=False), add_special_tokens=False)[
            "input_ids"
        ]
    )
    # labels equal input ids where set, and each labelled run is one assistant turn + <|im_end|>
    assert all(lab in (IGNORE_INDEX, i) for lab, i in zip(enc.labels, enc.input_ids, strict=True))
    expected = [
        tok(m["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
        for m in DIALOGUE
        if m["role"] == "assistant"
    ]
    assert labelled_runs(enc.labels) == expected
    assert all(run[-1] == tok.eos_token_id for run in expected)
    # role headers ("<|im_start|>assistant\n") and the newline after <|im_end|> stay unlabelled
    head = tok.convert_tokens_to_ids("assistant")
    assert all(lab != head for lab in enc.labels)


def test_slow_path_without_offsets_gives_the_same_labels() -> None:
    tok = make_tokenizer()
    fast = ChatEncoder(tok, max_length=512)
    slow = ChatEncoder(tok, max_length=512)
    slow.fast = False
    a, b = fast.encode(DIALOGUE), slow.encode(DIALOGUE)
    assert (a.input_ids, a.labels) == (b.input_ids, b.labels)


def test_template_without_end_of_turn_gets_eos_after_the_last_answer() -> None:
    tok = make_tokenizer(with_template=False)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] + ' : ' + m['content'] + ' ' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant : ' }}{% endif %}"
    )
    msgs = [{"role": "user", "content": "what is 2 + 2 ?"}, {"role": "assistant", "content": "4"}]
    enc = ChatEncoder(tok, max_length=64).encode(msgs)
    assert enc.input_ids[-1] == tok.eos_token_id and enc.labels[-1] == tok.eos_token_id
    assert labelled_runs(enc.labels) == [[tok.convert_tokens_to_ids("4"), tok.eos_token_id]]


def _rendered(tok, messages: list[dict]) -> list[int]:
    return tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)[
        "input_ids"
    ]


def _answer(tok, text: str) -> list[int]:
    return tok(text + "<|im_end|>", add_special_tokens=False)["input_ids"]


LONG = [
    DIALOGUE[0],
    {"role": "assistant", "content": "hello , what is your answer ?"},
    {"role": "user", "content": "i think 1 / 2 + 1 / 4 is 2 / 6 ."},
    *[
        m
        for i in range(6)
        for m in (
            {"role": "assistant", "content": f"step {i} . what is the next denominator ?"},
            {"role": "user", "content": f"maybe {i} / 4 ."},
        )
    ],
    {"role": "assistant", "content": "yes , check the denominator ."},
]


def test_long_dialogues_become_windows_with_every_answer_learned_once() -> None:
    tok = make_tokenizer()
    enc = ChatEncoder(tok, max_length=80)
    assert enc.encode(LONG) is None  # too long as one row
    w = enc.windows(LONG)
    assert len(w.windows) > 2 and w.dropped_turns == 0
    learned: list[list[int]] = []
    for win in w.windows:
        assert len(win.input_ids) <= 80
        assert win.input_ids[: len(_rendered(tok, LONG[:1]))] == _rendered(tok, LONG[:1])
        assert all(
            lab in (IGNORE_INDEX, i) for lab, i in zip(win.labels, win.input_ids, strict=True)
        )
        learned += labelled_runs(win.labels)
    # every answer is a target exactly once, in order; the coverage is complete
    answers = [_answer(tok, m["content"]) for m in LONG if m["role"] == "assistant"]
    assert learned == answers
    assert w.label_tokens == w.target_tokens == sum(map(len, answers))
    # later windows keep the student's opening turn (their attempt) as context when it fits
    opening = tok(LONG[2]["content"], add_special_tokens=False)["input_ids"]
    second = w.windows[1].input_ids
    assert any(second[i : i + len(opening)] == opening for i in range(len(second)))


def test_window_targets_and_turns_that_cannot_fit() -> None:
    tok = make_tokenizer()
    # only the chosen answers are targets; the others stay unlabelled context
    w = ChatEncoder(tok, max_length=512).windows(DIALOGUE, targets=(3,))
    assert labelled_runs(w.windows[0].labels) == [_answer(tok, DIALOGUE[3]["content"])]
    # a turn that does not fit even alone with the system prompt is dropped and counted
    long_turn = {"role": "assistant", "content": " ".join(["step"] * 60)}
    msgs = [*DIALOGUE, {"role": "user", "content": "ok ."}, long_turn]
    w = ChatEncoder(tok, max_length=48).windows(msgs)
    assert w.dropped_turns == 1 and w.windows
    assert w.label_tokens < w.target_tokens


def test_examples_that_cannot_fit_are_dropped_or_rejected() -> None:
    tok = make_tokenizer()
    tiny_budget = ChatEncoder(tok, max_length=16)
    assert tiny_budget.encode(DIALOGUE) is None
    ex = ChatExample(messages=DIALOGUE, group="g", source="f.jsonl:7", format="openai")
    features, report = encode_examples([ex], tiny_budget)
    assert features == [] and report.dropped == ["f.jsonl:7"] and report.dropped_turns == 3
    with pytest.raises(
        DataError, match=r"f\.jsonl:7: 3 teacher turn\(s\) do not fit finetune\.max_length=16"
    ):
        encode_examples([ex], tiny_budget, too_long="error")


def test_tokenizer_without_template_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="no chat template"):
        ChatEncoder(make_tokenizer(with_template=False), max_length=64)


def _features(tok, n: int) -> list[dict]:
    enc = ChatEncoder(tok, max_length=512)
    out = []
    for i in range(n):
        msgs = [
            {"role": "user", "content": "what is " + " + ".join(["1"] * (i + 1)) + " ?"},
            {"role": "assistant", "content": f"it is {i + 1} ."},
        ]
        e = enc.encode(msgs)
        out.append({"input_ids": e.input_ids, "labels": e.labels})
    return out


def test_packing_fills_rows_and_restarts_positions() -> None:
    feats = _features(make_tokenizer(), 7)
    longest = max(len(f["input_ids"]) for f in feats)
    rows = pack(feats, max_length=2 * longest)
    assert len(rows) < len(feats)
    assert sum(len(r["input_ids"]) for r in rows) == sum(len(f["input_ids"]) for f in feats)
    for r in rows:
        assert len(r["input_ids"]) <= 2 * longest
        assert len(r["input_ids"]) == len(r["labels"]) == len(r["position_ids"])
        starts = [k for k, p in enumerate(r["position_ids"]) if p == 0]
        assert starts[0] == 0
        # every example starts unlabelled, so no label crosses an example border
        assert all(r["labels"][k] == IGNORE_INDEX for k in starts)
    # every example appears exactly once
    packed = sorted(tuple(x) for r in rows for x in _split(r))
    assert packed == sorted(tuple(f["input_ids"]) for f in feats)


def _split(row: dict) -> list[list[int]]:
    out = []
    for tok_id, pos in zip(row["input_ids"], row["position_ids"], strict=True):
        if pos == 0:
            out.append([])
        out[-1].append(tok_id)
    return out


def test_packed_rows_do_not_attend_across_examples() -> None:
    import torch

    tok = make_tokenizer()
    model = make_model(len(tok)).eval()
    feats = _features(tok, 3)
    rows = pack(feats, max_length=1024)
    assert len(rows) == 1
    collator = Collator(tok.pad_token_id)
    batch = collator(
        [rows[0], feats[0] | {"position_ids": list(range(len(feats[0]["input_ids"])))}]
    )
    assert "attention_mask" not in batch and batch["use_cache"] is False
    model.train()  # as in training: a forward that would build a KV cache if allowed to
    with torch.no_grad():
        labels = batch.pop("labels")
        packed_logits = model(**batch).logits[0]
        offset = 0
        for f in feats:  # pack keeps the original order inside a row
            ids = torch.tensor([f["input_ids"]])
            alone = model(input_ids=ids).logits[0]
            n = len(f["input_ids"])
            torch.testing.assert_close(
                packed_logits[offset : offset + n], alone, atol=1e-5, rtol=1e-4
            )
            offset += n
        # and the loss of a packed row equals the loss over the same labelled tokens unpacked
        packed_loss = model(
            input_ids=batch["input_ids"][:1],
            position_ids=batch["position_ids"][:1],
            labels=labels[:1],
            use_cache=False,
        ).loss
        plain = collator(feats)
        plain_logits = model(
            input_ids=plain["input_ids"], attention_mask=plain["attention_mask"]
        ).logits
        shift = plain["labels"][:, 1:]
        ce = torch.nn.functional.cross_entropy(
            plain_logits[:, :-1].reshape(-1, plain_logits.shape[-1]),
            shift.reshape(-1),
            ignore_index=IGNORE_INDEX,
        )
        torch.testing.assert_close(packed_loss, ce, atol=1e-5, rtol=1e-4)


def test_collator_pads_and_counts_real_tokens() -> None:
    c = Collator(pad_token_id=1)
    batch = c([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 1, 1]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert c.tokens == 4
    packed = c(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "position_ids": [0, 1, 0]},
            {"input_ids": [8], "labels": [8], "position_ids": [0]},
        ]
    )
    # padding restarts its positions, forming its own segment
    assert packed["position_ids"].tolist() == [[0, 1, 0], [0, 0, 1]]
