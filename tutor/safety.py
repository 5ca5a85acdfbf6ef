"""Safety: requests the tutor must not help with, and the kind, fixed replies it gives instead.

These checks are deterministic on purpose: a 135M model cannot be trusted to refuse. The
replies do not come from the LM, so no prompt injection can change them.
"""

from __future__ import annotations

import re

_SELF_HARM = re.compile(
    r"\b(kill myself|suicid\w*|self[- ]?harm|hurt myself|cut myself|end my life|want to die)\b",
    re.I,
)
_UNSAFE = re.compile(
    r"\b(make|build|buy|get|use)\b.{0,30}\b(bomb|explosives?|gun|weapon|poison|meth|drugs?)\b|"
    r"\b(how to|help me)\b.{0,30}\b(hack|steal|cheat on (the|my) (exam|test)|hurt (someone|somebody|him|her|them))\b|"
    r"\b(porn\w*|nude|naked|sex(ual|y)?)\b",
    re.I,
)

SELF_HARM_REPLY = (
    "I'm really sorry you're feeling this way. You deserve support right now: please talk to "
    "a trusted adult, a teacher or a school counsellor, or call your local emergency number "
    "or a crisis helpline. I'm here to help with your school work whenever you want."
)
UNSAFE_REPLY = (
    "I can't help with that. I'm your tutor for the course topics, so let's get back to "
    "learning: is there a topic or a problem you'd like to work on?"
)
OFFTOPIC_REPLY = (
    "That's outside what I can help with here. I'm your tutor for the course topics — ask me "
    'about a topic, or say "practice" for a problem to try.'
)
ABOUT_REPLY = (
    "I'm an AI tutor that runs on this computer, with no cloud account. I explain from your "
    "course material and cite it, help you work through problems step by step without giving "
    "the answer away, and give practice problems that fit what you have mastered. Use the mode "
    'switch for Explain, Guide or Practice, the 💡 button for a hint, or say "next" for a problem.'
)
GREETING_REPLY = (
    "Hi! I'm your tutor. Ask me about a topic from your course, show me a problem you're "
    'working on, or say "practice" to get a problem to try.'
)


def is_unsafe(text: str) -> bool:
    return bool(_SELF_HARM.search(text) or _UNSAFE.search(text))


def redirect_reply(text: str) -> str:
    """The fixed reply for an unsafe request."""
    if _SELF_HARM.search(text):
        return SELF_HARM_REPLY
    return UNSAFE_REPLY
