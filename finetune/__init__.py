"""Fine-tuning: tutoring dialogues and QA -> chat examples -> LoRA / QLoRA adapter."""
