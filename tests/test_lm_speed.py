"""The CPU decode path is chosen by measurement (tutor.lm.speed), remembered per machine, and
the int4 cache is keyed by dtype, so what ``auto`` does never depends on what ran before."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.test_lm_hf import _tiny
from tutor.lm import speed
from tutor.lm.resolve import load_causal_lm

pytestmark = pytest.mark.real_decode_timer


def _path_of(model: Any) -> str:
    import torch

    from tutor.lm.quant import Int4Linear

    if any(isinstance(m, Int4Linear) for m in model.modules()):
        return "float32 + int4"
    return "bfloat16" if model.dtype == torch.bfloat16 else "float32"


class FakeTimer:
    """Decode rates by path, and a record of which paths were timed."""

    def __init__(self, rates: dict[str, float]):
        self.rates = rates
        self.timed: list[str] = []

    def __call__(self, model: Any, *, threads: int = 0) -> Any:
        path = _path_of(model)
        dtype, _, quantize = path.partition(" + ")
        kernel = "native" if getattr(model, "tutor_native_dir", None) is not None else "torch"
        label = speed.path_label(dtype, quantize or "none", threads, kernel)
        if kernel == "native":
            path += " (native step)"

        def measure() -> float:
            self.timed.append(path)
            return self.rates.get(label, self.rates[path])

        return measure


@pytest.fixture(autouse=True)
def one_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same decode thread counts on every machine: one, unless a test offers more."""
    monkeypatch.setattr(speed, "thread_options", lambda available: [1])


@pytest.fixture
def grid_dir(tmp_path: Path) -> Path:
    return _tiny(tmp_path, "grid", on_int4_grid=True)[0]


@pytest.fixture
def bf16_fastest(monkeypatch: pytest.MonkeyPatch) -> FakeTimer:
    """The fake timer in place: bf16 30 tok/s, int4 20, float32 10."""
    fake = FakeTimer({"float32": 10.0, "bfloat16": 30.0, "float32 + int4": 20.0})
    monkeypatch.setattr(speed, "decode_timer", fake)
    return fake


@pytest.mark.parametrize(
    "rates",
    [
        {"float32": 10.0, "bfloat16": 30.0, "float32 + int4": 20.0},
        {"float32": 10.0, "bfloat16": 5.0, "float32 + int4": 20.0},
        {"float32": 40.0, "bfloat16": 5.0, "float32 + int4": 20.0},
    ],
)
def test_auto_loads_the_fastest_path(
    grid_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rates: dict[str, float]
):
    fake = FakeTimer(rates)
    monkeypatch.setattr(speed, "decode_timer", fake)
    model, _ = load_causal_lm(
        str(grid_dir), models_dir=tmp_path / "m", device="cpu", quantize="auto"
    )
    best = max(rates, key=lambda k: rates[k])
    assert _path_of(model) == best  # never slower than any other available path
    assert model.tutor_decode_path.label == best
    assert set(fake.timed) == set(rates)  # every path was timed, interleaved rounds
    assert fake.timed[: len(rates)] == fake.timed[len(rates) : 2 * len(rates)]


def test_the_choice_is_remembered_and_measured_again_on_request(
    grid_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16_fastest: FakeTimer
):
    fake = bf16_fastest
    models = tmp_path / "m"
    load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    saved = json.loads((models / speed.CACHE_FILE).read_text())
    (entry,) = saved.values()
    assert entry["dtype"] == "bfloat16" and entry["rates"]["bfloat16"] == 30.0
    assert {"cpu", "flags_sha", "torch", "threads", "model", "weights"} <= set(entry["key"])
    fake.timed.clear()
    model, _ = load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    assert fake.timed == [] and _path_of(model) == "bfloat16"  # the cached winner, untimed
    fake.rates["float32 + int4"] = 90.0  # the machine changed (a new torch, say)
    model, _ = load_causal_lm(
        str(grid_dir), models_dir=models, device="cpu", quantize="auto", remeasure=True
    )
    assert fake.timed and _path_of(model) == "float32 + int4"
    fake.timed.clear()
    monkeypatch.setattr(speed, "machine_key", lambda: {"cpu": "another", "threads": 1})
    load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    assert fake.timed  # another machine key: measured again
    assert len(json.loads((models / speed.CACHE_FILE).read_text())) == 2


def test_int4_is_offered_only_where_lossless_and_dtype_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    plain_dir = _tiny(tmp_path, "plain")[0]
    fake = FakeTimer({"float32": 10.0, "bfloat16": 30.0, "float32 + int4": 99.0})
    monkeypatch.setattr(speed, "decode_timer", fake)
    model, _ = load_causal_lm(str(plain_dir), device="cpu", quantize="auto")
    assert set(fake.timed) == {"float32", "bfloat16"} and _path_of(model) == "bfloat16"
    fake.timed.clear()
    for dtype in ("float32", "bfloat16"):  # lm.dtype set: no measuring, that dtype
        model, _ = load_causal_lm(str(plain_dir), dtype=dtype, device="cpu", quantize="auto")
        assert _path_of(model) == dtype and not hasattr(model, "tutor_decode_path")
    model, _ = load_causal_lm(str(plain_dir), device="cpu", quantize="int8")
    assert model.tutor_decode_path.label == "float32 + int8"  # explicit: packed from float32
    assert fake.timed == []


def test_a_broken_cache_file_is_measured_again(
    grid_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16_fastest: FakeTimer
):
    models = tmp_path / "m"
    models.mkdir()
    (models / speed.CACHE_FILE).write_text("{not json")
    model, _ = load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    assert _path_of(model) == "bfloat16"
    assert len(json.loads((models / speed.CACHE_FILE).read_text())) == 1


def test_the_real_timer_decodes_on_both_loops(tiny_llama_dir: Path):
    from tutor.lm.fast import LlamaDecoder

    model, _ = load_causal_lm(str(tiny_llama_dir), dtype="float32", device="cpu")
    assert LlamaDecoder.unsupported_reason(model) is None
    rate = speed.decode_timer(model)()
    assert math.isfinite(rate) and rate > 0
    model.config.attention_bias = True  # not the lean loop's model: timed through forward()
    assert LlamaDecoder.unsupported_reason(model) is not None
    rate = speed.decode_timer(model)()
    assert math.isfinite(rate) and rate > 0


@pytest.mark.slow
def test_bundled_int4_cache_is_keyed_by_dtype(bundled_model_dir: Path, tmp_path: Path):
    """Once a float32 start saved the int4 layers, a bf16 start must not load them."""
    import shutil

    models = tmp_path / "models"
    shutil.copytree(bundled_model_dir, models / "smollm2-135m-instruct", symlinks=True)
    shutil.rmtree(models / "smollm2-135m-instruct" / "quantized", ignore_errors=True)
    model, _ = load_causal_lm(
        "smollm2-135m-instruct", models_dir=models, dtype="float32", device="cpu", quantize="auto"
    )
    assert _path_of(model) == "float32 + int4"
    saved = sorted(p.name for p in (models / "smollm2-135m-instruct" / "quantized").iterdir())
    assert saved and all("-float32-" in name for name in saved)
    model, _ = load_causal_lm(
        "smollm2-135m-instruct", models_dir=models, dtype="bfloat16", device="cpu", quantize="auto"
    )
    assert _path_of(model) == "bfloat16"


def test_config_show_and_bench_lm_say_which_path_and_why(
    grid_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    from tutor.cli import main

    home = tmp_path / "home"
    args = ["--home", str(home), "--set", f"lm.model={grid_dir}"]
    assert main([*args, "config", "show"]) == 0
    assert "not measured on this machine yet" in capsys.readouterr().out
    rates = {"float32": 10.0, "bfloat16": 3.0, "float32 + int4": 20.0}
    monkeypatch.setattr(speed, "native_ready", lambda models_dir: None)
    monkeypatch.setattr(
        speed, "decode_timer", FakeTimer({**rates, "float32 + int4 (native step)": 40.0})
    )
    assert main([*args, "bench-lm"]) == 0
    out = capsys.readouterr().out
    assert "float32 + int4 (native step)    40.0 tok/s  <- chosen" in out and "20.0 tok/s" in out
    assert main([*args, "config", "show"]) == 0
    out = capsys.readouterr().out
    assert "# decode path (lm.dtype = 'auto'" in out
    assert "float32 + int4 (native step) (measured" in out
    assert main([*args, "--set", "lm.dtype=bfloat16", "config", "show"]) == 0
    assert "lm.dtype = 'bfloat16', set in the config" in capsys.readouterr().out


def test_a_model_too_big_to_copy_is_chosen_by_rule(
    grid_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16_fastest: FakeTimer
):
    fake = bf16_fastest
    from tutor.lm import resolve

    monkeypatch.setattr(speed, "MEASURE_LIMIT_BYTES", 0)
    model, _ = load_causal_lm(str(grid_dir), device="cpu", quantize="auto")
    assert _path_of(model) == "float32 + int4" and "not measured" in model.tutor_decode_path.reason
    plain_dir = _tiny(tmp_path, "plain")[0]
    for native, path in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(resolve, "cpu_supports_bf16", lambda native=native: native)
        model, _ = load_causal_lm(str(plain_dir), device="cpu", quantize="auto")
        assert _path_of(model) == path
    assert fake.timed == []


def test_a_copied_model_keeps_its_measured_path(
    grid_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16_fastest: FakeTimer
):
    fake = bf16_fastest
    import shutil

    models = tmp_path / "m"
    load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    copy = shutil.copytree(grid_dir, tmp_path / "copy")  # new path, new mtimes
    fake.timed.clear()
    model, _ = load_causal_lm(str(copy), models_dir=models, device="cpu", quantize="auto")
    assert fake.timed == [] and _path_of(model) == "bfloat16"


@pytest.mark.parametrize(
    ("one", "two", "threads"), [(60.0, 50.0, 1), (50.0, 60.0, 2), (50.0, 50.0, 2)]
)
def test_the_decode_thread_count_is_chosen_by_measurement(
    grid_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    one: float,
    two: float,
    threads: int,
):
    from transformers import AutoTokenizer

    from tutor.lm.hf import HFGenerator

    monkeypatch.setattr(speed, "thread_options", lambda available: [2, 1])
    rates = {"float32": 10.0, "bfloat16": 30.0, "float32 + int4": 0.0}
    rates |= {"float32 + int4 @ 1 thread": one, "float32 + int4 @ 2 threads": two}
    fake = FakeTimer(rates)
    monkeypatch.setattr(speed, "decode_timer", fake)
    models = tmp_path / "m"
    model, _ = load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    choice = model.tutor_decode_path
    assert _path_of(model) == "float32 + int4" and choice.threads == threads  # a tie: the most
    assert choice.label == f"float32 + int4 @ {threads} thread{'s' if threads > 1 else ''}"
    assert len(fake.timed) == 3 * 2 * (1 + speed.ROUNDS)  # 3 paths x 2 counts, every round
    gen = HFGenerator(model, AutoTokenizer.from_pretrained(grid_dir))
    assert gen.decoder.threads == threads  # the decode loop runs its steps at that count
    fake.timed.clear()
    model, _ = load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    assert fake.timed == [] and model.tutor_decode_path.threads == threads  # remembered


def test_the_decode_steps_run_at_the_decoders_thread_count(tiny_llama_dir: Path):
    import torch

    from tutor.lm.fast import LlamaDecoder

    model, _ = load_causal_lm(str(tiny_llama_dir), dtype="float32", device="cpu")
    ids = torch.tensor([[1, 5, 9, 3]])
    before = torch.get_num_threads()
    seen: list[int] = []

    def stop(input_ids: Any, scores: Any) -> Any:
        seen.append(torch.get_num_threads())
        return torch.zeros(1, dtype=torch.bool)

    with torch.inference_mode():
        dec = LlamaDecoder(model, 64)
        plain = dec.generate(ids, max_new_tokens=6)
        dec.threads = before + 1
        out = dec.generate(ids, max_new_tokens=6, stopping_criteria=stop)
    assert seen and set(seen) == {before + 1}  # during the steps
    assert torch.get_num_threads() == before  # restored after
    assert torch.equal(out, plain)  # the same tokens


def test_a_training_load_is_not_timed(
    grid_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16_fastest: FakeTimer
):
    """The fine-tune recipes load with ``training=True``: no decode timing (it ran torch in a
    worker thread whose OpenMP team slowed training's own evaluation ~4.7x), no int4 packing,
    and ``auto`` is the dtype ``pick_dtype`` names for this CPU, on either kind of CPU."""
    from tutor.lm.resolve import pick_dtype

    model, _ = load_causal_lm(str(grid_dir), models_dir=tmp_path / "m", training=True)
    assert bf16_fastest.timed == [] and not hasattr(model, "tutor_decode_path")
    assert model.dtype == pick_dtype("auto", "cpu")
    assert _path_of(model) != "float32 + int4"
    assert not (tmp_path / "m" / speed.CACHE_FILE).exists()  # nothing remembered either


@pytest.mark.parametrize(("native_rate", "kernel"), [(40.0, "native"), (15.0, "torch")])
def test_the_native_step_is_one_more_timed_path(
    grid_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    native_rate: float,
    kernel: str,
):
    """The int4 path with the native decode step (tutor.lm.native) is timed beside the others
    and kept only where it is the fastest; ``lm.native_decode = false`` never offers it."""
    monkeypatch.setattr(speed, "native_ready", lambda models_dir: None)
    rates = {"float32": 10.0, "bfloat16": 5.0, "float32 + int4": 20.0}
    fake = FakeTimer({**rates, "float32 + int4 (native step)": native_rate})
    monkeypatch.setattr(speed, "decode_timer", fake)
    models = tmp_path / "m"
    model, _ = load_causal_lm(
        str(grid_dir), models_dir=models, device="cpu", quantize="auto", native=True
    )
    choice = model.tutor_decode_path
    assert set(fake.timed) == {*rates, "float32 + int4 (native step)"}
    assert choice.kernel == kernel and _path_of(model) == "float32 + int4"
    assert hasattr(model, "tutor_native_dir") == (kernel == "native")
    assert ("(native step)" in choice.label) == (kernel == "native")
    fake.timed.clear()  # remembered: a later start is not timed and keeps the kernel
    model, _ = load_causal_lm(
        str(grid_dir), models_dir=models, device="cpu", quantize="auto", native=True
    )
    assert fake.timed == [] and hasattr(model, "tutor_native_dir") == (kernel == "native")
    # native_decode off: its own choice among the torch paths (the native choice's thread
    # count was measured for the native step, not for the torch loop), measured and remembered
    model, _ = load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    assert not hasattr(model, "tutor_native_dir") and model.tutor_decode_path.kernel == "torch"
    assert fake.timed and "float32 + int4 (native step)" not in fake.timed  # never offered
    fake.timed.clear()
    model, _ = load_causal_lm(str(grid_dir), models_dir=models, device="cpu", quantize="auto")
    assert fake.timed == [] and not hasattr(model, "tutor_native_dir")


def test_a_native_step_that_does_not_build_is_not_timed_and_says_why(
    grid_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16_fastest: FakeTimer
):
    monkeypatch.setattr(speed, "native_ready", lambda models_dir: "no C compiler here")
    model, _ = load_causal_lm(
        str(grid_dir), models_dir=tmp_path / "m", device="cpu", quantize="auto", native=True
    )
    assert "(native step)" not in " ".join(bf16_fastest.timed)
    assert model.tutor_decode_path.reason.endswith("no native step: no C compiler here")
    assert not hasattr(model, "tutor_native_dir")
