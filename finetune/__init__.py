"""Fine-tuning: tutoring dialogues and QA -> chat examples -> LoRA / QLoRA adapter.

Stages, one module each: ``formats`` (a record of any supported format -> ``ChatExample``, with
the tutor's own system prompt), ``data`` (files, validation, dedupe, split by problem, stats),
``tokens`` (chat template, labels on assistant turns, truncation, packing), ``recipe`` (the
LoRA / QLoRA recipe: setup -> train -> cleanup), ``trainer`` (the Trainer and its callbacks),
``card`` (training card), ``merge`` (adapter + base -> one 16-bit model), ``export`` and
``gguf_vocab`` (the merged model or the adapter as a GGUF file for llama.cpp), ``cli`` (``tutor
finetune``), ``demo`` (``make finetune-demo``).

Nothing here imports torch at import time, so ``tutor --help`` stays instant.
"""

from finetune.data import DataStats, load_file, prepare_examples, split_by_problem
from finetune.errors import DataError, DiskFullError, RunExistsError, TrainingInterrupted
from finetune.formats import FORMATS, ChatExample, convert, detect_format
from finetune.recipe import LoRARecipe, RunResult, lora_recipe, qlora_recipe, run_finetune
from finetune.tokens import ChatEncoder, Collator, pack

__all__ = [
    "FORMATS",
    "ChatEncoder",
    "ChatExample",
    "Collator",
    "DataError",
    "DataStats",
    "DiskFullError",
    "LoRARecipe",
    "RunExistsError",
    "RunResult",
    "TrainingInterrupted",
    "convert",
    "detect_format",
    "load_file",
    "lora_recipe",
    "pack",
    "prepare_examples",
    "qlora_recipe",
    "run_finetune",
    "split_by_problem",
]
