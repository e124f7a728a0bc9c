"""train.compile: training goes through torch.compile, checkpoints keep the plain parameter names."""

import torch
from helpers import assert_states_equal, only_run, run_cli

from latentrun.runs import checkpoint_file as checkpoint

SHORT = ("--set", "train.max_steps=10", "--set", "train.eval_every=10")


def test_compiled_training_writes_checkpoints_that_plain_models_load(smoke, tmp_path, monkeypatch, capsys):
    compiled, calls = [], []
    real_compile = torch.compile

    def counting_backend(graph_module, example_inputs):
        # Runs the captured graph as it is (no C++ compilation in a unit test; bench/gpu.sh runs
        # inductor) and counts each call, so the test sees training go through the compiled code.
        def run(*args):
            calls.append(len(args))
            return graph_module.forward(*args)

        return run

    def compile_eagerly(model, **kwargs):
        compiled.append(real_compile(model, backend=counting_backend, **kwargs))
        return compiled[-1]

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    assert run_cli(smoke, "--runs-dir", tmp_path / "compiled", *SHORT, "--set", "train.compile=true") == 0
    assert len(compiled) == 1 and len(calls) >= 10, "every training step ran through the compiled graph"
    assert run_cli(smoke, "--runs-dir", tmp_path / "plain", *SHORT) == 0
    assert len(compiled) == 1, "compile: false must not compile"

    run_dir = only_run(tmp_path / "compiled")
    state = checkpoint.load(run_dir / "checkpoints" / checkpoint.step_file_name(10))
    assert not [key for key in state["model"] if "_orig_mod" in key]
    assert not [key for key in checkpoint.load(run_dir / "checkpoints" / "best.pt")["model"] if "_orig_mod" in key]
    plain = checkpoint.load(only_run(tmp_path / "plain") / "checkpoints" / checkpoint.step_file_name(10))
    assert_states_equal(plain, state)  # the captured graph runs the same kernels, so equal bitwise
    capsys.readouterr()
    assert run_cli("predict", run_dir, "12*34", "--bare") == 0, "an uncompiled model loads the compiled run"
    assert capsys.readouterr().out.strip().isdigit()
