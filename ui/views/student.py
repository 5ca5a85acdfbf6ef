"""The student view: the tutor chat with its practice card, progress, and profile tabs.

``layout`` builds the components (inside the page's Blocks), ``wire`` connects them to the
student handlers. Every turn that may run the language model shares one concurrency group.
"""

from __future__ import annotations

from typing import Any

from tutor.services import MODES
from ui import render
from ui.handlers import NEW_SESSION_OUTPUTS, PROFILE_FIELDS, SESSION_OUTPUTS, TURN_OUTPUTS
from ui.views import Wiring

LM_GROUP = "lm"  # every event that may run the language model shares this concurrency group
MODE_LABELS = {"auto": "Auto", "explain": "Explain", "guide": "Guide me", "practice": "Practice"}
MODE_CHOICES = [(MODE_LABELS[m], m) for m in MODES]


def layout(h: Any, c: dict[str, Any]) -> None:
    """The student view's column (hidden until the page load shows it) and its tabs."""
    import gradio as gr

    with gr.Column(visible=False, elem_id="student-view") as c["student_view"]:
        with gr.Tabs():
            with gr.Tab("💬 Tutor", id="tutor"):
                with gr.Row(equal_height=False):
                    _sessions_column(c)
                    tutor_cfg = h.ctx.config.tutor
                    _chat_column(c, int(tutor_cfg.max_message_chars), tutor_cfg.default_mode)
                    _practice_column(c)
            with gr.Tab("📈 My progress", id="progress") as c["progress_tab"]:
                c["progress"] = gr.HTML(elem_id="progress")
            with gr.Tab("👤 My profile", id="profile"):
                _profile_tab(c)


def _sessions_column(c: dict[str, Any]) -> None:
    import gradio as gr

    with gr.Column(scale=1, min_width=200):
        c["new_btn"] = gr.Button("+ New session", size="sm", elem_id="new-session")
        c["sessions"] = gr.Radio(label="Your sessions", choices=[], elem_id="sessions")
        # the session the chat shows: what turn handlers act on (checked on the server to
        # belong to the signed-in learner)
        c["session_id"] = gr.Textbox(visible=False, elem_id="session-id")


def _chat_column(c: dict[str, Any], max_chars: int, mode: str) -> None:
    """The chat, the mode switch (starting in ``mode``: ``tutor.default_mode``), the message box."""
    import gradio as gr

    with gr.Column(scale=4, min_width=420):
        c["chat"] = gr.Chatbot(
            elem_id="chat",
            height=540,
            show_label=False,
            latex_delimiters=render.LATEX_DELIMITERS,
            sanitize_html=True,
            feedback_options=None,
            buttons=["copy"],
            layout="bubble",
            placeholder=(
                "### Hi! What shall we learn today?\n"
                "Ask about your course, bring a problem you are stuck on, "
                "or press **Next problem** to practise."
            ),
        )
        with gr.Row(equal_height=False, elem_classes="tool-row"):
            c["mode"] = gr.Radio(
                choices=MODE_CHOICES,
                value=mode,
                show_label=False,
                elem_id="mode",
                scale=5,
                container=False,
            )
            c["hint_btn"] = gr.Button("💡 Hint", scale=1, min_width=100, elem_id="hint")
        with gr.Row(equal_height=True):
            c["msg"] = gr.Textbox(
                placeholder="Ask a question, or type your answer…  (Enter sends)",
                show_label=False,
                elem_id="msg",
                scale=8,
                lines=1,
                max_lines=6,
                max_length=max_chars,
                autofocus=True,
                container=False,
            )
            c["send_btn"] = gr.Button(
                "Send", variant="primary", scale=1, min_width=90, elem_id="send"
            )
            c["stop_btn"] = gr.Button("Stop", variant="stop", scale=1, min_width=90, elem_id="stop")


def _practice_column(c: dict[str, Any]) -> None:
    import gradio as gr

    with gr.Column(scale=2, min_width=280, elem_id="practice-card"):
        gr.Markdown("### 📝 Practice")
        # the open problem and the feedback on the last answer
        c["card"] = gr.Markdown(
            render.PRACTICE_EMPTY,
            elem_id="card",
            latex_delimiters=render.LATEX_DELIMITERS,
            sanitize_html=True,
        )
        c["card_answer"] = gr.Textbox(
            label="Your answer",
            placeholder="e.g. 3/4, 12 cm, x = 4, B",
            elem_id="card-answer",
            max_length=200,
        )
        with gr.Row():
            c["check_btn"] = gr.Button("Check", variant="primary", elem_id="check")
            c["card_hint_btn"] = gr.Button("💡 Hint", elem_id="card-hint")
        c["next_btn"] = gr.Button("Next problem →", elem_id="next-problem")


def _profile_tab(c: dict[str, Any]) -> None:
    import gradio as gr

    gr.Markdown(
        "Tell the tutor about yourself; it adapts its explanations to this.",
        elem_classes="section-note",
    )
    with gr.Row():
        c["prof_grade"] = gr.Textbox(label="Grade or level", max_length=200)
        c["prof_language"] = gr.Textbox(label="Language you prefer", max_length=200)
    c["prof_goals"] = gr.Textbox(label="My goals", lines=2, max_length=2000)
    c["prof_preferences"] = gr.Textbox(
        label="How I like to learn",
        lines=2,
        max_length=2000,
        placeholder="e.g. short explanations, lots of examples, pictures in words",
    )
    c["prof_interests"] = gr.Textbox(label="Interests (for examples)", max_length=2000)
    c["save_profile_btn"] = gr.Button("Save profile", variant="primary")
    c["prof_status"] = gr.Markdown()


def wire(h: Any, c: dict[str, Any], w: Wiring, lm_limit: int) -> None:
    """Connect the student view's events: chat turns first (Stop cancels them), then the rest."""
    turns = _wire_turns(h, c, w, lm_limit)
    w.on(
        c["stop_btn"].click,
        h.stop,
        w.out("session_id"),
        w.out("chat"),
        api_name="stop",
        cancels=turns,
    )
    w.on(
        c["sessions"].input,
        h.open_session,
        w.out("sessions"),
        w.out(*SESSION_OUTPUTS),
        api_name="open_session",
    )
    w.on(c["new_btn"].click, h.new_session, [], w.out(*NEW_SESSION_OUTPUTS), api_name="new_session")
    w.on(c["progress_tab"].select, h.my_progress, [], w.out("progress"), api_name="my_progress")
    w.on(
        c["save_profile_btn"].click,
        h.save_profile,
        w.out(*PROFILE_FIELDS),
        w.out("prof_status"),
        api_name="save_profile",
    )


def _wire_turns(h: Any, c: dict[str, Any], w: Wiring, lm_limit: int) -> list[Any]:
    """The chat turns (send, hint, check, next problem); the events Stop cancels."""
    # One concurrency group for the model; progress shown on the chat only (a spinner on every
    # card field costs the browser ~50 ms before the request leaves).
    lm = {
        "concurrency_limit": lm_limit,
        "concurrency_id": LM_GROUP,
        "show_progress": "minimal",
        "show_progress_on": [c["chat"]],
    }
    turns: list[Any] = []

    def turn(trigger: Any, fn: Any, inputs: list[Any], clear: Any = None, **kw: Any) -> None:
        event = w.on(trigger, fn, inputs, w.out(*TURN_OUTPUTS), **lm, **kw)
        turns.append(event)
        # after the turn, the sessions list (a new session is named after its first message)
        event.then(h.session_list, w.out("session_id"), w.out("sessions"), api_visibility="private")
        if clear is not None:
            # empty the box in the browser right away (registered after the turn, so the turn
            # has read the text first): no round trip, no extra output per token
            trigger(None, None, clear, js="() => ''", queue=False)

    private = {"api_visibility": "private"}
    send_in = w.out("msg", "mode", "session_id")
    turn(c["msg"].submit, h.send, send_in, c["msg"], api_name="send")
    turn(c["send_btn"].click, h.send, send_in, c["msg"], **private)
    turn(c["hint_btn"].click, h.hint, w.out("session_id"), api_name="hint")
    turn(c["card_hint_btn"].click, h.hint, w.out("session_id"), **private)
    check_in = w.out("card_answer", "session_id")
    turn(c["check_btn"].click, h.check, check_in, c["card_answer"], api_name="check")
    turn(c["card_answer"].submit, h.check, check_in, c["card_answer"], **private)
    turn(c["next_btn"].click, h.next_problem, w.out("session_id"), api_name="next_problem")
    return turns
