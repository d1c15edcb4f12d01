"""No damaged or smoke-test result is ever taken as done, and no two writers share a temporary file.

A result counts as done only if :func:`minilib.results.check_result` passes: the file parses, has the experiment's
schema, is no ``--quick`` smoke test unless the request is one, and holds the values of the run as planned. The
commands list any other file as todo with the reason, set it aside as ``<file>.rejected-<why>`` and make the run
again; the readers name a bad file. The commands run here with a stand-in for training (the payload a run writes,
without the run), so every test takes well under a second but the one with two writing processes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from result_helpers import fake_payload, mnist_payload, write_mnist_result

from minilib import tempfiles
from minilib.reports import runs as R
from minilib.reproduce import cifar10, compare, compare_timing, mnist, sr
from minilib.reproduce.__main__ import main as reproduce_main
from minilib.results import (
    RESULTS_DIR,
    QuickResultWarning,
    ResultFileError,
    check_result,
    read_result,
    remove_stale_temp_files,
    set_aside,
    write_result,
)

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600


@pytest.fixture
def fake_mnist_training(monkeypatch):
    """``python -m minilib.reproduce mnist --backend numpy`` without data or training: each run "trains" into the
    payload it would write (:func:`result_helpers.mnist_payload`). Returns the list of ``(run, seed, quick)``
    trained."""
    trained = []

    def train_run(run, seed, splits, quick=False):
        trained.append((run.name, seed, quick))
        return mnist_payload(run.model, seed, quick)

    monkeypatch.setattr(mnist, "train_run", train_run)
    monkeypatch.setattr(mnist, "load_splits", lambda quick=False: None)
    return trained


def mnist_command(folder, *options) -> list:
    return ["mnist", "--backend", "numpy", "--runs", "baseline", "--seeds", "0", "--out-dir", str(folder), *options]


def expected(name="baseline", seed=0, quick=False) -> dict:
    """What a NumPy-backend MNIST run's file must hold."""
    return mnist.expected_result(mnist.parse_run(name, "numpy"), seed, quick)


def listed(capsys, folder, *options) -> str:
    assert reproduce_main(mnist_command(folder, "--list", *options)) == 0
    return capsys.readouterr().out


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def age(path, hours: float) -> None:
    then = time.time() - hours * HOUR
    os.utime(path, (then, then))


# --------------------------------------------------------------------------------------------------
# Damaged, quick and other-recipe files: todo with the reason, made again, kept aside
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"  \n", b'{"seed": 0, "comm', b"[1, 2]", b"\xff\xfe{}", b"null"],
                         ids=["empty", "blank", "truncated", "a-list", "not-utf8", "null"])
def test_a_damaged_file_is_todo_then_made_again_and_kept_aside(tmp_path, capsys, fake_mnist_training, content):
    path = tmp_path / "baseline-numpy_seed0.json"
    path.write_bytes(content)                           # `: > D/baseline_seed0.json` and friends
    out = listed(capsys, tmp_path)
    assert "todo  baseline-numpy seed 0" in out and "(damaged:" in out and "0 of 1 done" in out
    assert reproduce_main(mnist_command(tmp_path)) == 0
    assert fake_mnist_training == [("baseline-numpy", 0, False)]
    assert check_result(path, expected()) is None
    assert (tmp_path / "baseline-numpy_seed0.json.rejected-damaged").read_bytes() == content     # never deleted
    assert "kept as baseline-numpy_seed0.json.rejected-damaged" in capsys.readouterr().err
    assert "1 of 1 done" in listed(capsys, tmp_path)


def test_a_quick_result_does_not_count_for_a_real_request(tmp_path, capsys, fake_mnist_training):
    """The issue's first case: a --quick run, then the same request without --quick."""
    assert reproduce_main(mnist_command(tmp_path, "--quick")) == 0
    path = tmp_path / "baseline-numpy_seed0.json"
    assert json.loads(path.read_text())["quick"] is True
    assert "1 of 1 done" in listed(capsys, tmp_path, "--quick")          # a smoke test counts for a smoke test
    out = listed(capsys, tmp_path)
    assert "todo  baseline-numpy seed 0" in out and "(quick: the file is a --quick smoke test" in out
    assert "0 of 1 done" in out
    assert reproduce_main(mnist_command(tmp_path)) == 0                  # no --force needed
    assert fake_mnist_training == [("baseline-numpy", 0, True), ("baseline-numpy", 0, False)]
    assert json.loads(path.read_text())["quick"] is False
    assert json.loads((tmp_path / "baseline-numpy_seed0.json.rejected-quick").read_text())["quick"] is True
    assert "1 of 1 done" in listed(capsys, tmp_path)
    # a real result stands in for a smoke test: a --quick request now has nothing to do
    assert reproduce_main(mnist_command(tmp_path, "--quick")) == 0
    assert len(fake_mnist_training) == 2 and "exists" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["quick"] for r in R.load_results("mnist", tmp_path)] == [False]     # the set-aside file is not read


@pytest.mark.parametrize("run, changes, key", [
    ("baseline", {"epochs": 5}, "epochs=5"),
    ("mvnet-a-10", {"lam": 0.5}, "lam=0.5"),
    ("baseline", {"recipe": {**mnist_payload()["recipe"], "lr": 0.05}}, "recipe.lr=0.05"),
    ("baseline", {"run": "versatile-3-numpy"}, "run='versatile-3-numpy'"),
    ("baseline", {"model": "versatile-3"}, "model='versatile-3'"),
], ids=["epochs", "lam", "recipe-lr", "run", "model"])
def test_a_file_of_another_recipe_is_todo_then_made_again(tmp_path, capsys, fake_mnist_training, run, changes, key):
    path = write_mnist_result(tmp_path, run, **changes)
    out = listed(capsys, tmp_path, "--runs", run)
    assert f"todo  {run}-numpy seed 0" in out and f"(recipe: {key} in the file" in out
    assert reproduce_main(mnist_command(tmp_path, "--runs", run)) == 0
    assert fake_mnist_training == [(f"{run}-numpy", 0, False)]
    assert check_result(path, expected(run)) is None
    assert (tmp_path / f"{path.name}.rejected-recipe").is_file()


@pytest.mark.parametrize("changes, detail", [
    ({"test_accuracy": "0.99"}, "test_accuracy='0.99' is str, must be int or float or null"),
    ({"quick": 0}, "quick=0 is int, must be bool"),
    ({"history": None}, "history=None is NoneType, must be dict"),
], ids=["number-as-text", "quick-as-int", "history-null"])
def test_a_file_off_the_schema_is_rejected(tmp_path, changes, detail):
    path = write_mnist_result(tmp_path, **changes)
    problem = check_result(path, expected())
    assert problem.kind == "schema" and detail in problem.detail


def test_check_result_order_and_the_seed(tmp_path):
    path = tmp_path / "baseline-numpy_seed0.json"
    assert check_result(path, expected()).kind == "missing"
    write_result(path, {key: value for key, value in mnist_payload().items() if key != "cost"}, seed=0)
    assert check_result(path, expected()).detail == "the key 'cost' is missing"
    write_result(path, mnist_payload(), seed=1)         # the file of seed 1 under seed 0's name
    assert str(check_result(path, expected())) == "recipe: seed=1 in the file, expected 0"
    write_result(path, mnist_payload(), seed=True)      # JSON true is no seed
    assert check_result(path, expected()).kind == "schema"
    write_result(path, mnist_payload(), seed=0)
    assert check_result(path, expected()) is None


def test_set_aside_never_overwrites_and_never_deletes(tmp_path):
    path = write_mnist_result(tmp_path, quick=True)
    first = set_aside(path, check_result(path, expected()))
    write_mnist_result(tmp_path, quick=True)
    second = set_aside(path, check_result(path, expected()))
    assert (first.name, second.name) == ("baseline-numpy_seed0.json.rejected-quick",
                                         "baseline-numpy_seed0.json.rejected-quick-2")
    assert not path.exists() and first.is_file() and second.is_file()
    assert set_aside(path, check_result(path)) is None  # nothing left to move


def test_every_experiment_checks_its_files(tmp_path):
    """Each command passes its expected_result; a quick file, another recipe and a damaged file are caught in
    each, and what each writes for a run counts as done for it."""
    cases = [(cifar10.expected_result, cifar10.Run("basis-split")), (sr.expected_result, sr.Run("mvnet-b-4")),
             (compare.expected_result, compare.parse_run("mvnet-a-b25")), (mnist.expected_result, mnist.Run("mvnet-a-10"))]
    for expect, run in cases:
        path = tmp_path / f"{run.name}_seed2.json"
        write_result(path, fake_payload(expect(run, 2)), seed=2)
        assert check_result(path, expect(run, 2)) is None
        assert check_result(path, expect(run, 2, quick=True)).kind == "recipe"     # epochs/iterations differ
        write_result(path, fake_payload(expect(run, 2, quick=True)), seed=2)
        assert check_result(path, expect(run, 2)).kind == "quick"
        assert check_result(path, expect(run, 2, quick=True)) is None
        path.write_text("{")
        assert check_result(path, expect(run, 2)).kind == "damaged"


def test_compare_timing_counts_a_file_only_for_its_rounds_and_quickness():
    full = compare_timing.expected_result(0, False, compare_timing.SIZES["full"])
    committed = RESULTS_DIR / "compare_timing.json"
    if not committed.is_file():
        pytest.skip("no committed compare_timing.json")
    assert check_result(committed, full) is None
    assert check_result(committed, {**full, "rounds": 10}).kind == "recipe"
    assert check_result(committed, compare_timing.expected_result(0, True, compare_timing.SIZES["quick"])).kind \
        == "recipe"


@pytest.mark.parametrize("experiment", ["mnist", "cifar10", "sr", "compare"])
def test_every_committed_result_counts_as_done_for_its_run(experiment):
    """The schema and each experiment's expected_result agree with every file committed under results/: a change
    that would make the commands re-make committed runs fails here first."""
    module = {"mnist": mnist, "cifar10": cifar10, "sr": sr, "compare": compare}[experiment]
    paths = sorted((RESULTS_DIR / experiment).glob("*.json"))
    if not paths:
        pytest.skip(f"no committed results/{experiment}")
    for path in paths:
        result = json.loads(path.read_text())
        if experiment == "mnist":
            run = mnist.parse_run(result["run"].removesuffix("-numpy"), result["backend"])
        else:
            run = module.parse_run(result["run"])
        assert check_result(path, module.expected_result(run, result["seed"])) is None, path.name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(R.load_results(experiment)) == len(paths)


# --------------------------------------------------------------------------------------------------
# Readers name the bad file; quick files never mixed in silently
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("write, problem", [
    (lambda folder: (folder / "baseline_seed0.json").write_text(""), "is damaged (not a readable JSON object): "
                                                                       "the file is empty"),
    (lambda folder: (folder / "baseline_seed0.json").write_text('{"run": "baseline", "se'), "not valid JSON"),
    (lambda folder: write_result(folder / "baseline-numpy_seed0.json",
                                 {k: v for k, v in mnist_payload().items() if k != "test_accuracy"}, seed=0),
     "is not of the result schema: the key 'test_accuracy' is missing"),
    (lambda folder: write_result(folder / "versatile-3_seed0.json", mnist_payload(), seed=0),
     "is named for another run: it holds run 'baseline-numpy' seed 0, whose file is baseline-numpy_seed0.json"),
    (lambda folder: write_mnist_result(folder, experiment="sr"), "experiment='sr' in the file, expected 'mnist'"),
], ids=["empty", "truncated", "missing-key", "misnamed", "other-experiment"])
def test_load_results_names_the_bad_file_and_what_is_wrong(tmp_path, write, problem):
    write_mnist_result(tmp_path, "mvnet-a-10")          # a good file beside it
    write(tmp_path)
    with pytest.raises(ResultFileError) as err:
        R.load_results("mnist", tmp_path)
    assert str(err.value.path) in str(err.value) and problem in str(err.value)
    assert "python -m minilib.reproduce mnist" in str(err.value)


def test_load_results_leaves_quick_files_out_with_a_warning_naming_them(tmp_path):
    write_mnist_result(tmp_path, "baseline")
    quick = write_mnist_result(tmp_path, "versatile-3", quick=True)
    with pytest.warns(QuickResultWarning, match=str(quick)):
        results = R.load_results("mnist", tmp_path)
    assert [r["run"] for r in results] == ["baseline-numpy"]
    assert [r["run"] for r in R.load_results("mnist", tmp_path, include_quick=True)] == ["baseline-numpy",
                                                                                        "versatile-3-numpy"]


def test_read_result_names_a_damaged_file_and_warns_of_a_quick_one(tmp_path):
    path = tmp_path / "compare_timing.json"
    path.write_text('{"experiment": "compare-timing", ')
    with pytest.raises(ResultFileError, match=f"result file {path} is damaged"):
        read_result(path)
    full = compare_timing.expected_result(0, True, compare_timing.SIZES["quick"])
    write_result(path, fake_payload(full), seed=0)
    with pytest.warns(QuickResultWarning, match=str(path)):
        assert read_result(path)["quick"] is True
    write_result(path, {k: v for k, v in fake_payload(full).items() if k != "networks"}, seed=0)
    with pytest.raises(ResultFileError, match="the key 'networks' is missing"):
        read_result(path)


# --------------------------------------------------------------------------------------------------
# Temporary files: unique per writer, removed when stale
# --------------------------------------------------------------------------------------------------


WRITER = textwrap.dedent("""
    import sys, time
    from minilib import results
    results.pin_revision()                  # no git call per write
    path, tag = sys.argv[1], sys.argv[2]
    blob = tag * 1_000_000                  # 1 MB: a write takes long enough for the two writers to overlap
    deadline, count = time.time() + 1.5, 0
    while time.time() < deadline:
        results.write_result(path, {"tag": tag, "count": count, "blob": blob}, seed=0)
        count += 1
    print(count)
""")


def test_two_processes_writing_one_result_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "baseline_seed0.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) for tag in "ab"]
    reads = 0
    while any(writer.poll() is None for writer in writers):
        if path.exists():                   # every read sees one writer's whole file, never a mix or a part
            result = json.loads(path.read_text())
            assert result["blob"] == result["tag"] * 1_000_000
            reads += 1
    outputs = [writer.communicate() for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], outputs
    assert all(int(out) > 0 for out, _ in outputs) and reads > 0
    assert json.loads(path.read_text())["tag"] in "ab"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline_seed0.json"]      # no temporary file left


def test_temporary_names_are_per_writer():
    first, second = tempfiles.temp_path("out/r.json"), tempfiles.temp_path("out/r.json")
    assert first != second and first.parent == Path("out")
    assert tempfiles.TEMP_NAME.match(first.name)["pid"] == str(os.getpid())


def test_stale_result_temp_files_are_removed_when_a_sweep_starts(tmp_path, capsys, fake_mnist_training):
    write_mnist_result(tmp_path, "baseline")                             # done: the sweep trains nothing
    dead, alive = dead_pid(), os.getppid()
    names = {"killed": f".baseline_seed0.json.{dead}.0123456789abcdef.tmp",     # its writer is gone
             "running": f".baseline_seed0.json.{alive}.0123456789abcdef.tmp",   # a live process's, fresh
             "old-unnamed": "versatile-3_seed0.json.tmp",                       # older code's name, 2 h old
             "fresh-unnamed": "baseline_seed0.json.tmp",                        # older code's name, fresh
             "other": "notes.tmp"}                                              # not a result's
    for name in names.values():
        (tmp_path / name).write_text("{")
    age(tmp_path / names["old-unnamed"], 2)
    age(tmp_path / names["other"], 2)
    assert listed(capsys, tmp_path) and (tmp_path / names["killed"]).exists()   # --list changes nothing
    assert reproduce_main(mnist_command(tmp_path)) == 0
    left = {p.name for p in tmp_path.iterdir()}
    assert names["killed"] not in left and names["old-unnamed"] not in left
    assert {names["running"], names["fresh-unnamed"], names["other"]} <= left
    assert fake_mnist_training == [] and capsys.readouterr().err.count("the temporary file of a writer") == 2


def test_is_stale_by_owner_and_by_age(tmp_path):
    path = tmp_path / "x"
    path.mkdir()
    (path / "inside").write_text("being written")
    assert not tempfiles.is_stale(path, os.getpid()) and not tempfiles.is_stale(path, None)
    assert tempfiles.is_stale(path, dead_pid())
    age(path, 2)
    assert not tempfiles.is_stale(path, None)           # the newest file inside is what counts
    age(path / "inside", 2)
    assert tempfiles.is_stale(path, None) and tempfiles.is_stale(path, os.getppid())
    assert remove_stale_temp_files(tmp_path / "no such folder") == []


def test_stale_checkpoint_temp_files_are_removed(tmp_path):
    pytest.importorskip("torch")
    from minilib.training import checkpoint

    dead = dead_pid()
    saved = checkpoint.save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1})
    killed = [tmp_path / f".checkpoint.pt.{dead}.tmp", tmp_path / f".checkpoint.pt.{dead}.0123456789abcdef.tmp"]
    running = tmp_path / f".checkpoint.pt.{os.getppid()}.tmp"
    for path in [*killed, running]:
        path.write_bytes(b"half a checkpoint")
    assert sorted(checkpoint.remove_stale_temp_files(tmp_path)) == sorted(killed)
    assert running.exists() and checkpoint.load_checkpoint(saved)["step"] == 1


def test_compare_keeps_the_baseline_weights_atomic_and_removes_stale_ones(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import torch

    model = torch.nn.Linear(2, 1)
    weights = compare.weights_path(tmp_path, 0)
    compare.save_weights(weights, model, epochs=12)
    assert set(compare.load_weights(weights, 12)) == {"weight", "bias"} and compare.load_weights(weights, 1) is None
    assert sorted(p.name for p in weights.parent.iterdir()) == ["baseline_seed0.npz"]
    weights.write_bytes(b"PK\x03\x04 damaged")
    assert compare.load_weights(weights, 12) is None     # trained and written again, not a crash
    stale = [weights.parent / f".baseline_seed0.npz.{dead_pid()}.0123456789abcdef.tmp",
             weights.parent / "baseline_seed1.tmp.npz"]
    for path in stale:
        path.write_bytes(b"half")
    age(stale[1], 2)
    for seed in (0, 1):                                  # every planned run done: nothing trains
        write_result(tmp_path / f"baseline_seed{seed}.json",
                     fake_payload(compare.expected_result(compare.Run("baseline"), seed)), seed=seed)
    monkeypatch.setattr("minilib.training.set_threads", lambda threads: threads)
    assert reproduce_main(["compare", "--runs", "baseline", "--out-dir", str(tmp_path)]) == 0
    assert not any(path.exists() for path in stale)


def test_the_trainer_removes_what_a_killed_run_left_in_its_folder(tmp_path):
    torch = pytest.importorskip("torch")
    from minilib.training import distributed
    from minilib.training.trainer import TrainConfig, train

    dead = dead_pid()
    stale = [tmp_path / f".checkpoint.pt.{dead}.tmp",                         # the name of the code before
             tmp_path / f".checkpoint.pt.{dead}.0123456789abcdef.tmp",
             tmp_path / f".metrics.json.{dead}.0123456789abcdef.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    threads, rng = torch.get_num_threads(), distributed.capture_rng_state()
    try:                                # the trainer sets both, as a command does; the tests after this one keep theirs
        train(TrainConfig(model="tiny-cnn", data="synthetic", epochs=1, max_steps=2, batch_size=32, milestones=[2],
                          dtype="float64", threads=1, progress=False, out=str(tmp_path)))
    finally:
        torch.set_num_threads(threads)
        distributed.restore_rng_state(rng)
    assert not any(path.exists() for path in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.json"]
