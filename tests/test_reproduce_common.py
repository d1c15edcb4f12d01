"""What every reproduction command shares (minilib.reproduce.common): the plan, and running it incrementally."""
from __future__ import annotations

import argparse
import json
import types

from minilib.reproduce.common import execute, make_jobs, plan_runs
from minilib.results import write_result


def _jobs(tmp_path, names=("a", "b", "c")):
    runs = [types.SimpleNamespace(name=name) for name in names]
    return make_jobs(plan_runs(runs, None, lambda run: (0,)), tmp_path)


def _args(**kw):
    return argparse.Namespace(**{"force": False, "list": False, "backend": "numpy", **kw})


def test_execute_trains_what_is_missing_and_skips_what_another_process_wrote_meanwhile(tmp_path, capsys):
    jobs = _jobs(tmp_path)
    write_result(jobs[0].path, {"value": 0}, seed=0)    # done before the sweep started
    trained = []

    def train(job):
        trained.append(job.run.name)
        if job.run.name == "b":                         # meanwhile a second sweep finishes "c"
            write_result(jobs[2].path, {"by": "the other process"}, seed=0)
        return {"value": 1}

    assert execute(jobs, _args(), train, lambda payload: "ok") == 0
    assert trained == ["b"]
    assert json.loads(jobs[2].path.read_text())["by"] == "the other process"
    assert json.loads(jobs[1].path.read_text())["value"] == 1
    out = capsys.readouterr().out
    assert "a seed 0" in out and "written meanwhile" in out


def test_force_retrains_everything(tmp_path):
    jobs = _jobs(tmp_path, ("a", "b"))
    for job in jobs:
        write_result(job.path, {"value": 0}, seed=0)
    trained = []
    execute(jobs, _args(force=True), lambda job: trained.append(job.run.name) or {"value": 2}, lambda p: "ok")
    assert trained == ["a", "b"] and all(json.loads(job.path.read_text())["value"] == 2 for job in jobs)


def test_plan_runs_keeps_the_first_mention_and_given_seeds():
    runs = [types.SimpleNamespace(name=name) for name in ("a", "b", "a")]
    planned = plan_runs(runs, [3, 4], lambda run: (0,))
    assert [(run.name, seeds) for run, seeds in planned] == [("a", (3, 4)), ("b", (3, 4))]
