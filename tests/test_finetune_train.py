"""LoRA / QLoRA training on a tiny random Llama: outputs, reload + generate, QLoRA through
bitsandbytes NF4 on CPU, early stopping, Ctrl-C + resume, merge, bad input, CLI, DDP."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune.errors import DataError, RunExistsError, TrainingInterrupted
from finetune.recipe import LoRARecipe, run_finetune
from tutor.config import load_config
from tutor.errors import ConfigError, MissingDependencyError, ModelNotFoundError, NotFoundError
from tutor.testing.tiny_llama import save_tiny_llama

REPO = Path(__file__).resolve().parents[1]


def write_chats(path: Path, n: int, answer: str = "yes", problems: int | None = None) -> Path:
    """``n`` tiny-vocabulary chats; ``problems`` distinct problems (default: one each)."""
    problems = problems or n
    lines = []
    for i in range(n):
        q = f"what is {i % 10} + {(i * 3) % 10} ?"
        lines.append(
            {
                "problem": f"{answer} problem {i % problems}",
                "messages": [
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": " ".join([answer] * 6) + " ."},
                ],
            }
        )
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def make_config(home: Path, model_dir: Path, data: list[Path], **finetune: Any) -> Any:
    values = {
        "paths": {"home": str(home)},
        "lm": {"model": str(model_dir)},
        "finetune": {
            "data": [str(p) for p in data],
            "base_model": str(model_dir),
            "max_length": 256,
            "batch_size": 4,
            "eval_steps": 2,
            "logging_steps": 1,
            "learning_rate": 1e-2,
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
            "lora_r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.0,
            "dtype": "float32",
            "device": "cpu",
            **finetune,
        },
    }
    return load_config(env={}, file_values=values)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return save_tiny_llama(tmp_path / "tiny")


def lora_b_norms(model: Any) -> list[float]:
    return [p.detach().abs().sum().item() for n, p in model.named_parameters() if "lora_B" in n]


# -- the main path ---------------------------------------------------------------------------------
def test_lora_run_writes_outputs_and_reloads_to_generate(tmp_path: Path, tiny: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from finetune.data import file_sha256
    from tutor.lm.base import GenerationOptions
    from tutor.lm.hf import HFGenerator
    from tutor.lm.resolve import load_causal_lm

    data = write_chats(tmp_path / "chats.jsonl", 24, problems=12)
    cfg = make_config(
        tmp_path / "home", tiny, [data], max_steps=4, eval_fraction=0.25, tensorboard=True
    )
    recipe = LoRARecipe(cfg)
    recipe.setup()
    result = recipe.train()
    trained = recipe.trainer.model
    run = tmp_path / "home" / "runs" / "lora"
    assert result.run_dir == run and result.adapter_dir == run / "adapter"
    for name in ("config.toml", "metrics.json", "card.md", "card.json"):
        assert (run / name).is_file(), name
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    assert (run / "adapter" / "chat_template.jinja").is_file()
    assert any((run / "tensorboard").glob("events.out.tfevents.*"))

    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "completed" and m["global_step"] == 4 and m["method"] == "lora"
    for key in ("eval_loss_before", "final_eval_loss", "best_eval_loss", "train_loss"):
        assert math.isfinite(m[key]), key
    assert m["best_eval_loss"] <= m["final_eval_loss"] and m["peak_memory_mb"] > 0
    assert m["train_tokens_seen"] > 0 and m["tokens_per_second"] > 0
    card = json.loads((run / "card.json").read_text())
    assert card["base_model"] == str(tiny)
    assert card["data"]["train_files"][0]["sha256"] == file_sha256(data)
    assert card["data"]["train_examples"] == 18 and card["data"]["eval_examples"] == 6
    assert card["hyperparameters"]["lora_r"] == 8
    assert "| eval loss before | final eval loss |" in (run / "card.md").read_text()
    resolved = load_config(run / "config.toml", env={})
    assert resolved.finetune.base_model == str(tiny) and resolved.finetune.max_steps == 4

    saved = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in saved.items())

    # reload through the tutor's resolver and compare with the in-memory trained model
    model, tok = load_causal_lm(
        str(tiny), dtype="float32", device="cpu", adapter=str(run / "adapter")
    )
    base, _ = load_causal_lm(str(tiny), dtype="float32", device="cpu")
    ids = torch.tensor(
        [
            tok.apply_chat_template(
                [{"role": "user", "content": "what is a half ?"}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=False,
            )
        ]
    )
    trained.eval()
    with torch.no_grad():
        reloaded_logits = model(input_ids=ids).logits
        torch.testing.assert_close(
            reloaded_logits, trained(input_ids=ids).logits, atol=1e-5, rtol=1e-4
        )
        assert not torch.allclose(reloaded_logits, base(input_ids=ids).logits, atol=1e-4)
    recipe.cleanup()
    out = model.generate(
        ids, max_new_tokens=5, min_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id
    )
    assert out.shape[1] == ids.shape[1] + 5
    gen = HFGenerator(model, tok, defaults=GenerationOptions(max_new_tokens=5))
    text = "".join(gen.stream([{"role": "user", "content": "what is a half ?"}]))
    assert isinstance(text, str) and gen.last_stats["prompt_tokens"] == ids.shape[1]


def test_chat_and_ask_serve_the_adapter(
    tmp_path: Path, tiny: Path, tutor_home: Path, capsys, monkeypatch
) -> None:
    from tutor.cli import main

    data = write_chats(tmp_path / "chats.jsonl", 8)
    cfg = make_config(tutor_home, tiny, [data], max_steps=2, eval_fraction=0)
    adapter = run_finetune(cfg).adapter_dir
    capsys.readouterr()
    args = [
        "--model",
        str(tiny),
        "--adapter",
        str(adapter),
        "--max-new-tokens",
        "3",
        "--device",
        "cpu",
    ]
    assert main(["ask", *args, "what is a half ?"]) == 0
    monkeypatch.setattr("builtins.input", _inputs(["what is a half ?", "/quit"]))
    assert main(["chat", *args]) == 0
    err = capsys.readouterr().err
    assert f"+{adapter}" in err  # the generator's name shows the adapter is loaded
    assert main(["ask", "--model", str(tiny), "--adapter", str(tmp_path), "hi"]) == 2
    assert "not a peft LoRA directory" in capsys.readouterr().err


def _inputs(lines: list[str]):
    it = iter(lines)
    return lambda prompt="": next(it)


def test_qlora_on_cpu_through_bitsandbytes_nf4(tmp_path: Path, tiny: Path) -> None:
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    data = write_chats(tmp_path / "chats.jsonl", 4)
    cfg = make_config(
        tmp_path / "home",
        tiny,
        [data],
        qlora=True,
        max_steps=3,
        eval_fraction=0,
        learning_rate=5e-3,
    )
    recipe = LoRARecipe(cfg, quantize_base=True)
    recipe.setup()
    model = recipe.trainer.model
    q_proj = model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)
    assert q_proj.base_layer.weight.quant_state.quant_type == "nf4"
    assert all(v == 0 for v in lora_b_norms(model))
    result = recipe.train()
    losses = [h["loss"] for h in recipe.trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert losses[0] > losses[1] > losses[2]
    assert all(v > 0 for v in lora_b_norms(model))
    assert result.metrics["method"] == "qlora"
    recipe.cleanup()
    card = json.loads((result.run_dir / "card.json").read_text())
    assert card["method"].startswith("QLoRA")
    assert load_config(result.run_dir / "config.toml", env={}).finetune.qlora is True


def test_early_stopping_triggers(tmp_path: Path, tiny: Path) -> None:
    # Train on "yes" answers, validate on "no" answers: validation loss only gets worse.
    train = write_chats(tmp_path / "train.jsonl", 8, answer="yes")
    val = write_chats(tmp_path / "val.jsonl", 4, answer="no")
    cfg = make_config(
        tmp_path / "home",
        tiny,
        [train],
        eval_data=[str(val)],
        max_steps=30,
        eval_steps=1,
        early_stopping_patience=2,
        eval_before=False,
    )
    m = run_finetune(cfg).metrics
    assert m["stopped_early"] and m["global_step"] < 30
    evals = [h["eval_loss"] for h in m["log_history"] if "eval_loss" in h]
    best = min(evals)
    assert m["best_eval_loss"] == pytest.approx(best)
    assert evals[-2:] and all(e > best for e in evals[-2:])  # patience 2 used up
    assert m["global_step"] == m["best_step"] + 2


def test_ctrl_c_leaves_a_resumable_checkpoint_and_resume_continues(
    tmp_path: Path, tiny: Path
) -> None:
    from transformers import TrainerCallback

    class CtrlCAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    data = write_chats(tmp_path / "chats.jsonl", 24, problems=12)
    cfg = make_config(
        tmp_path / "home",
        tiny,
        [data],
        max_steps=6,
        eval_fraction=0.25,
        eval_steps=10,
        batch_size=2,
    )
    # whatever handler was there before (SIG_IGN when the suite runs as a background job)
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="stopped at step 4.*--resume"):
        run_finetune(cfg, callbacks=[CtrlCAtStep3()])
    run = tmp_path / "home" / "runs" / "lora"
    assert (run / "checkpoints" / "checkpoint-4").is_dir()
    assert not (run / "adapter").exists()
    interrupted = json.loads((run / "metrics.json").read_text())
    assert interrupted["status"] == "interrupted"
    before = interrupted["eval_loss_before"]
    assert before is not None and math.isfinite(before)
    assert signal.getsignal(signal.SIGINT) is handler_before  # handler restored

    with pytest.raises(RunExistsError, match="--resume"):
        run_finetune(cfg)
    resumed = make_config(
        tmp_path / "home",
        tiny,
        [data],
        max_steps=6,
        eval_fraction=0.25,
        eval_steps=10,
        batch_size=2,
        resume=True,
    )
    m = run_finetune(resumed).metrics
    assert m["resumed_from"].endswith("checkpoint-4") and m["global_step"] == 6
    assert m["eval_loss_before"] == before  # measured once, by the interrupted run
    steps = [h["step"] for h in m["log_history"] if "loss" in h]
    assert steps == [1, 2, 3, 4, 5, 6]  # continued, not restarted
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    # the run is finished: resuming again says so instead of training a step past the end
    with pytest.raises(RunExistsError, match=r"already reached step 6 of 6.*--max-steps"):
        run_finetune(resumed)
    longer = make_config(
        tmp_path / "home",
        tiny,
        [data],
        max_steps=7,
        eval_fraction=0.25,
        eval_steps=10,
        batch_size=2,
        resume=True,
    )
    assert run_finetune(longer).metrics["global_step"] == 7


def test_merge_matches_the_adapter_model(tmp_path: Path, tiny: Path, capsys, caplog) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune.merge import merge_adapter
    from tutor.cli import main
    from tutor.lm.resolve import load_causal_lm

    model, tok = load_causal_lm(str(tiny), dtype="float32", device="cpu")
    peft_model = get_peft_model(
        model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    )
    adapter = tmp_path / "run" / "adapter"
    peft_model.save_pretrained(str(adapter))
    tok.save_pretrained(str(adapter))
    ids = torch.tensor([[2, 10, 11, 12, 13, 3, 2, 14]])
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits

    out32 = merge_adapter(adapter, tmp_path / "merged32", base_model=str(tiny), dtype="float32")
    merged = AutoModelForCausalLM.from_pretrained(str(out32))
    assert not any("lora" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-4)
    assert (out32 / "chat_template.jinja").is_file() and (out32 / "tokenizer.json").is_file()

    # the default: a 16-bit directory, via the CLI (base model read from the run's config)
    (tmp_path / "run" / "config.toml").write_text(
        f'[finetune]\nbase_model = "{tiny}"\nqlora = true\n'
    )
    assert (
        main(["finetune", "merge", "--adapter", str(adapter), "--home", str(tmp_path / "h")]) == 0
    )
    out16 = tmp_path / "run" / "merged"
    merged16 = AutoModelForCausalLM.from_pretrained(str(out16), dtype="auto")
    assert merged16.dtype == torch.bfloat16
    with torch.no_grad():
        got = merged16(input_ids=ids).logits.float()
    assert (got - expected).abs().max() < 0.05
    assert json.loads((out16 / "merge_info.json").read_text())["base_model"] == str(tiny)
    assert "trained with QLoRA" in caplog.text  # the loud warning

    with pytest.raises(ConfigError, match="refusing to merge into a 4-bit base"):
        merge_adapter(adapter, tmp_path / "m4", base_model=str(tiny), load_in_4bit=True)
    assert main(["finetune", "merge", "--adapter", str(adapter), "--out", str(out16)]) == 2
    assert "already exists" in capsys.readouterr().err


# -- bad input: a clear message before any training step ---------------------------------------------
def test_bad_input_fails_before_training(tmp_path: Path, tiny: Path, monkeypatch) -> None:
    data = write_chats(tmp_path / "chats.jsonl", 6)
    home = tmp_path / "home"

    with pytest.raises(ModelNotFoundError, match="does not exist"):
        run_finetune(make_config(home, tiny, [data], base_model=str(tmp_path / "no-such-model")))
    with pytest.raises(ModelNotFoundError, match="not found"):
        run_finetune(make_config(home, tiny, [data], base_model="nobody/no-such-model-xyz"))
    with pytest.raises(DataError, match="longer than finetune.max_length=16"):
        run_finetune(make_config(home, tiny, [data], max_length=16))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        run_finetune(make_config(home, tiny, [empty]))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"finetune.device=cuda .*--device cpu --no-qlora"):
            run_finetune(make_config(home, tiny, [data], device="cuda", qlora=True))
    with pytest.raises(NotFoundError, match="nothing to resume"):
        run_finetune(make_config(home, tiny, [data], resume=True))
    assert not (home / "runs" / "lora" / "checkpoints").exists()

    # bitsandbytes that cannot run 4-bit here, or is not installed
    import bitsandbytes.functional as bnbf

    def broken(*a, **k):
        raise RuntimeError("no 4-bit kernel for this device")

    monkeypatch.setattr(bnbf, "quantize_4bit", broken)
    with pytest.raises(MissingDependencyError, match="cannot run 4-bit NF4 on cpu.*qlora=false"):
        run_finetune(make_config(home, tiny, [data], qlora=True))
    monkeypatch.undo()
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "bitsandbytes" else real(name, *a),
    )
    with pytest.raises(MissingDependencyError, match=r"needs bitsandbytes.*\[gpu\]"):
        run_finetune(make_config(home, tiny, [data], qlora=True))
    assert not (home / "runs").exists()


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_train_with_packing_data_and_errors(
    tmp_path: Path, tiny: Path, tutor_home: Path, capsys
) -> None:
    from tutor.cli import main

    data = write_chats(tmp_path / "chats.jsonl", 16, problems=8)
    common = [
        "--data",
        str(data),
        "--base-model",
        str(tiny),
        "--set",
        "finetune.dtype=float32",
        "--set",
        "finetune.device=cpu",
    ]
    assert main(["finetune", "data", *common, "--show", "1"]) == 0
    out = capsys.readouterr().out
    assert "(openai): 16 records -> 16 examples" in out and "labelled" in out
    assert json.loads(out.strip().splitlines()[-1])["messages"][0]["role"] == "system"

    args = [
        "finetune",
        "train",
        *common,
        "--max-steps",
        "2",
        "--eval-steps",
        "1",
        "--packing",
        "--run-name",
        "packed",
        "--max-length",
        "512",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "adapter:" in out and "eval loss:  before" in out
    m = json.loads((tutor_home / "runs" / "packed" / "metrics.json").read_text())
    card = json.loads((tutor_home / "runs" / "packed" / "card.json").read_text())
    assert card["data"]["packed_rows"] < card["data"]["train_examples"]
    assert math.isfinite(m["train_loss"])

    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["finetune", "train", "--data", str(tmp_path / "nope.jsonl")]) == 2
    assert "error: data file" in capsys.readouterr().err


# -- scale-out ------------------------------------------------------------------------------------
@pytest.mark.timeout(300)
def test_ddp_two_cpu_processes_with_accelerate_launch(tmp_path: Path, tiny: Path) -> None:
    pytest.importorskip("accelerate")
    data = write_chats(tmp_path / "chats.jsonl", 16, problems=8)
    home = tmp_path / "home"
    env = {**os.environ, "TUTOR_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "tutor", "finetune", "train",
        "--data", str(data), "--base-model", str(tiny), "--device", "cpu",
        "--set", "finetune.dtype=float32", "--max-steps", "3", "--eval-steps", "3",
        "--batch-size", "2", "--max-length", "256", "-q",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((home / "runs" / "lora" / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["global_step"] == 3 and math.isfinite(m["train_loss"])
    assert (home / "runs" / "lora" / "adapter" / "adapter_model.safetensors").is_file()
    assert proc.stdout.count("adapter:") == 1  # only rank 0 reports


def test_labelled_only_lm_head_gives_the_stock_loss_and_gradients(tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import TrainingArguments

    from finetune.tokens import ChatEncoder, Collator, pack
    from finetune.trainer import FinetuneTrainer
    from tutor.testing.tiny_llama import make_model, make_tokenizer

    tok = make_tokenizer()
    enc = ChatEncoder(tok, max_length=512)
    feats = []
    for i in range(3):
        e = enc.encode(
            [
                {"role": "user", "content": "what is " + "1 + " * i + "1 ?"},
                {"role": "assistant", "content": "the answer is " + str(i + 1) + " ."},
                {"role": "user", "content": "why ?"},
                {"role": "assistant", "content": "add " * (i + 1) + "."},
            ]
        )
        feats.append({"input_ids": e.input_ids, "labels": e.labels})
    model = get_peft_model(
        make_model(len(tok)), LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    )
    model.config.use_cache = False
    model.train()
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    trainer = FinetuneTrainer(model=model, args=args)
    for batch in (Collator(tok.pad_token_id)(feats), Collator(tok.pad_token_id)(pack(feats, 512))):
        stock = model(**batch).loss
        stock_grads = torch.autograd.grad(stock, [p for p in model.parameters() if p.requires_grad])
        ours = trainer.compute_loss(model, dict(batch))
        our_grads = torch.autograd.grad(ours, [p for p in model.parameters() if p.requires_grad])
        torch.testing.assert_close(ours, stock, atol=1e-5, rtol=1e-5)
        for a, b in zip(our_grads, stock_grads, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
        n = int((batch["labels"][:, 1:] != -100).sum())
        summed = trainer.compute_loss(model, dict(batch), num_items_in_batch=2 * n)
        torch.testing.assert_close(summed * 2, stock, atol=1e-5, rtol=1e-5)


def test_fixed_seed_gives_the_same_initial_adapter(tmp_path: Path, tiny: Path) -> None:
    import torch

    data = write_chats(tmp_path / "chats.jsonl", 6)

    def initial_a(seed: int) -> list:
        recipe = LoRARecipe(
            make_config(tmp_path / f"home{seed}", tiny, [data], seed=seed, eval_fraction=0)
        )
        recipe.setup()
        weights = [
            p.detach().clone() for n, p in recipe.trainer.model.named_parameters() if "lora_A" in n
        ]
        recipe.cleanup()
        return weights

    first, again, other = initial_a(1), initial_a(1), initial_a(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
