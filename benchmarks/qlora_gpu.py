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
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Published configurations (hidden, intermediate, layers, heads, kv heads, vocab, tied).
SHAPES = {
    "smollm2-1.7b": (2048, 8192, 24, 32, 32, 49152, True),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 128256, True),
    "qwen2.5-1.5b": (1536, 8960, 28, 12, 2, 151936, True),
    "llama-3.2-3b": (3072, 8192, 28, 24, 8, 128256, True),
}
VARIANTS = ("lora-bf16", "qlora-nf4")


def build_base(shape: str, path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inter, layers, heads, kv, vocab, tied = SHAPES[shape]
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
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(str(path))


def child(args: argparse.Namespace) -> None:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

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
            args.base, quantization_config=quant, dtype=torch.bfloat16, device_map={"": 0}
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.bfloat16).cuda()
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
    ids = torch.randint(0, vocab, (args.batch, args.seq), device="cuda")
    model.train()

    def step() -> float:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    out = {
        "variant": args.variant,
        "tokens_per_s": args.batch * args.seq * args.steps / seconds,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "loss": loss,
        "gpu": torch.cuda.get_device_name(),
    }
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-1.7b")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            "error: benchmarks/qlora_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False "
            "here); run it on a machine with an NVIDIA GPU and the [gpu] extra (bitsandbytes)",
            file=sys.stderr,
        )
        sys.exit(2)
    if args.child:
        child(args)
        return
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        sys.exit("error: the QLoRA variant needs bitsandbytes: pip install 'offline-tutor[gpu]'")
    rows = []
    with tempfile.TemporaryDirectory(prefix="qlora-bench-") as tmp:
        base = Path(tmp) / "base"
        print(f"building a random {args.shape} ...", file=sys.stderr, flush=True)
        build_base(args.shape, base)
        for variant in VARIANTS:
            print(f"running {variant} ...", file=sys.stderr, flush=True)
            cmd = [
                sys.executable, __file__, "--child", "--variant", variant, "--base", str(base),
                "--shape", args.shape, "--batch", str(args.batch), "--seq", str(args.seq),
                "--steps", str(args.steps), "--warmup", str(args.warmup),
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                sys.exit(f"{variant} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(line[len("RESULT ") :]))
    base_row = rows[0]
    print(
        f"\n{args.shape} (random weights) on {base_row['gpu']}: batch {args.batch} x "
        f"{args.seq} tokens, LoRA r=16 all-linear, activation checkpointing, {args.steps} steps\n"
    )
    print("| variant | tokens/s | vs bf16 LoRA | peak GPU memory GiB | vs bf16 LoRA |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['tokens_per_s']:.0f} | "
            f"{r['tokens_per_s'] / base_row['tokens_per_s']:.2f}x | {r['peak_gib']:.2f} | "
            f"{r['peak_gib'] / base_row['peak_gib']:.2f}x |"
        )


if __name__ == "__main__":
    main()
