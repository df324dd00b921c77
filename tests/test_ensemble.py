"""The batched ensemble trainer: member m of a batch ends where ``trainer.train(config_m)`` ends."""

import logging

import pytest
import torch

from vicinal.lab.ensemble import (StackedAdam, StackedModel, StackedSGD, UnsupportedModelError,
                                  batch_group_key, fit_batched, run_batch,
                                  train_batched)
from vicinal.lab.models import build_model
from vicinal.lab.store import ResultStore, config_key
from vicinal.lab.sweep import run_sweep
from vicinal.lab.trainer import train
from vicinal.lam import lam_from_uniforms, sample_lam
from vicinal.pairing import RandomPairing, order_from_uniforms

SMALL = dict(dataset="spirals", dataset_params={"n_per_class": 60}, model="mlp", model_params={"widths": [16, 16]},
             optimizer="adam", lr=0.01, epochs=3, batch_size=16, eps=1.5, k=4)

# One batch mixing every batched method, both samplings, every graph, two reductions, kept-pairs
# batch growth (fewer steps per epoch), different seeds, data seeds, alphas, eps, lr and weight decay.
MIXED = [
    dict(SMALL, method="erm", seed=0),
    dict(SMALL, method="mixup", seed=1, alpha=0.4),
    dict(SMALL, method="local_mixup", seed=2, eps=1.0),
    dict(SMALL, method="local_mixup", seed=3, sampling="weighted", eps=2.0),
    dict(SMALL, method="local_mixup", seed=4, graph="knn", n_neighbors=3, reduction="normalized"),
    dict(SMALL, method="local_mixup", seed=5, graph="exponential", decay=0.5, lam_mode="sample"),
    dict(SMALL, method="kmixup", seed=6, alpha=2.0, truncate=True),
    dict(SMALL, method="modified_data", seed=7, alpha=0.5),
    dict(SMALL, method="local_mixup", seed=8, eps=1.0, kept_pairs=10),
    dict(SMALL, method="mixup", seed=9, data_seed=3, lr=0.003, weight_decay=1e-3, eval_every=1),
    dict(SMALL, method="local_mixup", seed=10, graph="quantile", quantile=0.3),
    dict(SMALL, method="local_mixup", seed=11, graph="exponential", decay=1.0, relative=True, sampling="weighted"),
    dict(SMALL, method="local_mixup", seed=12, eps=0.0),
]

SGD = [dict(SMALL, optimizer="sgd", lr=0.05, method="mixup", seed=0, momentum=0.9, weight_decay=5e-4,
            schedule="step", step_size=2, gamma=0.5),
       dict(SMALL, optimizer="sgd", lr=0.1, method="local_mixup", seed=1, momentum=0.0, kept_pairs=8),
       dict(SMALL, optimizer="sgd", lr=0.02, method="kmixup", seed=2, momentum=0.5, schedule="cosine")]

def final_parameters(config, tmp_path):
    """Train one run with ``trainer.train`` and read its final parameters from the checkpoint it writes."""
    path = tmp_path / f"run-{config['seed']}.pt"
    metrics = train(config, checkpoint=path)
    return metrics, torch.load(path, weights_only=False)["model"]


def assert_same_run(batched, single):
    (model, metrics), (expected_metrics, expected_state) = batched, single
    for name, param in model.state_dict().items():
        torch.testing.assert_close(param, expected_state[name], atol=1e-5, rtol=1e-4, msg=name)
    assert metrics.keys() == expected_metrics.keys()
    for key, value in expected_metrics.items():  # floats and per-epoch curves alike
        assert metrics[key] == pytest.approx(value, abs=1e-5), key


@pytest.fixture(scope="module")
def mixed_batch():
    return fit_batched(MIXED)


@pytest.mark.parametrize("member", range(len(MIXED)), ids=[f"{c['method']}-{c['seed']}" for c in MIXED])
def test_member_equals_single_run(mixed_batch, member, tmp_path):
    assert_same_run(mixed_batch[member], final_parameters(MIXED[member], tmp_path))


@pytest.mark.parametrize("config", [
    dict(SMALL, model="rff", model_params={"n_features": 50, "sigma": 2.0}, method="mixup", epochs=2),
    dict(dataset="digits", model="lenet", method="local_mixup", eps=3.0, optimizer="sgd", lr=0.05, batch_size=256,
         epochs=1),
], ids=["rff", "lenet"])
def test_random_features_and_convolutions_equal_single_runs(config, tmp_path):
    configs = [dict(config, seed=seed) for seed in (0, 1)]
    for batched, single in zip(fit_batched(configs), configs):
        assert_same_run(batched, final_parameters(single, tmp_path))


def test_batch_without_mixing_members_equals_single_runs(tmp_path):
    """A batch of ERM / modified-data members only skips the draws and the interpolation altogether."""
    configs = [dict(SMALL, method="erm", seed=0), dict(SMALL, method="modified_data", seed=1, alpha=0.5),
               dict(SMALL, method="erm", seed=2, data_seed=5, eval_every=1)]
    for batched, config in zip(fit_batched(configs), configs):
        assert_same_run(batched, final_parameters(config, tmp_path))


def test_kept_pairs_member_has_its_own_batch_size_and_fewer_steps(mixed_batch):
    sizes = [metrics["batch_size"] for _, metrics in mixed_batch]
    assert sizes[8] > sizes[2] == 16
    assert mixed_batch[8][1]["steps"] < mixed_batch[2][1]["steps"]


def test_sgd_members_with_momentum_decay_and_schedules_equal_single_runs(tmp_path):
    for batched, config in zip(fit_batched(SGD), SGD):
        assert_same_run(batched, final_parameters(config, tmp_path))


def test_chunks_give_the_results_of_one_chunk(mixed_batch):
    chunked = fit_batched(MIXED[:5], max_members=2)
    for (model, metrics), (whole_model, whole_metrics) in zip(chunked, mixed_batch[:5]):
        for (name, a), b in zip(model.state_dict().items(), whole_model.state_dict().values()):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6, msg=name)
        assert metrics["train_loss"] == pytest.approx(whole_metrics["train_loss"], abs=1e-6)


def test_chunk_size_is_logged_and_printed_with_progress(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="vicinal.lab.ensemble"):
        train_batched([dict(SMALL, epochs=1, seed=s) for s in range(2)], progress=True)
    assert "chunks of 2" in caplog.text
    assert "2 members in 1 chunk(s) of at most 2" in capsys.readouterr().err


@pytest.mark.parametrize("sizes", [(1, 1), (1, 20, 1, 20), (16, 17, 3), (2000, 1, 2000)])
def test_consecutive_uniform_draws_continue_one_stream(sizes):
    """What lets the ensemble draw a whole epoch per member: n calls of torch.rand = one call of the total size."""
    parts = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    calls = torch.cat([torch.rand(n, dtype=torch.float64, generator=parts[0]) for n in sizes])
    assert torch.equal(calls, torch.rand(sum(sizes), dtype=torch.float64, generator=parts[1]))


@pytest.mark.parametrize("alpha", [0.05, 1.0, 3.5])
@pytest.mark.parametrize("truncate", [False, True])
def test_lambdas_and_orders_from_one_epoch_draw_equal_the_core(alpha, truncate):
    """Per-step sample_lam + RandomPairing calls equal the vectorised transforms of one uniform draw."""
    sizes = [7, 3, 5]
    steps = 4
    for seed, size in enumerate(sizes):
        generator = torch.Generator().manual_seed(seed)
        lam, expected_partners = [], []
        for _ in range(steps):  # what Mixup draws at each step: its lambda, then its partners
            lam.append(sample_lam(size, alpha, truncate=truncate, generator=generator, dtype=torch.float64)[0])
            expected_partners.append(RandomPairing()(torch.zeros(size, 2), generator=generator))
        u = torch.rand(steps * (1 + size), dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed)).view(steps, 1 + size)
        torch.testing.assert_close(lam_from_uniforms(u[:, 0], alpha, truncate), torch.stack(lam), rtol=0, atol=0)
        padded = torch.cat([u[:, 1:], torch.full((steps, 2), float("inf"), dtype=torch.float64)], dim=1)
        order = order_from_uniforms(padded)
        for s in range(steps):
            cycle = torch.empty(size, dtype=torch.long)
            cycle[order[s, :size]] = order[s, :size].roll(-1)
            assert torch.equal(cycle, expected_partners[s])


@pytest.mark.parametrize("name, params, input_shape", [
    ("mlp", {"widths": [5, 4], "activation": "tanh"}, (3,)),
    ("rff", {"n_features": 7}, (3,)),
    ("lenet", {}, (1, 8, 8)),
])
def test_stacked_forward_equals_each_model(name, params, input_shape):
    models = [build_model(name, input_shape=input_shape, num_outputs=3, seed=s, **params) for s in range(3)]
    stacked = StackedModel(models, name)
    x = torch.randn(3, 5, *input_shape, generator=torch.Generator().manual_seed(0))
    expected = torch.stack([model(x[m]) for m, model in enumerate(models)])
    torch.testing.assert_close(stacked(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stacked_optimisers_match_torch_and_idle_members_do_not_move(optimizer):
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(3, 4, 2, generator=generator)
    lr, decay, momentum = [0.1, 0.01, 0.1], [0.0, 1e-2, 0.0], [0.9, 0.0, 0.5]
    stacked = {"w": start.clone().requires_grad_(True)}
    opt = StackedSGD(stacked, momentum=momentum, weight_decay=decay) if optimizer == "sgd" \
        else StackedAdam(stacked, weight_decay=decay)
    singles = [start[m].clone().requires_grad_(True) for m in range(3)]
    torch_opts = [torch.optim.SGD([p], lr=lr[m], momentum=momentum[m], weight_decay=decay[m])
                  if optimizer == "sgd" else torch.optim.Adam([p], lr=lr[m], weight_decay=decay[m])
                  for m, p in enumerate(singles)]
    for step in range(4):
        grads = torch.randn(3, 4, 2, generator=generator)
        active = [0, 1] if step == 1 else [0, 1, 2]  # member 2 sits step 1 out
        before = stacked["w"][2].clone()
        stacked["w"].grad = grads
        opt.step(lr, active)
        if 2 not in active:
            assert torch.equal(stacked["w"][2], before)
        for m in active:
            singles[m].grad = grads[m].clone()
            torch_opts[m].step()
    torch.testing.assert_close(stacked["w"].detach(), torch.stack(singles).detach(), atol=1e-6, rtol=1e-6)


BATCHNORM = dict(dataset="digits", model="preact_resnet18", model_params={"width": 2}, method="mixup",
                 epochs=1, batch_size=512, seed=0)


def test_batchnorm_model_is_refused_by_name_and_run_batch_falls_back(caplog):
    with pytest.raises(UnsupportedModelError, match=r"'preact_resnet18'.*BatchNorm2d"):
        train_batched([BATCHNORM])
    with caplog.at_level(logging.WARNING, logger="vicinal.lab.ensemble"):
        rows = run_batch([BATCHNORM])
    assert "one at a time" in caplog.text and "BatchNorm2d" in caplog.text
    alone = train(BATCHNORM)
    assert rows[0]["test_nll"] == alone["test_nll"] and rows[0]["train_loss"] == alone["train_loss"]


def test_run_batch_keeps_order_and_falls_back_for_unbatched_methods(caplog):
    configs = [dict(SMALL, epochs=1, method="approx_mixup", seed=0), dict(SMALL, epochs=1, method="mixup", seed=1),
               dict(SMALL, epochs=1, method="mixup", seed=2, model_params={"widths": [8]})]
    with caplog.at_level(logging.WARNING, logger="vicinal.lab.ensemble"):
        rows = run_batch(configs)
    assert "approx_mixup" in caplog.text
    for row, config in zip(rows, configs):
        assert row["test_nll"] == pytest.approx(train(config)["test_nll"], abs=1e-5)
    assert len({batch_group_key(c) for c in configs}) == 3
    assert batch_group_key(configs[0]).startswith("sequential:")


def test_run_batch_saves_each_model_as_run_and_save_does(tmp_path):
    """With model_dir, batched and fallback runs alike leave their trained weights under the config key."""
    configs = [dict(SMALL, epochs=1, method="approx_mixup", seed=0), dict(SMALL, epochs=1, method="mixup", seed=1),
               dict(SMALL, epochs=1, method="kmixup", seed=2)]
    rows = run_batch(configs, model_dir=str(tmp_path))
    for row, config in zip(rows, configs):
        metrics, model = train(config, return_model=True)
        assert row["test_nll"] == pytest.approx(metrics["test_nll"], abs=1e-5)
        saved = torch.load(tmp_path / f"{config_key(config)}.pt")
        for name, value in model.state_dict().items():
            torch.testing.assert_close(saved[name], value, atol=1e-5, rtol=1e-4, msg=name)


def test_run_sweep_uses_the_batched_trainer(tmp_path):
    configs = [dict(SMALL, epochs=1, method=m, seed=s) for m in ("erm", "local_mixup") for s in range(2)]
    summary = run_sweep(configs, store=tmp_path / "r.db", batch_fn=run_batch, group_key=batch_group_key,
                        max_batch=10, progress=False)
    assert summary.completed == 4
    with ResultStore(tmp_path / "r.db") as store:
        rows = store.rows()
    assert {r.batch_size for r in rows} == {4}  # one batch of four
    for row in rows:
        assert row.metrics["test_nll"] == pytest.approx(train(row.config)["test_nll"], abs=1e-5)


@pytest.mark.parametrize("configs, error, match", [
    ([], ValueError, "configs is empty"),
    (dict(SMALL), TypeError, "list of config dicts"),
    ([dict(SMALL), dict(SMALL, model_params={"widths": [8]})], ValueError, r"configs\[1\] has model_params"),
    ([dict(SMALL), dict(SMALL, optimizer="sgd")], ValueError, r"configs\[1\] has optimizer='sgd'"),
    ([dict(SMALL, method="approx_mixup")], ValueError, "method 'approx_mixup' is not batched"),
    ([dict(SMALL, method="mixup", mix_layers=[1])], ValueError, "manifold mixing"),
    ([dict(SMALL, epsilon=1.0)], ValueError, "unknown run setting"),
])
def test_bad_configs_are_refused_with_clear_errors(configs, error, match):
    with pytest.raises(error, match=match):
        train_batched(configs)


def test_kmixup_block_too_large_for_the_batch_is_refused_before_training():
    """As trainer.train's first step would: k = 16 cannot form two disjoint blocks in a batch of 16 (refused
    by RunConfig already, naming the settings)."""
    with pytest.raises(ValueError, match=r"k-Mixup setting k=16 needs batches of at least 2k=32 samples"):
        train_batched([dict(SMALL, method="kmixup", k=16, seed=0)])


@pytest.mark.parametrize("max_members", [0, -2, 1.5, True])
def test_bad_max_members_is_refused(max_members):
    with pytest.raises(ValueError, match="max_members must be a positive int"):
        train_batched([dict(SMALL)], max_members=max_members)


def test_a_member_whose_graph_keeps_nothing_warns_as_a_single_run_does():
    import vicinal
    with pytest.warns(vicinal.NoPairsKeptWarning, match=r"Threshold\(eps=1e-06\)"):
        fit_batched([dict(SMALL, method="local_mixup", seed=0, eps=1e-6), dict(SMALL, method="mixup", seed=1)])
