"""train.compile: training goes through torch.compile, checkpoints keep the plain parameter names."""
import torch

from latentrun import checkpoint
from conftest import assert_states_equal, only_run, run_cli

SHORT = ("--set", "train.max_steps=10", "--set", "train.eval_every=10")


def test_compiled_training_writes_checkpoints_that_plain_models_load(smoke, tmp_path, monkeypatch, capsys):
    compiled, calls = [], []
    real_compile = torch.compile

    def compile_eagerly(model, **kwargs):
        # TorchDynamo's eager backend: the same OptimizedModule wrapper (and `_orig_mod.` names) as
        # inductor, without minutes of C++ compilation in a unit test. bench/gpu.sh runs inductor.
        compiled.append(real_compile(model, backend="eager", **kwargs))

        def counted(*args):
            calls.append(len(args))
            return compiled[0](*args)

        return counted

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    assert run_cli(smoke, "--runs-dir", tmp_path / "compiled", *SHORT, "--set", "train.compile=true") == 0
    assert len(compiled) == 1 and len(calls) == 10, "every training step ran through the compiled module"
    assert run_cli(smoke, "--runs-dir", tmp_path / "plain", *SHORT) == 0
    assert len(compiled) == 1, "compile: false must not compile"

    run_dir = only_run(tmp_path / "compiled")
    state = checkpoint.load(run_dir / "checkpoints" / checkpoint.step_file_name(10))
    assert not [key for key in state["model"] if "_orig_mod" in key]
    assert not [key for key in checkpoint.load(run_dir / "checkpoints" / "best.pt")["model"] if "_orig_mod" in key]
    plain = checkpoint.load(only_run(tmp_path / "plain") / "checkpoints" / checkpoint.step_file_name(10))
    assert_states_equal(plain, state)  # the eager backend runs the same kernels, so equal bitwise
    capsys.readouterr()
    assert run_cli("predict", run_dir, "12*34") == 0, "an uncompiled model loads the compiled run"
    assert capsys.readouterr().out.strip().isdigit()
