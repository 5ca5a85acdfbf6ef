"""Gradio web app: student view, teacher view, sign-in. A thin adapter over tutor/ and knowledge_base/."""
