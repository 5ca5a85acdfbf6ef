"""QLoRA vs bf16 LoRA on one CUDA GPU: training tokens/s and peak GPU memory.

A randomly initialised causal LM of a real 1-3B shape (weights do not change speed or memory),
the same LoRA (r=16, alpha=32, all linear layers), batch, sequence length and activation
checkpointing for both variants:

- ``lora-bf16``: bf16 base, fused AdamW;
- ``qlora-nf4``: the same base saved and reloaded 4-bit NF4 with double quantization and bf16
  compute (bitsandbytes), ``prepare_model_for_kbit_training``, paged 8-bit AdamW — what
  ``finetune.qlora = true`` does.

Each variant runs in its own process (clean peak-memory counters). About 2-4 minutes on one
recent GPU with the defaults:

    python benchmarks/qlora_gpu.py [--shape smollm2-1.7b] [--batch 4] [--seq 1024] [--steps 10]

Without CUDA it stops with a message (exit status 2). ``--cpu-smoke`` runs the same code path on
the CPU with a tiny shape (bitsandbytes 0.50 does NF4 on CPU), to check the script itself;
its figures (peak RSS instead of GPU memory) say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import Recorder  # noqa: E402

# Published configurations (hidden, intermediate, layers, heads, kv heads, vocab, tied).
SHAPES = {
    "smollm2-1.7b": (2048, 8192, 24, 32, 32, 49152, True),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 128256, True),
    "qwen2.5-1.5b": (1536, 8960, 28, 12, 2, 151936, True),
    "llama-3.2-3b": (3072, 8192, 28, 24, 8, 128256, True),
}
TINY = (64, 128, 2, 4, 2, 1024, True)  # --cpu-smoke only
VARIANTS = ("lora-bf16", "qlora-nf4")


def build_base(shape: str, path: Path, device: str) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inter, layers, heads, kv, vocab, tied = TINY if shape == "tiny" else SHAPES[shape]
    cfg = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        max_position_embeddings=8192,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(str(path))


def child(args: argparse.Namespace) -> None:
    import resource

    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    device = args.device
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if args.variant == "qlora-nf4":
        import bitsandbytes as bnb

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            args.base,
            quantization_config=quant,
            dtype=torch.bfloat16,
            device_map={"": 0 if cuda else "cpu"},
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.bfloat16).to(device)
    model.config.use_cache = False
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear")
    model = get_peft_model(model, lora)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.variant == "qlora-nf4":
        opt = bnb.optim.PagedAdamW8bit(params, lr=2e-4)
    else:
        opt = torch.optim.AdamW(params, lr=2e-4, fused=True)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, args.seq), device=device)
    model.train()

    def step() -> float:
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - t0
    if cuda:
        peak, name = torch.cuda.max_memory_allocated() / 2**30, torch.cuda.get_device_name()
    else:  # --cpu-smoke: the process's peak RSS (KiB on Linux)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        name = f"CPU ({torch.get_num_threads()} threads, peak RSS not GPU memory)"
    out = {
        "variant": args.variant,
        "tokens_per_s": args.batch * args.seq * args.steps / seconds,
        "peak_gib": peak,
        "loss": loss,
        "gpu": name,
    }
    print("RESULT " + json.dumps(out), flush=True)


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-1.7b")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="check the script on the CPU: tiny shape, 2 steps, peak RSS (figures mean nothing)",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    return ap.parse_args()


def _run_variants(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each variant in its own process (a clean peak-memory figure) on one random base model."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="qlora-bench-") as tmp:
        base = Path(tmp) / "base"
        print(f"building a random {args.shape} ...", file=sys.stderr, flush=True)
        build_base(args.shape, base, args.device)
        for variant in VARIANTS:
            print(f"running {variant} ...", file=sys.stderr, flush=True)
            cmd = [
                sys.executable, __file__, "--child", "--variant", variant, "--base", str(base),
                "--batch", str(args.batch), "--seq", str(args.seq),
                "--steps", str(args.steps), "--warmup", str(args.warmup),
                *(["--cpu-smoke"] if args.cpu_smoke else []),
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                sys.exit(f"{variant} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(line[len("RESULT ") :]))
    return rows


def _report(rec: Recorder, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    base_row = rows[0]
    print(
        f"\n{args.shape} (random weights) on {base_row['gpu']}: batch {args.batch} x "
        f"{args.seq} tokens, LoRA r=16 all-linear, activation checkpointing, {args.steps} steps\n"
    )
    memory = "peak RSS GiB" if args.cpu_smoke else "peak GPU memory GiB"
    columns = ["variant", "tokens/s", "vs bf16 LoRA", memory, "vs bf16 LoRA (memory)"]
    table = [
        [
            r["variant"],
            f"{r['tokens_per_s']:.0f}",
            f"{r['tokens_per_s'] / base_row['tokens_per_s']:.2f}x",
            f"{r['peak_gib']:.2f}",
            f"{r['peak_gib'] / base_row['peak_gib']:.2f}x",
        ]
        for r in rows
    ]
    rec.meta(device=base_row["gpu"], shape=args.shape, compute_dtype="torch.bfloat16")
    rec.samples("variants", rows)
    print(rec.table("variants", columns, table, align="lrrrr"))


def main() -> None:
    args = _parse_args()

    import torch

    if args.cpu_smoke:
        args.device, args.shape = "cpu", "tiny"
        if not args.child:
            args.batch, args.seq, args.steps, args.warmup = 2, 64, 2, 1
    elif not torch.cuda.is_available():
        print(
            "error: benchmarks/qlora_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False "
            "here); run it on a machine with an NVIDIA GPU and the [gpu] extra (bitsandbytes), "
            "or check the script itself on this CPU with --cpu-smoke",
            file=sys.stderr,
        )
        sys.exit(2)
    if args.child:
        child(args)
        return
    import importlib.util

    rec = Recorder(
        "qlora_gpu",
        args,
        tag="cpu-smoke" if args.cpu_smoke else "",
        kind="smoke" if args.cpu_smoke else "full",
    )
    if importlib.util.find_spec("bitsandbytes") is None:
        sys.exit("error: the QLoRA variant needs bitsandbytes: pip install 'offline-tutor[gpu]'")
    rows = _run_variants(args)
    _report(rec, args, rows)
    rec.write()


if __name__ == "__main__":
    main()
