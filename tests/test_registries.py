"""The registries are complete: whatever is registered is listed, tested, planned and has a default.

Each test names what is missing, so adding a dataset, a stage or a checkpoint layout without its other half fails
here with the thing's name.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from siambench.checkpoints import load
from siambench.checkpoints.formats import FORMATS
from siambench.cli import build_parser, main
from siambench.configs import list_presets, load_preset
from siambench.data import get_dataset_info, list_datasets
from siambench.data.prepare import check_all
from siambench.eval_all import DATA_PLAN, EMBEDDED_PLAN
from siambench.evaluate import load_protocol, load_stages
from siambench.pretrain import METHODS
from siambench.pretrain.config import load_config
from siambench.stages import STAGES, TASKS, Job, default_protocol, stage_of

TESTS = Path(__file__).parent

# Jobs of eval-all's plans that deliberately run a preset other than the task's default.
EXTRA_JOBS = {Job("linear", "shapes", "tiny")}


def test_data_list_shows_every_registered_dataset(capsys):
    assert main(["data", "list"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    missing = sorted(set(list_datasets()) - listed)
    assert not missing, f"registered but not in `siambench data list`: {missing}"
    assert {"voc0712", "coco2017", "shapes_voc"} <= listed


def test_data_check_knows_every_on_disk_dataset(tmp_path):
    on_disk = [n for n in list_datasets() if get_dataset_info(n).split_sizes and not get_dataset_info(n).embedded]
    assert {"voc0712", "coco2017"} <= set(on_disk)
    assert [s.state for s in check_all(tmp_path, on_disk)] == ["absent"] * len(on_disk)


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_has_a_reader_test(name):
    """``data/<module>.py`` registers it, so ``tests/data/test_<module>.py`` must exist and name it."""
    module = get_dataset_info(name).build.__module__.rsplit(".", 1)[1]
    test_file = TESTS / "data" / f"test_{module}.py"
    assert test_file.is_file(), f"dataset {name!r} ({module}.py) has no reader test {test_file.relative_to(TESTS)}"
    assert f'"{name}"' in test_file.read_text(), f"{test_file.relative_to(TESTS)} never names dataset {name!r}"


def cli_tasks() -> list[str]:
    eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]
    (task,) = [a for a in eval_parser._actions if a.dest == "task"]
    return list(task.choices)


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_is_reachable_has_an_embedded_default_and_is_planned(task):
    assert stage_of(task).name in cli_tasks(), f"task {task!r} is not accepted by `siambench eval`"
    embedded = [job for job in EMBEDDED_PLAN if job.task == task]
    assert embedded, f"stage {task!r} is missing from eval-all's embedded plan"
    for job in embedded:
        assert get_dataset_info(job.dataset).embedded, f"{job} in the embedded plan needs data"
    defaults = {job.dataset: default_protocol(task, job.dataset) for job in embedded}
    for dataset, preset in defaults.items():
        load_preset(stage_of(task).presets, preset)  # the default preset exists
    assert any(job.protocol == defaults[job.dataset] for job in embedded), (
        f"eval-all's embedded plan never runs {task!r} with its default preset {set(defaults.values())}")


def test_every_cli_task_is_a_stage_and_every_task_has_an_entry_point():
    assert cli_tasks() == list(STAGES)
    assert set(load_stages()) == set(TASKS)


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_stage_plans_only_its_own_tasks_with_presets_that_exist(stage):
    declared = STAGES[stage]
    for job in (*declared.embedded_plan, *declared.data_plan):
        assert job.task in declared.tasks, f"{stage}'s plan names {job.task!r}, not one of its tasks"
        load_preset(declared.presets, job.protocol)


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_preset_of_a_stage_sets_only_settings_its_base_has(stage):
    for name in list_presets(STAGES[stage].presets):
        load_protocol(stage, name, [])


def test_running_one_stage_imports_only_that_stage(tmp_path):
    """`siambench eval knn` must not import the dense stages (or detectron2)."""
    code = ("import sys; from siambench.cli import build_parser; from siambench.evaluate import entry_point; "
            "build_parser(); entry_point('knn'); "
            "print(sorted(m for m in sys.modules if m.startswith(('siambench.eval_', 'detectron2'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["siambench.eval_knn", "siambench.eval_knn.knn", "siambench.eval_knn.run"], out


@pytest.mark.parametrize("job", sorted(set(EMBEDDED_PLAN) | set(DATA_PLAN), key=str), ids=str)
def test_eval_all_runs_the_presets_siambench_eval_defaults_to(job):
    """eval-all and `siambench eval` without --protocol must not disagree (they did, for segmentation)."""
    if job not in EXTRA_JOBS:
        assert job.protocol == default_protocol(job.task, job.dataset), (
            f"eval-all runs {job.task} on {job.dataset} with {job.protocol!r}, `siambench eval` defaults to "
            f"{default_protocol(job.task, job.dataset)!r}")


def checkpoint_writers() -> dict:
    """tests/checkpoints/conftest.py's WRITERS (one writer per layout), read without importing it as a conftest."""
    spec = importlib.util.spec_from_file_location("checkpoint_writers", TESTS / "checkpoints" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRITERS


def test_every_checkpoint_layout_has_a_writer_fixture_and_a_round_trip():
    writers = checkpoint_writers()
    missing = sorted(set(FORMATS) - set(writers))
    assert not missing, f"checkpoint layouts without a writer in tests/checkpoints/conftest.py WRITERS: {missing}"
    round_trip = (TESTS / "checkpoints" / "test_formats.py").read_text()
    untested = sorted(name for name in writers if f'"{name}"' not in round_trip.split("CASES =")[0])
    assert not untested, f"writers not in test_formats.py's FORMATS (never round-tripped): {untested}"


def test_detection_without_detectron2_is_skipped_with_the_reason(random_backbone, tmp_path):
    if importlib.util.find_spec("detectron2") is not None:
        pytest.skip("detectron2 is installed: eval-all runs detection")
    from siambench.eval_all import eval_all
    from siambench.evaluate import EvalContext

    ctx = EvalContext(checkpoint=str(random_backbone), results_dir=str(tmp_path / "results"), device="cpu",
                      progress=False)
    outcome = eval_all(ctx, tasks=["detection"])
    assert [(job.task, "detectron2" in reason) for job, reason in outcome["skipped"]] == [("detection", True)]
    assert not outcome["failed"] and not outcome["records"]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_round_trips_its_training_checkpoint(method, tmp_path):
    """save_checkpoint → checkpoints.load gives back the online backbone, every other module set aside by name."""
    from siambench.pretrain.state import save_checkpoint
    from siambench.pretrain.trainer import build_model

    cfg = load_config(f"{method}_shapes")
    model = build_model(cfg)
    path = save_checkpoint(tmp_path, 1, model, torch.optim.SGD(model.parameters(), lr=0.1), cfg, [])
    backbone = load(path)
    online = model.backbone.state_dict()
    assert backbone.state_dict.keys() <= online.keys()
    assert all(torch.equal(v, online[k]) for k, v in backbone.state_dict.items())
    assert {label.split(" (")[0] for label in backbone.meta["dropped"]} == set(type(model).STATE_PARTS.values())
