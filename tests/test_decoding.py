"""Decoding that neither loops nor cuts: the sentence filter (ending at a whole sentence when the
token budget runs out, dropping a repeated sentence, stopping a loop), n-gram blocking with the
same tokens on the lean loop and generate, and both through the hf and openai backends with
scripted streams that loop and that run out of budget mid-sentence."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tutor.config import load_config
from tutor.errors import ConfigError
from tutor.lm.base import GenerationOptions, generate
from tutor.lm.hf import HFGenerator
from tutor.lm.openai import OpenAIGenerator
from tutor.lm.resolve import load_causal_lm
from tutor.lm.sentences import (
    MAX_REPEATS,
    TAIL_TOKENS,
    AnswerFilter,
    SentenceFilter,
    next_boundary,
)
from tutor.testing.openai_server import Script, ScriptedServer

MSGS = [{"role": "user", "content": "what is a half ?"}]


def _run(text: str, *, truncated: bool, step: int = 3, **kw: Any) -> tuple[list[str], str]:
    f = SentenceFilter(**kw)
    deltas = [f.feed(text[i : i + step]) for i in range(0, len(text), step)]
    deltas.append(f.flush(truncated=truncated))
    return deltas, "".join(deltas)


# -- the sentence filter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "Pi is about 3.14 and e is 2.71. So their sum is about 5.8",
            "Pi is about 3.14 and e is 2.71.",
        ),
        ("Set $x = 2. 5$ first. Then $y = 3.", "Set $x = 2. 5$ first."),
        ("Use \\(a. b\\) here! Next we take 1", "Use \\(a. b\\) here!"),
        ("1. Write both fractions.\n2. Add the", "1. Write both fractions."),
        ("Pick one, e.g. 1/2 or 1/4. Then 1/2 + 1/", "Pick one, e.g. 1/2 or 1/4."),
        ('She said "try again." Then she wrote 3', 'She said "try again."'),
        ("First line without a stop\nsecond line is cut mid", "First line without a stop"),
        ("Call `f(1). g(2)` now. And then", "Call `f(1). g(2)` now."),
        ("Then\n$$\nx = 1. 5\n$$\nSo the answer", "Then\n$$\nx = 1. 5\n$$"),
    ],
)
def test_budget_cut_ends_at_the_last_whole_sentence(text: str, kept: str):
    """Never inside a number, math, code, a list marker or an abbreviation; in any chunking."""
    for step in (1, 2, 5, len(text)):
        assert _run(text, truncated=True, step=step)[1] == kept


def test_no_whole_sentence_or_own_end_keeps_the_text():
    assert _run("The answer is 3.5 because", truncated=True)[1] == "The answer is 3.5 because"
    text = "It is a half. So write 1/2"
    assert _run(text, truncated=False)[1] == text  # the model ended it: nothing dropped
    off = SentenceFilter(end_at_sentence=False)  # only repeats dropped: the text streams
    assert off.feed("It is a half. So") == "It is a half. So"
    assert off.feed(" write") == " write"
    assert off.flush(truncated=True) == ""


def test_unknown_budget_streams_a_sentence_at_a_time():
    deltas, _ = _run("A half is one of two equal parts. A quarter is one of four", truncated=True)
    assert deltas[0] == ""  # no budget told: held back until the sentence is over
    done = [d for d in deltas if d]
    assert done == ["A half is one of two equal parts."]
    assert next_boundary("It costs 3.") is None  # "3." may go on as "3.5": wait for more


def _feed_words(f: SentenceFilter, text: str, budget: int) -> list[str]:
    """``text`` a word a delta, one token each, against a budget of ``budget`` tokens."""
    words = text.split(" ")
    return [f.feed(w if i == 0 else " " + w, budget - i - 1) for i, w in enumerate(words)]


def test_streams_token_by_token_well_inside_the_budget():
    f = SentenceFilter()
    text = "A half is one of two equal parts. A quarter is one of four."
    deltas = _feed_words(f, text, budget=500)
    assert deltas[:3] == ["A", " half", " is"]  # before the first sentence ends
    assert "".join(deltas) + f.flush(truncated=False) == text


def test_repeat_is_held_only_while_it_matches_a_sentence_said():
    f = SentenceFilter()
    said = "Add the numerators. Keep the denominator."
    assert "".join(_feed_words(f, said, budget=500)) == said
    assert f.feed(" Add", 400) == ""  # the start of a sentence already said: held
    assert f.feed(" the", 399) == ""
    assert f.feed(" numbers", 398) == " Add the numbers"  # differs now: out at once
    assert f.feed(" first.", 397) == " first."
    assert f.feed(" Keep the", 396) == ""
    assert f.feed(" denominator.", 395) == ""
    assert f.feed(" Then", 394) == " Then"  # "." + space: the repeat ended and was dropped
    assert f.dropped == 1 and f.feed(" simplify.", 393) == " simplify."


def test_budget_tail_holds_a_new_sentence_and_a_cut_drops_it():
    f = SentenceFilter()
    assert f.feed("One half is two quarters.", TAIL_TOKENS + 5) == "One half is two quarters."
    assert f.feed(" So one", TAIL_TOKENS) == ""  # starts inside the tail window: held
    assert f.feed(" half plus", 3) == ""
    assert f.flush(truncated=True) == ""  # cut: ends at the last whole sentence
    g = SentenceFilter()
    assert g.feed("One half.", TAIL_TOKENS + 5) + g.feed(" So one", 2) == "One half."
    assert g.feed(" half.", 1) + g.flush(truncated=False) == " So one half."  # it ended


def test_sentence_streaming_before_the_tail_and_cut_ends_with_an_ellipsis():
    f = SentenceFilter()
    long = "To add one half and one quarter you first write both with the same denominator"
    deltas = _feed_words(f, long, budget=TAIL_TOKENS + 4)
    assert deltas[0] == "To" and "".join(deltas) == long  # began before the window: streams
    assert f.flush(truncated=True) == " …"  # cut inside it: marked as cut, not left bare
    g = SentenceFilter(end_at_sentence=False)
    assert "".join(_feed_words(g, long, budget=10)) + g.flush(truncated=True) == long


def test_repeated_sentence_is_dropped_and_a_loop_ends_the_answer():
    said = "Add the numerators. Keep the denominator. Add the numerators. Then simplify."
    assert (
        _run(said, truncated=False)[1] == "Add the numerators. Keep the denominator. Then simplify."
    )
    loop = "Keep the denominator. " + "Add the numerators. " * 8 + "Never shown."
    f = SentenceFilter()
    out = f.feed(loop) + f.flush(truncated=False)
    assert out == "Keep the denominator. Add the numerators."
    assert f.looped and f.dropped == MAX_REPEATS
    assert _run("Yes. Yes. Yes. Yes. Yes.", truncated=False)[1] == "Yes. Yes. Yes. Yes. Yes."
    keep = SentenceFilter(drop_repeats=False)
    assert keep.feed(said) + keep.flush(truncated=False) == said


def test_answer_filter_chains_stop_strings():
    f = AnswerFilter(["END"], end_at_sentence=True, drop_repeated_sentences=True)
    out = f.feed("One half. Then twoEND three.")
    assert f.stopped
    # a stop string is the model's own end: the words before it stay
    assert out + f.finish(truncated=True) == "One half. Then two"
    plain = AnswerFilter([])
    assert plain.sentences is None and plain.feed("a b") == "a b"


# -- n-gram blocking: same tokens on both decode paths ---------------------------------------


def _tiny(tmp_path: Path):
    from tutor.testing.tiny_llama import save_tiny_llama

    return load_causal_lm(str(save_tiny_llama(tmp_path / "m")), dtype="float32", device="cpu")


def _ngrams(ids: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


def test_lean_loop_and_generate_block_ngrams_alike(tmp_path: Path):
    import torch

    from tutor.lm.fast import LlamaDecoder

    model, tok = _tiny(tmp_path)
    ids = torch.tensor(
        [tok.apply_chat_template(MSGS, add_generation_prompt=True, return_dict=False)]
    )
    dec = LlamaDecoder(model, 256)
    base = dict(max_new_tokens=60, do_sample=False, eos_token_id=None)
    loose = dec.generate(ids, **base)[0].tolist()
    grams = _ngrams(loose, 3)
    assert len(set(grams)) < len(grams), "the random model repeats itself without the option"
    for kw in (dict(no_repeat_ngram_size=3), dict(no_repeat_ngram_size=2, repetition_penalty=1.2)):
        with torch.inference_mode():
            ref = model.generate(
                ids, attention_mask=torch.ones_like(ids), pad_token_id=1, **base, **kw
            )
        got = dec.generate(ids, **base, **kw)
        assert got.tolist() == ref.tolist()
        grams = _ngrams(got[0].tolist(), int(kw["no_repeat_ngram_size"]))
        assert len(set(grams)) == len(grams)


def test_hf_backend_streams_alike_on_both_paths_with_the_options(tmp_path: Path):
    model, tok = _tiny(tmp_path)
    opts = GenerationOptions(
        max_new_tokens=30,
        repetition_penalty=1.1,
        no_repeat_ngram_size=3,
        end_at_sentence=True,
        drop_repeated_sentences=True,
    )
    lean = HFGenerator(model, tok, defaults=opts, stream_timeout=30)
    plain = HFGenerator(model, tok, defaults=opts, stream_timeout=30, fast_decode=False)
    assert lean.decode_path == "lean" and plain.decode_path == "generate"
    assert generate(lean, MSGS) == generate(plain, MSGS)
    assert lean.last_stats["new_tokens"] == plain.last_stats["new_tokens"] > 0


# -- the hf backend with a scripted decode ---------------------------------------------------


def _scripted_hf(tmp_path: Path, text: str, *, eos: bool, **options: Any) -> HFGenerator:
    """An hf backend whose lean decoder streams the tokens of ``text`` (then the end token when
    ``eos``), honouring the stopping criteria like the real loop."""
    import torch

    model, tok = _tiny(tmp_path)
    gen = HFGenerator(model, tok, defaults=GenerationOptions(**options), stream_timeout=30)
    script = tok.encode(text, add_special_tokens=False) + ([3] if eos else [])
    emitted: list[int] = []

    def fake_generate(input_ids: Any, *, max_new_tokens: int, **kw: Any) -> Any:
        streamer, stopping = kw["streamer"], kw["stopping_criteria"]
        ids = input_ids.reshape(1, -1)
        streamer.put(ids)
        for t in script[:max_new_tokens]:
            ids = torch.cat([ids, torch.tensor([[t]])], dim=-1)
            emitted.append(t)
            streamer.put(torch.tensor([t]))
            # as slow as the consumer, like a real model: the next token once this one's text
            # was taken
            deadline = time.monotonic() + 5
            while not streamer.text_queue.empty() and time.monotonic() < deadline:
                time.sleep(0.001)
            if t == 3 or bool(stopping(ids, None).all()):
                break
        streamer.end()
        return ids

    gen.decoder.generate = fake_generate
    gen.emitted = emitted  # type: ignore[attr-defined]
    return gen


SAID = "a half is the numerator of the fraction . then the quarter is"


@pytest.mark.parametrize("eos", [False, True])
def test_hf_budget_cut_mid_sentence(tmp_path: Path, eos: bool):
    n = len(SAID.split())
    gen = _scripted_hf(tmp_path, SAID, eos=eos, max_new_tokens=n + 1 if eos else n)
    opts = dict(end_at_sentence=True, drop_repeated_sentences=True)
    out = generate(gen, MSGS, **opts)
    if eos:  # the model ended the answer itself: its last words stay
        assert out.strip() == SAID
    else:
        assert out.strip() == "a half is the numerator of the fraction ."
    assert generate(gen, MSGS).strip() == SAID  # the options off: the text as decoded


def test_hf_streams_token_by_token_inside_the_budget(tmp_path: Path):
    gen = _scripted_hf(tmp_path, SAID, eos=True, max_new_tokens=200)
    deltas = list(gen.stream(MSGS, end_at_sentence=True, drop_repeated_sentences=True))
    first_stop = next(i for i, d in enumerate(deltas) if "." in d)
    assert first_stop >= 3, deltas  # words came out before the first sentence ended
    assert "".join(deltas).strip() == SAID


def test_hf_sentence_longer_than_the_tail_is_cut_with_an_ellipsis(tmp_path: Path):
    words = ("a half is the numerator of the fraction " * 10).split()
    budget = TAIL_TOKENS + 8
    gen = _scripted_hf(tmp_path, " ".join(words), eos=False, max_new_tokens=budget)
    deltas = list(gen.stream(MSGS, end_at_sentence=True, drop_repeated_sentences=True))
    assert len(deltas) > 3
    assert "".join(deltas).strip() == " ".join(words[:budget]) + " …"


def test_hf_loop_is_cut_and_decoding_stops(tmp_path: Path):
    loop = "then add the numerator . " * 40
    gen = _scripted_hf(tmp_path, loop, eos=False, max_new_tokens=200)
    out = generate(gen, MSGS, drop_repeated_sentences=True)
    assert out.strip() == "then add the numerator ."
    # the worker stopped soon after the loop was seen, not at the budget
    assert len(gen.emitted) <= 5 * (MAX_REPEATS + 2)  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "tutor-generate" and t.is_alive()]


# -- the openai backend ----------------------------------------------------------------------

REPLY = (
    "Use the same denominator. Then 1/2 is 2/4, and 2/4 + 1/4 = 3/4. "
    "Use the same denominator. So the answer is three quarters of the"
)


def _openai(srv: ScriptedServer, **options: Any) -> OpenAIGenerator:
    return OpenAIGenerator(
        srv.base_url,
        "scripted",
        timeout=5,
        connect_timeout=2,
        defaults=GenerationOptions(**options),
    )


def test_openai_ends_at_a_sentence_and_drops_a_repeat():
    on = dict(end_at_sentence=True, drop_repeated_sentences=True, repetition_penalty=1.1)
    with ScriptedServer(Script(reply=lambda m: REPLY)) as srv:
        gen = _openai(srv, max_new_tokens=20, **on)
        assert (
            generate(gen, MSGS) == "Use the same denominator. Then 1/2 is 2/4, and 2/4 + 1/4 = 3/4."
        )
        req = srv.script.requests[-1]
        assert req["repetition_penalty"] == req["repeat_penalty"] == 1.1
        # the whole reply (finish reason "stop"): the tail stays, the repeat still goes
        whole = generate(gen, MSGS, max_new_tokens=200)
        assert whole == REPLY.replace(" Use the same denominator.", "", 1)
        assert generate(_openai(srv, max_new_tokens=20), MSGS) == " ".join(REPLY.split()[:20]) + " "
        assert "repetition_penalty" not in srv.script.requests[-1]  # 1.0: nothing sent


def test_openai_streams_inside_the_budget_and_holds_the_tail():
    on = dict(end_at_sentence=True, drop_repeated_sentences=True)
    with ScriptedServer(Script(reply=lambda m: REPLY)) as srv:
        deltas = list(_openai(srv, max_new_tokens=200, **on).stream(MSGS))
        assert deltas[:3] == ["Use ", "the ", "same "]  # a chunk counts as a token
        tail = list(_openai(srv, max_new_tokens=TAIL_TOKENS, **on).stream(MSGS))
        assert tail[0] == "Use the same denominator."  # all inside the tail: whole sentences


def test_openai_server_refusing_the_penalty_is_asked_again_without_it():
    script = Script(reply=lambda m: "Fine.", refuse_fields=("repeat_penalty",))
    with ScriptedServer(script) as srv:
        gen = _openai(srv, repetition_penalty=1.2)
        assert generate(gen, MSGS) == "Fine."
        assert [("repeat_penalty" in r) for r in script.requests] == [True, False]
        assert generate(gen, MSGS) == "Fine." and not gen.send_penalty
        assert len(script.requests) == 3 and "repeat_penalty" not in script.requests[-1]


# -- config ----------------------------------------------------------------------------------


def test_config_defaults_and_errors():
    lm = load_config(env={}).lm
    assert lm.end_at_sentence and lm.drop_repeated_sentences and lm.repetition_penalty > 1.0
    env = {"TUTOR_LM__NO_REPEAT_NGRAM_SIZE": "4", "TUTOR_LM__END_AT_SENTENCE": "false"}
    lm = load_config(env=env).lm
    assert lm.no_repeat_ngram_size == 4 and not lm.end_at_sentence
    with pytest.raises(ConfigError, match="no_repeat_ngram_size"):
        load_config(env={"TUTOR_LM__NO_REPEAT_NGRAM_SIZE": "-1"})
    with pytest.raises(ConfigError, match="repetition_penalty"):
        load_config(env={"TUTOR_LM__REPETITION_PENALTY": "0"})
