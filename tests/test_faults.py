"""Faults: processes killed with SIGKILL in the middle of their work, and a disk that fills up
while the trainer writes a checkpoint. After each, the data is checked as a user would need it.

- ``tutor serve`` killed while two students' answers stream (the LM is the OpenAI-compatible
  ``ScriptedServer``, slow tokens): the learner store passes ``PRAGMA integrity_check``; every
  acknowledged message (the server had started streaming its reply) and every acknowledged
  attempt (its grading came back) is stored in its session; each completed reply is stored as
  it was shown; the interrupted replies are absent or stored as stopped partials; restarted on
  the same data dir, the old sign-in cookie still works and the students go on in the same
  sessions.
- ``tutor kb add`` killed in the middle of a multi-file batch: ``tutor kb stats --check`` finds
  index and rows in agreement, and the same command run again finishes the job, skipping what
  was committed (``tests/test_kb_atomic.py`` covers the library at each write point).
- ``tutor finetune train`` on a tiny model killed mid-epoch while it writes its second
  checkpoint (after a first one is complete): ``--resume`` skips the half-written one and
  continues from the complete one to the last step.
- ``tutor finetune train`` on a disk that fills after the first checkpoint (a small tmpfs when
  root, else ``RLIMIT_FSIZE`` with SIGXFSZ ignored): one ``error:`` line that says what
  is kept and what to do (``finetune.DiskFullError``, exit 2), the previous checkpoint stays
  loadable, and ``--resume`` with room again finishes the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults_helpers import (
    ENV,
    REPO,
    Learner,
    assert_acknowledged_stored,
    assert_store_intact,
    assert_students_go_on,
    echo,
    kill_while_streaming,
    make_accounts,
    processes,
    start_server,
    together,
)
from tutor.testing.openai_server import Script, ScriptedServer
from ui.testing import free_port

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL"),
    pytest.mark.slow,
]

# -- the web server (its students and checks: tests/faults_helpers.py) ------------------------


def test_server_killed_mid_stream_keeps_every_acknowledged_message(tmp_path: Path) -> None:
    home = tmp_path / "home"
    names = ["ana", "ben"]
    make_accounts(home, names)
    log = tmp_path / "serve.log"
    script = Script(reply=echo, token_delay=0.03)
    with ScriptedServer(script) as lm, processes() as procs:
        port = free_port()
        server = start_server(procs, home, port, lm.base_url, log)
        url = f"http://127.0.0.1:{port}/"
        learners = dict(zip(names, together(lambda n: Learner(url, n), names), strict=True))

        def before(lr: Learner) -> None:  # before the fault: a finished answer, a graded attempt
            lr.ask(f"how do leaves work, asks {lr.name}?")
            lr.practise(home / "learners.sqlite")

        together(before, learners.values())
        kill_while_streaming(server, learners)  # the fault: SIGKILL while both answers stream
        db = home / "learners.sqlite"
        assert_store_intact(db)  # the store on disk, before anything opens it again

        start_server(procs, home, port, lm.base_url, log)  # same data dir, same port
        # the sign-in survives the restart: sessions live in the store, not in the process
        cookies = learners["ana"].client.cookies
        assert httpx.get(url + "config", cookies=cookies).status_code == 200
        assert_acknowledged_stored(db, learners)
        # the students go on in the same sessions, on the restarted server
        assert_students_go_on(url, db, learners)


# -- the ingester ----------------------------------------------------------------------------

KB_CHILD = textwrap.dedent(
    """
    import os, sys, time
    import tutor.builders
    from knowledge_base.testing import HashEmbedder

    class Slow(HashEmbedder):  # the hashing embedder, at a pace a parent can kill it in
        def encode(self, texts):
            time.sleep(float(os.environ.get("EMBED_PAUSE", "0")))
            return super().encode(texts)

    tutor.builders.build_embedder = lambda config: Slow()
    from tutor.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_ingest_killed_mid_batch_then_stats_check_and_rerun(tmp_path: Path) -> None:
    course = tmp_path / "course"
    course.mkdir()
    n = 40
    for i in range(n):
        (course / f"unit{i:02d}.md").write_text(
            f"# Unit {i}\n\nFractions and ratios, part {i}: a numerator over a denominator.\n\n"
            f"## Practice {i}\n\nAdd one half and one quarter, then compare with unit {i}.\n",
            encoding="utf-8",
        )
    child = tmp_path / "kb_child.py"
    child.write_text(KB_CHILD)
    env = {**ENV, "TUTOR_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    db = tmp_path / "home" / "kb" / "kb.sqlite"

    def kb(*args: str, pause: float = 0.0) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(child), "kb", *args],
            env={**env, "EMBED_PAUSE": str(pause)},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def committed() -> int:
        if not db.exists():
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
            try:
                return int(c.execute("SELECT count(*) FROM documents").fetchone()[0])
            except sqlite3.OperationalError:  # not created yet
                return 0

    with processes() as procs:
        # 80 chunks, 2 per embedding batch, a commit every 8 chunks
        add = kb("add", str(course), "--set", "kb.checkpoint_chunks=8", "--set", "kb.batch_size=2",
                 pause=0.1)  # fmt: skip
        procs.append(add)
        deadline = time.monotonic() + 90
        while committed() < 4 and time.monotonic() < deadline and add.poll() is None:
            time.sleep(0.02)
        add.send_signal(signal.SIGKILL)
        add.communicate(timeout=30)
        assert add.returncode == -signal.SIGKILL
        stored = committed()
        assert 4 <= stored < n  # some checkpoints committed, the rest not

        stats = kb("stats", "--check", "--json")
        procs.append(stats)
        out, err = stats.communicate(timeout=60)
        assert stats.returncode == 0, err
        report = json.loads(out)
        assert report["problems"] == [] and report["documents"] == stored
        assert all(c["vectors"] == c["chunks"] for c in report["collections"])

        again = kb("add", str(course), "--set", "kb.checkpoint_chunks=8")
        procs.append(again)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        final = kb("stats", "--check", "--json")
        procs.append(final)
        out, _ = final.communicate(timeout=60)
        report = json.loads(out)
        assert report["problems"] == [] and report["documents"] == n
        assert report["chunks"] == report["collections"][0]["vectors"]


# -- the trainer -----------------------------------------------------------------------------

# ``tutor finetune train`` with test hooks added to the run's Trainer callbacks:
# FAULT_PACE      seconds of sleep per step (so a parent can act mid-epoch)
# FAULT_SAVING    a flag file created while checkpoint FAULT_SAVING_STEP is being written
#                 (weights written, trainer_state.json not yet); the child then waits there
# FAULT_FULL      after the first checkpoint: "rlimit" lowers RLIMIT_FSIZE to 4 KiB (SIGXFSZ
#                 ignored); "flag:PATH" creates PATH.saved and waits for PATH.go (the parent
#                 fills the disk in between)
TRAIN_CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys, time
    import transformers
    from transformers import TrainerCallback
    import finetune.recipe as recipe

    class Hooks(TrainerCallback):
        saves = 0
        def on_step_end(self, args, state, control, **kw):
            time.sleep(float(os.environ.get("FAULT_PACE", "0")))
        def on_save(self, args, state, control, **kw):
            self.saves += 1
            full = os.environ.get("FAULT_FULL", "")
            if self.saves != 1 or not full:
                return
            if full == "rlimit":
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
                resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
            else:
                flag = full.split(":", 1)[1]
                open(flag + ".saved", "w").close()
                while not os.path.exists(flag + ".go"):
                    time.sleep(0.05)

    saving = os.environ.get("FAULT_SAVING")
    if saving:
        real = transformers.Trainer._save_rng_state
        def _save_rng_state(self, output_dir):
            if self.state.global_step == int(os.environ["FAULT_SAVING_STEP"]):
                open(saving, "w").close()
                time.sleep(60)
            return real(self, output_dir)
        transformers.Trainer._save_rng_state = _save_rng_state

    run = recipe.run_finetune
    recipe.run_finetune = lambda config, callbacks=(): run(config, callbacks=[*callbacks, Hooks()])
    from tutor.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def write_chats(path: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        rows.append(
            {
                "problem": f"problem {i}",
                "messages": [
                    {"role": "user", "content": f"what is {i % 10} + {(i * 3) % 10} ?"},
                    {"role": "assistant", "content": "let us think . what is the first step ?"},
                ],
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def trainer(tmp_path: Path) -> Any:
    """Runs ``tutor finetune train`` (through TRAIN_CHILD) on a tiny Llama; returns a starter."""
    from tutor.testing.tiny_llama import save_tiny_llama

    model = save_tiny_llama(tmp_path / "tiny")
    data = write_chats(tmp_path / "chats.jsonl", 24)
    child = tmp_path / "train_child.py"
    child.write_text(TRAIN_CHILD)

    def start(home: Path, *extra: str, **fault: str) -> subprocess.Popen:
        args = [
            "finetune", "train", "--data", str(data), "--base-model", str(model),
            "--device", "cpu", "--dtype", "float32", "--batch-size", "2", "--eval-steps", "3",
            "--max-length", "256", "--lr", "0.01", "--run-name", "fault",
            "--set", "finetune.epochs=2", "--set", "finetune.eval_fraction=0.25",
            "--set", "finetune.eval_before=false", "--set", "finetune.early_stopping_patience=0",
            "--set", "finetune.logging_steps=1", *extra,
        ]  # fmt: skip
        env = {**ENV, "TUTOR_HOME": str(home), "PYTHONPATH": str(REPO), **fault}
        return subprocess.Popen(
            [sys.executable, str(child), *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start


def complete_checkpoints(run: Path) -> list[str]:
    """Checkpoints the Trainer wrote to the end (trainer_state.json is its last file)."""
    out = []
    for p in sorted((run / "checkpoints").glob("checkpoint-*")):
        with contextlib.suppress(OSError, ValueError):
            json.loads((p / "trainer_state.json").read_text())
            out.append(p.name)
    return out


def assert_resumed_to_the_end(run: Path, proc: subprocess.Popen, resumed_from: str) -> None:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "completed" and Path(m["resumed_from"]).name == resumed_from
    steps = [h["step"] for h in m["log_history"] if "loss" in h]
    # 18 training examples, 2 a step, 2 epochs: the steps go on from the checkpoint, none lost
    # and none repeated
    assert m["global_step"] == m["max_steps"] == 18 and m["epoch"] == pytest.approx(2.0)
    assert steps == list(range(1, 19))
    assert (run / "adapter" / "adapter_model.safetensors").is_file()


def test_trainer_killed_mid_epoch_while_checkpointing_resumes(tmp_path: Path, trainer: Any) -> None:
    home = tmp_path / "home"
    run = home / "runs" / "fault"
    flag = tmp_path / "saving"
    with processes() as procs:
        # checkpoints every 3 steps; 9 steps an epoch: step 6 is in the middle of epoch 1
        first = trainer(home, FAULT_PACE="0.05", FAULT_SAVING=str(flag), FAULT_SAVING_STEP="6")
        procs.append(first)
        deadline = time.monotonic() + 180
        while not flag.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), first.communicate(timeout=30)[1][-3000:]
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        # checkpoint-6 was cut short (no trainer_state.json); checkpoint-3 is whole
        assert (run / "checkpoints" / "checkpoint-6").is_dir()
        assert complete_checkpoints(run) == ["checkpoint-3"]
        assert not (run / "adapter").exists()

        again = trainer(home, "--resume")
        procs.append(again)
        assert_resumed_to_the_end(run, again, "checkpoint-3")
        assert not (run / "checkpoints" / "checkpoint-6" / "trainer_state.json").exists() or (
            "checkpoint-6" in complete_checkpoints(run)  # written again, whole, by the resumed run
        )


@contextlib.contextmanager
def small_disk(where: Path, size: str = "8m") -> Iterator[Path]:
    where.mkdir(parents=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def can_mount_tmpfs(where: Path) -> bool:
    where.mkdir(parents=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True
    )
    if r.returncode == 0:
        subprocess.run(["umount", str(where)], capture_output=True)
    return r.returncode == 0


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on ``disk``."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_disk_full_while_checkpointing(tmp_path: Path, trainer: Any) -> None:
    """A real full disk (a tmpfs) as root; for other users, RLIMIT_FSIZE (writes fail EFBIG)."""
    import torch
    from safetensors.torch import load_file

    how = "tmpfs" if os.geteuid() == 0 and can_mount_tmpfs(tmp_path / "probe") else "rlimit"
    flag = tmp_path / "disk-full"
    with contextlib.ExitStack() as stack:
        procs = stack.enter_context(processes())
        if how == "tmpfs":
            home = stack.enter_context(small_disk(tmp_path / "disk")) / "home"
            proc = trainer(home, FAULT_FULL=f"flag:{flag}")
        else:
            home = tmp_path / "home"
            proc = trainer(home, FAULT_FULL="rlimit")
        procs.append(proc)
        run = home / "runs" / "fault"
        if how == "tmpfs":
            deadline = time.monotonic() + 180
            while not Path(f"{flag}.saved").exists() and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                time.sleep(0.05)
            filler = fill(home.parent, leave=8 * 1024)
            Path(f"{flag}.go").touch()
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 2, err[-3000:]
        lines = [x for x in err.strip().splitlines() if x.strip()]
        assert "Traceback" not in err
        assert lines[-1].startswith("error: no room left to save a training checkpoint in ")
        assert "checkpoint-3, is kept" in lines[-1] and "--run-name fault --resume" in lines[-1]

        # the previous checkpoint is whole and loads; the one cut short is gone
        assert complete_checkpoints(run) == ["checkpoint-3"]
        assert [p.name for p in (run / "checkpoints").glob("checkpoint-*")] == ["checkpoint-3"]
        ckpt = run / "checkpoints" / "checkpoint-3"
        assert any("lora_B" in k for k in load_file(str(ckpt / "adapter_model.safetensors")))
        torch.load(ckpt / "optimizer.pt", weights_only=True)
        assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 3
        assert not (run / "adapter").exists()

        # room again: resume finishes the run
        if how == "tmpfs":
            filler.unlink()
        again = trainer(home, "--resume")
        procs.append(again)
        assert_resumed_to_the_end(run, again, "checkpoint-3")
