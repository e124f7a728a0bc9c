"""Loss explosions through whole runs: a NaN or a spike injected at chosen steps is skipped, cuts
the learning rate, leaves an emergency checkpoint, and a streak rolls back; all of it resumes exactly."""

import json

from helpers import assert_states_equal, final_state, only_run, run_cli, scalars

from latentrun.config import build
from latentrun.launch import assembly
from latentrun.runs import checkpoint_file as checkpoint

SHORT = ("--set", "train.max_steps=20")


def inject(monkeypatch, faults: dict[int, float], once: bool = True) -> None:
    """Make the loss of step s come out times faults[s] (nan for a NaN), the first time step s runs
    (`once`) or every time; the model, data and optimizer are the run's own."""
    real_build = build.build_components

    def build_with_faults(config, device):
        components = real_build(config, device)
        task, loss_fn = components.task, components.loss_fn
        current = {}
        real_batch = task.train_batch

        def train_batch(step, batch_size, rank=0):
            current["step"] = step
            return real_batch(step, batch_size, rank)

        class FaultyLoss:
            """The run's loss (attributes included), multiplied by the fault of the current step."""

            def __getattr__(self, name):
                return getattr(loss_fn, name)

            def __call__(self, *args):
                output = loss_fn(*args)
                factor = faults.pop(current["step"], None) if once else faults.get(current["step"])
                if factor is not None:
                    output = type(output)(output.loss * factor, output.parts)
                return output

        task.train_batch = train_batch
        components.loss_fn = FaultyLoss()
        return components

    monkeypatch.setattr(assembly, "build_components", build_with_faults)


def test_a_nan_and_a_spike_skip_their_updates_and_cut_the_learning_rate(smoke, tmp_path, monkeypatch):
    inject(monkeypatch, {12: 1000.0, 15: float("nan")})
    # A young average may judge spikes: decay 0.5 trusts it after 2 good steps.
    assert run_cli(smoke, "--runs-dir", tmp_path, *SHORT, "--set", "train.loss_average_decay=0.5") == 0
    run_dir = only_run(tmp_path)
    emergency = [step for step, _ in checkpoint.step_checkpoints(run_dir / "checkpoints", checkpoint.EMERGENCY_FILE)]
    assert emergency == [12, 15]
    at_15 = checkpoint.load(run_dir / "checkpoints" / checkpoint.emergency_file_name(15))
    adam_steps = {int(s["step"]) for s in at_15["optimizer"]["state"].values()}
    assert adam_steps == {13}, "steps 12 and 15 made no update: 15 steps, 13 of them good"
    assert at_15["trainer"]["stability"]["bad_steps"] == 2
    events = dict(scalars(run_dir, "train/emergency_lr_scale"))
    assert events[12] == 0.5 and events[15] < 0.5  # the second cut compounds on a partly recovered scale
    assert events[20] > events[15], "the scale recovers after the last bad step"
    logged = dict(scalars(run_dir, "train/loss"))
    assert 12 not in logged and 15 not in logged, "a window of only skipped steps logs no loss"
    log = (run_dir / "train.log").read_text()
    assert "step 12: loss" in log and "x its running average" in log and "step 15: non-finite loss" in log
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "finished"


def test_a_streak_of_nans_rolls_back_and_the_run_resumes_bitwise(smoke, tmp_path, monkeypatch):
    streak = {13: float("nan"), 14: float("nan"), 15: float("nan")}
    inject(monkeypatch, dict(streak))
    assert run_cli(smoke, "--runs-dir", tmp_path / "straight", *SHORT) == 0
    straight = only_run(tmp_path / "straight")
    log = (straight / "train.log").read_text()
    assert "rolled back to step 10" in log
    final = final_state(straight, 20)
    assert final["trainer"]["stability"]["rollbacks"] == 1
    assert 0 < final["trainer"]["stability"]["lr_floor"] < 1, "the replay runs at the cut rate"
    # Steps 11-20 ran twice; the second time (no faults left) they all updated.
    assert {int(s["step"]) for s in final["optimizer"]["state"].values()} == {20}

    inject(monkeypatch, dict(streak))
    assert run_cli(smoke, "--runs-dir", tmp_path / "resumed", *SHORT, "--stop-at", 17) == 0
    resumed = only_run(tmp_path / "resumed")
    monkeypatch.setattr(assembly, "build_components", build.build_components)
    assert run_cli("--resume", resumed) == 0
    assert_states_equal(final, final_state(resumed, 20))
    assert final["trainer"]["stability"] == final_state(resumed, 20)["trainer"]["stability"]


def test_explosions_that_persist_after_every_rollback_end_the_run_as_diverged(smoke, tmp_path, monkeypatch, capsys):
    inject(monkeypatch, {step: float("nan") for step in range(12, 21)}, once=False)
    code = run_cli(smoke, "--runs-dir", tmp_path, *SHORT, "--set", "train.max_rollbacks=1")
    assert code == 1
    err = capsys.readouterr().err
    assert "training has diverged" in err and "Traceback" not in err
    meta = json.loads((only_run(tmp_path) / "meta.json").read_text())
    assert meta["status"] == "crashed" and "TrainingDiverged" in meta["error"]


def test_a_rollback_logs_each_replayed_step_once_with_the_replays_values(smoke, tmp_path, monkeypatch):
    inject(monkeypatch, {13: float("nan"), 14: float("nan"), 15: float("nan")})
    assert run_cli(smoke, "--runs-dir", tmp_path, *SHORT) == 0
    run_dir = only_run(tmp_path)
    assert "rolled back to step 10" in (run_dir / "train.log").read_text()
    for tag in ("train/loss", "train/lr", "train/emergency_lr_scale"):
        assert [step for step, _ in scalars(run_dir, tag)] == list(range(1, 21)), tag
    # The replay of steps 11-20 ran at the cut rate, and that is what TensorBoard keeps.
    scales = dict(scalars(run_dir, "train/emergency_lr_scale"))
    assert all(scales[step] == 1.0 for step in range(1, 11)) and all(scales[step] < 1.0 for step in range(11, 21))
