"""The native decode step (tutor/lm/native_decode.c) computes what the lean loop computes.

The reference is the lean loop in float32 on dense weights equal to the packed ones (each
int4 layer dequantized from its bytes, the adapter added in float32), so the only difference
left is the order of float32 sums. Both the AVX-512 and the portable C paths are checked where
the compiler can build them; a machine without a C compiler keeps the torch loop.
"""

from __future__ import annotations

import copy
import platform
from pathlib import Path
from typing import Any

import pytest

from tests.test_lm_hf import _tiny
from tutor.lm import native, speed

# every projection a multiple of 64 rows and 32 inputs: the shapes the C step reads
SHAPE = dict(
    hidden_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=256,
    vocab_size=192,
    num_hidden_layers=3,
)
# the paths for CPUs without AVX-512: AVX2 intrinsics, and plain C (built here by turning the
# instruction sets off)
WITHOUT_AVX512 = [*native.FLAGS, "-mno-avx512f"]
PLAIN_C = [*WITHOUT_AVX512, "-mno-avx2"]
# -mno-avx* exist on x86 only; elsewhere the default build is the plain C path, checked as such
# (a skip would fail strict CI there)
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
NARROW_PATHS = (
    [(WITHOUT_AVX512, (256, 0)), (PLAIN_C, (0,))] if X86 else [(list(native.FLAGS), (0,))]
)


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("native")
    try:
        native.load(d)
    except native.Unsupported as e:
        pytest.skip(f"the native step does not build here: {e}")
    return d


def _dequantized(mod: Any) -> Any:
    """The float32 weight an ``Int4Linear`` holds, read from its packed bytes (the layout the
    C step reads: [N/64][K][32] bytes, low nibble row j, high nibble row 32 + j)."""
    import torch

    n, k, g = mod.out_features, mod.in_features, mod.group_size
    f = mod.packed.reshape(n // 64, k, 32)
    q = torch.cat([f & 15, f >> 4], 2).permute(0, 2, 1).reshape(n, k).float()
    sz = mod.scales_and_zeros.float()
    scale, zero = sz[..., 0].T[..., None], sz[..., 1].T[..., None]
    return ((q.reshape(n, k // g, g) - 8) * scale + zero).reshape(n, k)


def _dense_reference(model: Any) -> Any:
    """A copy of ``model`` with every packed layer (and unmerged adapter) as a dense float32
    ``nn.Linear`` computing the same function."""
    import torch

    from tutor.lm.lora import LoraLinear
    from tutor.lm.quant import Int4Linear, Int8GroupLinear

    def weight(mod: Any) -> Any:
        if isinstance(mod, Int4Linear):
            return _dequantized(mod)
        if isinstance(mod, Int8GroupLinear):
            return _dequantized(mod.hi) + _dequantized(mod.lo)
        if isinstance(mod, LoraLinear):
            lo = mod.lora
            a = lo.a_q.float() * lo.a_s.float()[:, None]
            b = lo.b_q.float() * lo.b_s.float()[:, None]
            return weight(mod.base) + (b @ a if mod.switch.on else 0)
        return mod.weight.detach().float()

    ref = copy.deepcopy(model)
    for name, mod in list(ref.named_modules()):
        if isinstance(mod, Int4Linear | Int8GroupLinear | LoraLinear):
            w = weight(mod)
            lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
            lin.weight.data = w.contiguous()
            parent, _, attr = name.rpartition(".")
            setattr(ref.get_submodule(parent), attr, lin)
    return ref


def _packed_model(tmp_path: Path, **shape: Any) -> Any:
    from tutor.lm.quant import quantize_model

    _, model, _ = _tiny(tmp_path, "native", on_int4_grid=True, **{**SHAPE, **shape})
    assert quantize_model(model, "int4") is not None
    return model


def _decode_both(model: Any, reference: Any, steps: int = 12) -> tuple[Any, Any, Any]:
    """Logits of the native and the reference loop: a prompt fed a token at a time (a longer
    chunk is the torch loop's prefill, in bf16 over int4 layers), then the native loop's greedy
    tokens fed to both (teacher-forced, so one early difference cannot shift the rest)."""
    import torch

    from tutor.lm.fast import LlamaDecoder

    fast, ref = LlamaDecoder(model, 64), LlamaDecoder(reference, 64)
    assert fast.native is not None and ref.native is None
    prompt = torch.tensor([2, 17, 40, 9, 33, 5, 60, 3])
    for d in (fast, ref):
        d.reset(64)
    with torch.inference_mode():
        a, b = [], []
        for tok in prompt:
            a.append(fast.forward(tok[None]))
            b.append(ref.forward(tok[None]))
        for _ in range(steps):
            tok = a[-1].argmax(-1)
            a.append(fast.forward(tok))
            b.append(ref.forward(tok))
    return torch.cat(a), torch.cat(b), fast


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_native_step_equals_the_float32_loop(tmp_path: Path, lib_dir: Path, threads: int):
    """On 1 thread, and with each matmul's rows split between 2 or 3 (torch's count at the
    call, which the decode loop sets to the measured one)."""
    import torch

    model = _packed_model(tmp_path, intermediate_size=768, vocab_size=640)  # rows to split
    reference = _dense_reference(model)
    model.tutor_native_dir = lib_dir
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got, want, fast = _decode_both(model, reference)
    finally:
        torch.set_num_threads(before)
    assert torch.allclose(got, want, atol=2e-4, rtol=1e-4), (got - want).abs().max()
    assert torch.equal(got.argmax(-1), want.argmax(-1))
    # the K/V the native steps wrote are the cache the torch loop would have written
    assert fast._kv is not None and torch.isfinite(fast._kv[:, :, :, : fast._len]).all()


def test_native_step_with_an_unmerged_adapter_and_its_switch(tmp_path: Path, lib_dir: Path):
    import torch

    from tests.test_lm_lora import _adapter
    from tutor.lm.lora import LoraLinear, LoraSwitch, apply_lora, read_lora

    model = _packed_model(tmp_path)
    grid_dir = tmp_path / "native"
    lora, why = read_lora(_adapter(grid_dir, tmp_path / "adapter"))
    assert lora is not None, why
    apply_lora(model, lora)
    switch = next(m.switch for m in model.modules() if isinstance(m, LoraLinear))
    assert isinstance(switch, LoraSwitch)
    model.tutor_native_dir = lib_dir
    for on in (True, False):
        switch.on = on
        got, want, _ = _decode_both(model, _dense_reference(model))
        assert torch.allclose(got, want, atol=5e-4, rtol=1e-4), (on, (got - want).abs().max())
    switch.on = True
    on_logits, _, _ = _decode_both(model, _dense_reference(model), steps=0)
    switch.on = False
    off_logits, _, _ = _decode_both(model, _dense_reference(model), steps=0)
    assert not torch.allclose(on_logits, off_logits)  # the adapter does change the answer


@pytest.mark.parametrize(("flags", "simd"), NARROW_PATHS)
def test_the_paths_without_avx512_equal_the_float32_loop(
    tmp_path: Path, lib_dir: Path, flags: list[str], simd: tuple[int, ...]
):
    """The AVX2 and the plain C paths, for CPUs without AVX-512 (or not x86)."""
    import torch

    from tutor.lm.fast import LlamaDecoder

    try:
        lib = native.load(lib_dir, flags)
    except native.Unsupported as e:
        pytest.skip(f"cannot build that path here: {e}")
    assert lib.tutor_native_simd() in simd
    from tests.test_lm_lora import _adapter
    from tutor.lm.lora import apply_lora, read_lora

    model = _packed_model(tmp_path)
    lora, why = read_lora(_adapter(tmp_path / "native", tmp_path / "adapter"))
    assert lora is not None, why
    apply_lora(model, lora)  # the adapter's int8 dot products take the same path
    fast = LlamaDecoder(model, 64)
    fast.native = native.NativeStep(lib, fast)
    ref = LlamaDecoder(_dense_reference(model), 64)
    with torch.inference_mode():
        for d in (fast, ref):
            d.reset(64)
        for tok in (2, 17, 40, 9, 5, 60, 3, 99):
            got, want = fast.forward(torch.tensor([tok])), ref.forward(torch.tensor([tok]))
            assert torch.allclose(got, want, atol=5e-4, rtol=1e-4), (got - want).abs().max()


def test_the_optimised_path_is_the_one_built_where_the_cpu_has_it(lib_dir: Path):
    """The default build takes the widest path this CPU has (no skip: a CPU without AVX-512,
    where strict CI would count a skip as a failure, checks its own path)."""
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(cpu.split())
    want = 512 if "avx512f" in flags else 256 if {"avx2", "fma"} <= flags else 0
    assert native.load(lib_dir).tutor_native_simd() == want


def test_a_model_it_cannot_serve_keeps_the_torch_loop(tmp_path: Path, lib_dir: Path, caplog):
    import torch

    from tutor.lm.fast import LlamaDecoder

    _, model, _ = _tiny(tmp_path, "dense", **SHAPE)  # float32, no int4 layers
    model.tutor_native_dir = lib_dir
    with caplog.at_level("WARNING"):
        d = LlamaDecoder(model, 32)
    assert d.native is None
    assert "native decode step not used" in caplog.text and "int4" in caplog.text
    d.reset(8)
    assert d.forward(torch.tensor([2, 5])).shape[-1] == SHAPE["vocab_size"]
    bf16 = LlamaDecoder(_packed_model(tmp_path / "b").to(torch.bfloat16), 32)
    assert bf16.native is None


def test_no_compiler_or_a_failed_build_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TUTOR_NATIVE_DIR", raising=False)
    monkeypatch.setattr(native, "_compiler", lambda: None)
    with pytest.raises(native.Unsupported, match="no C compiler"):
        native.build(tmp_path)
    assert speed.native_ready(tmp_path) == "no C compiler (cc, gcc or $CC) on PATH"
    monkeypatch.undo()
    if native._compiler() is None:
        pytest.skip("no C compiler here")
    with pytest.raises(native.Unsupported, match="compiling native_decode.c failed"):
        native.build(tmp_path, [*native.FLAGS, "-fno-such-flag-at-all"])
    assert not list((tmp_path / "native").glob("*.so"))  # nothing half-written is kept


def test_the_library_is_built_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TUTOR_NATIVE_DIR", raising=False)
    if native._compiler() is None:
        pytest.skip("no C compiler here")
    first = native.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert first.parent == tmp_path / "native"
