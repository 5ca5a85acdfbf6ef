"""Core commands: ``tutor config show``, ``tutor ask``, ``tutor chat``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, cast

from tutor.cli.common import add_lm_options, log_to_file
from tutor.errors import InputError, TutorError
from tutor.services import MODES

if TYPE_CHECKING:
    from tutor.store.protocol import LearnerStoreLike


def register(sub: Any, common: argparse.ArgumentParser) -> None:

    p = sub.add_parser("config", parents=[common], help="show the resolved configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser("show", parents=[common], help="print the resolved config as TOML")
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    add_lm_options(show)
    show.set_defaults(func=cmd_config_show)

    p = sub.add_parser(
        "bench-lm",
        parents=[common],
        help="time the CPU decode paths (float32, bf16, int4) and keep the fastest",
    )
    add_lm_options(p)
    p.set_defaults(func=cmd_bench_lm)

    p = sub.add_parser("ask", parents=[common], help="stream one answer to stdout")
    p.add_argument("question", nargs="+", help="the question")
    p.add_argument("--system", default=None, help="system prompt (default: the tutor persona)")
    add_lm_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "chat",
        parents=[common],
        help="chat with the tutor in the terminal (keeps history)",
        description="Chat with the tutor as a learner: grounded answers with sources, hints, "
        "practice items with grading and mastery. Commands inside the chat: /mode "
        "auto|explain|guide|practice, /hint, /practice, /progress, /new, /quit.",
    )
    p.add_argument(
        "--learner", default="student", help="learner name (created if new; default: student)"
    )
    p.add_argument(
        "--collection",
        dest="kb.collection",
        default=None,
        help="course collection (default: kb.collection)",
    )
    p.add_argument(
        "--mode",
        dest="tutor.default_mode",
        choices=list(MODES),
        default=None,
        help="the mode the chat starts in (default: tutor.default_mode, auto)",
    )
    p.add_argument(
        "--new", action="store_true", help="start a new session instead of resuming the last one"
    )
    p.add_argument("--show-prompt", action="store_true", help="print each turn's prompt to stderr")
    p.add_argument(
        "--raw",
        action="store_true",
        help="plain LM chat without the tutor (no retrieval, no learner model)",
    )
    p.add_argument("--system", default=None, help="system prompt for --raw")
    add_lm_options(p)
    p.set_defaults(func=cmd_chat)


def cmd_config_show(args: argparse.Namespace, config: Any) -> int:
    if args.json:
        import json

        print(json.dumps(config.to_dict(), indent=2))
    else:
        print(config.to_toml(), end="")
        from tutor.lm.bundled_lora import adapter_note

        print("\n".join([*decode_path_notes(config), adapter_note(config.lm)]))
    return 0


def decode_path_notes(config: Any) -> list[str]:
    """TOML comments: which CPU decode path the model runs on, and why."""
    from tutor.lm.speed import describe

    lm = config.lm
    if lm.backend == "llamacpp":
        return ["# decode path: llama.cpp's own kernels on the GGUF's quantized weights"]
    if lm.backend != "hf":
        return [f"# decode path: the {lm.backend} backend's server decides"]
    if lm.dtype != "auto":
        return [f"# decode path: lm.dtype = {lm.dtype!r}, set in the config (not measured)"]
    lines = describe(config.paths.models_dir)
    if not lines:
        return [
            "# decode path: not measured on this machine yet; the first start times float32,",
            "# bfloat16 and the int4 repack and keeps the fastest (`tutor bench-lm` does it now)",
        ]
    head = "# decode path (lm.dtype = 'auto': measured here; `tutor bench-lm` measures again):"
    return [head, *(f"#   {line}" for line in lines)]


def cmd_bench_lm(args: argparse.Namespace, config: Any) -> int:
    """Time every CPU decode path of the configured model again and remember the fastest."""
    import time

    from tutor.lm.bundled_lora import served_adapter
    from tutor.lm.resolve import load_causal_lm

    lm = config.lm
    if lm.backend != "hf":
        raise InputError(f"tutor bench-lm times the hf backend; lm.backend is {lm.backend!r}")
    log_to_file(config.paths.home_dir / "logs" / "tutor.log")
    print(f"timing the decode paths of {lm.model} (a few seconds)…", file=sys.stderr)
    t0 = time.perf_counter()
    model, _ = load_causal_lm(
        lm.model,
        models_dir=config.paths.models_dir,
        device="cpu",
        adapter=served_adapter(lm),
        merge_adapter=True,
        quantize=lm.quantize,
        remeasure=True,
        native=lm.native_decode,
    )
    choice = model.tutor_decode_path
    for name, rate in sorted(choice.rates.items(), key=lambda kv: -kv[1]):
        print(f"{name:>40}  {rate:6.1f} tok/s{'  <- chosen' if name == choice.label else ''}")
    print(f"chosen: {choice.summary()} ({time.perf_counter() - t0:.1f} s)")
    if lm.dtype != "auto":
        print(f"note: lm.dtype = {lm.dtype!r} in the config overrides this choice")
    return 0


DEFAULT_SYSTEM = (
    "You are a patient, encouraging tutor. Explain clearly and briefly, check understanding "
    "with a question, and guide the student to the answer instead of just giving it."
)


# what `tutor ask` and `tutor chat --raw` print beside the model's text: nothing checked it
UNCHECKED = (
    "note: the model alone wrote this; no course passage, grader or verifier checked it "
    "(tutor chat answers with the tutor's checks)"
)


def _stream_to_stdout(gen: Any, messages: list[dict[str, str]]) -> str:
    parts: list[str] = []
    for delta in gen.stream(messages):
        parts.append(delta)
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    return "".join(parts)


def cmd_ask(args: argparse.Namespace, config: Any) -> int:
    from tutor.builders import build_generator

    question = " ".join(args.question).strip()
    if not question:
        raise InputError(
            'the question is empty; pass the question as text: tutor ask "What is 3/4 of 8?"'
        )
    log_to_file(config.paths.home_dir / "logs" / "tutor.log")
    gen = build_generator(config)
    messages = [
        {"role": "system", "content": args.system or DEFAULT_SYSTEM},
        {"role": "user", "content": question},
    ]
    _stream_to_stdout(gen, messages)
    print(UNCHECKED, file=sys.stderr)
    return 0


def cmd_chat(args: argparse.Namespace, config: Any) -> int:
    # library warnings (a model loading at the first message) go to the log, not the answer
    log_to_file(config.paths.home_dir / "logs" / "tutor.log")
    if not args.raw:
        return _agent_chat(args, config)
    from tutor.builders import build_generator

    gen = build_generator(config)
    history: list[dict[str, str]] = []
    system = {"role": "system", "content": args.system or DEFAULT_SYSTEM}
    print(
        f"Chatting with {gen.name} alone: nothing it says is checked (tutor chat without --raw"
        " checks answers). /reset clears the history, /quit (or Ctrl-D) leaves.",
        file=sys.stderr,
    )
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        text = line.strip()
        if text in {"/quit", "/exit"}:
            return 0
        if text == "/reset":
            history.clear()
            print("history cleared", file=sys.stderr)
            continue
        if not text:
            print("error: the message is empty; type a question or an answer", file=sys.stderr)
            continue
        turn = [system, *history, {"role": "user", "content": text}]
        sys.stdout.write("tutor> ")
        try:
            answer = _stream_to_stdout(gen, turn)
        except KeyboardInterrupt:
            print("\n(stopped)", file=sys.stderr)
            continue
        except TutorError as e:
            print(f"\nerror: {e}", file=sys.stderr)
            continue
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        return None


def render_event(event: Any, *, out: Any = None, err: Any = None) -> None:
    """Print one agent event for a terminal: text to stdout as it streams, the rest after."""
    out = out or sys.stdout  # looked up per call: sys.stdout may be replaced (tests, pagers)
    err = err or sys.stderr
    kind = event.kind
    if kind == "text":
        out.write(event.text)
        out.flush()
    elif kind == "reset":
        out.write("\n(rephrasing…)\n")
    elif kind == "grading":
        mark = "✓ correct" if event.correct else "✗ not yet"
        out.write(f"[{mark}: {event.code}, attempt {event.attempts}]\n")
    elif kind == "mastery":
        why = event.why_unmoved()
        out.write(
            f"[{event.skill}: mastery {event.before:.0%} → {event.after:.0%}"
            f"{f' ({why})' if why else ''}, P(next correct) {event.p_correct_next:.0%}]\n"
        )
    elif kind == "sources":
        cited = [s for s in event.sources if s.cited]
        head = "Sources:" if cited else "Related in your course (this reply cites none of it):"
        if event.sources:
            rows = "\n".join(f"  [{s.index}] {s.citation}" for s in cited or event.sources)
            out.write(f"\n\n{head}\n{rows}")
    elif kind == "done":
        out.write("\n")
        out.flush()
        if event.prompt:
            for m in event.prompt:
                err.write(f"--- {m['role']} ---\n{m['content']}\n")
        err.write(f"({event.mode}; {event.timings.get('total_ms', 0) / 1000:.1f} s)\n")


def _agent_chat(args: argparse.Namespace, config: Any) -> int:
    from tutor.builders import build_agent

    agent = build_agent(config, show_prompt=args.show_prompt)
    store = cast("LearnerStoreLike", agent.store)  # build_agent opened the full LearnerStore
    learner = store.get_or_create_learner(args.learner)
    collection = config.kb.collection
    sessions = [s for s in store.list_sessions(learner.id) if s.collection == collection]
    if sessions and not args.new:
        session = sessions[-1]
        n = len(store.messages(session.id))
        print(f"Resuming your session ({n} messages). /new starts a fresh one.", file=sys.stderr)
    else:
        session = store.start_session(learner.id, collection=collection)
    mode = config.tutor.default_mode
    print(
        f"Hi {learner.display_name or learner.name}! Tutor on course '{collection}' with "
        f"{agent.generator.name}. Ask a question, say 'practice', or /help.",
        file=sys.stderr,
    )
    while True:
        line = _read_line("you> ")
        if line is None:
            return 0
        text = line.strip()
        if text in ("/quit", "/exit"):
            return 0
        if text == "/help":
            print(
                "/mode auto|explain|guide|practice  /hint  /practice  /progress  /new  /quit",
                file=sys.stderr,
            )
            continue
        if text.startswith("/mode"):
            choice = text.split(maxsplit=1)[1].strip() if " " in text else ""
            if choice not in MODES:
                print("error: use /mode auto, explain, guide or practice", file=sys.stderr)
            else:
                mode = choice
                print(f"mode: {mode}", file=sys.stderr)
            continue
        if text == "/new":
            session = store.start_session(learner.id, collection=collection)
            print("new session started", file=sys.stderr)
            continue
        if text == "/progress":
            for m in sorted(
                store.mastery(learner.id, store.skills(collection)).values(), key=lambda m: m.skill
            ):
                print(
                    f"  {m.skill:<22} mastery {m.p_mastery:5.0%}  P(next correct) {m.p_correct:5.0%}  ({m.n_correct}/{m.n_attempts})"
                )
            continue
        if text == "/hint":
            text = "hint"
        elif text == "/practice":
            text = "give me a problem"
        if not text:
            print("error: the message is empty; type a question or an answer", file=sys.stderr)
            continue
        sys.stdout.write("tutor> ")
        try:
            for event in agent.respond(learner, session, text, mode=mode):
                render_event(event)
        except KeyboardInterrupt:
            print("\n(stopped)", file=sys.stderr)
            continue
        except TutorError as e:
            print(f"\nerror: {e}", file=sys.stderr)
            continue
