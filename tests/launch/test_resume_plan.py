"""latentrun.launch.resume_plan: what a resume may change, and what a longer train.max_steps does
to the learning-rate schedule, decided before anything is written."""

import contextlib

import pytest

from latentrun import config
from latentrun.core.errors import ConfigError
from latentrun.launch import resume_plan
from latentrun.runs.run_dir import RunDir

SMOKE_LIKE = {
    "model": {"name": "simple_transformer", "d_model": 16, "num_layers": 2, "num_heads": 2},
    "optimizer": {"name": "adamw", "lr": 1e-3},
    "scheduler": {"name": "warmup_cosine", "warmup_steps": 5, "min_lr_ratio": 0.1},
    "train": {"device": "cpu", "batch_size": 4, "max_steps": 40, "precision": "fp32"},
}


def resolved(**train):
    return config.resolve({**SMOKE_LIKE, "train": {**SMOKE_LIKE["train"], **train}})


@pytest.fixture
def new_run(tmp_path):
    """A run dir as `start` leaves it before its first checkpoint."""
    run = RunDir.create(tmp_path, "plan")
    cfg = resolved()
    run.write_config(cfg)
    run.record_start(cfg, 1)
    return run


def plan(run, *overrides, force=False):
    with contextlib.ExitStack() as held:
        return resume_plan.plan(run, list(overrides), force, None, held)


def test_a_run_without_a_checkpoint_resumes_from_step_0_with_nothing_to_record(new_run):
    resume = plan(new_run)
    assert (resume.step, resume.changes, resume.forced, resume.lr_schedule) == (0, {}, False, None)
    assert resume.checkpoint is None and resume.load_checkpoint(new_run) is None
    assert resume.event == {"forced": False}


def test_only_run_control_keys_and_the_span_the_run_had_change_without_force(new_run):
    assert plan(new_run, "train.max_steps=60", "train.schedule_steps=40").lr_schedule == "keep"
    with pytest.raises(ConfigError, match=r"--set train.schedule_steps: changes what the run computes \(None -> 30\)"):
        plan(new_run, "train.schedule_steps=30")
    forced = plan(new_run, "train.schedule_steps=30", force=True)
    assert forced.forced and forced.event == {"forced": True}


def test_the_checkpoint_stays_on_rank_0_when_the_plan_is_broadcast():
    import pickle

    resume = resume_plan.Resume(resolved(), 10, {}, False, False, checkpoint={"step": 10})
    sent = pickle.loads(pickle.dumps(resume))
    assert sent.checkpoint is None and resume.checkpoint == {"step": 10}
    assert (sent.config, sent.step) == (resume.config, resume.step)


def test_a_finished_run_extended_keeps_its_floor_or_stretches_with_a_warning():
    frozen = resolved()
    assert resume_plan._lr_schedule(frozen, resolved(max_steps=60, schedule_steps=40), 40) == ("keep", None)
    choice, warning = resume_plan._lr_schedule(frozen, resolved(max_steps=60), 40)
    # Update 40 ran at 0.1 + 0.45 (1 + cos(34/35 pi)) of 1e-3; update 41 of 60 runs at 0.1 + 0.45 (1 + cos(35/55 pi)).
    assert choice == "stretch" and warning == (
        "train.max_steps 40 -> 60 stretches the learning-rate schedule over the new length: the rate goes "
        "from 0.000102 at step 40 up to 0.000363 at step 41; to stay on the schedule's floor instead, "
        "resume with --set train.schedule_steps=40"
    )


def test_a_stretch_that_only_slows_the_decay_or_a_constant_schedule_is_not_warned_about():
    # Stopped in warm-up: the stretched rate of the next update is the same warm-up step.
    assert resume_plan._lr_schedule(resolved(), resolved(max_steps=60), 3) == ("stretch", None)
    constant = {**SMOKE_LIKE, "scheduler": {"name": "constant", "warmup_steps": 5}}
    frozen, longer = (
        config.resolve(constant),
        config.resolve({**constant, "train": {**SMOKE_LIKE["train"], "max_steps": 80}}),
    )
    assert resume_plan._lr_schedule(frozen, longer, 40) == ("stretch", None)
