"""GPMapper: exactness against a dense GP, batching, streaming cost, numerical robustness,
time, non-stationarity, the information measure, snapshots and refused inputs."""
import copy
import math
import threading
import time

import numpy as np
import pytest
import torch

from asv_autonomy.mapping import GPMapper, GPMapperConfig
from asv_autonomy.mapping.adaptation import BoundFit
from asv_autonomy.mapping.gp import SNAPSHOT_VERSION
from asv_autonomy.measurements import InvalidInput

from tracks import lawnmower

STATIC = dict(adapt_every=0)


def smooth_field(xy):
    return np.sin(xy[:, 0] / 25.0) + 0.5 * np.cos(xy[:, 1] / 35.0)


def exact_gp(mapper, x, y, q):
    """Dense GP with the mapper's kernel, prior mean, scale and noise (numpy)."""
    def k(a, b):
        with torch.no_grad():
            return mapper.kernel(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    s2, noise = mapper.output_scale ** 2, mapper.noise_std ** 2
    Kxx = s2 * k(x, x) + noise * np.eye(len(x))
    Kqx = s2 * k(q, x)
    mean = mapper.output_mean + Kqx @ np.linalg.solve(Kxx, y - mapper.output_mean)
    var = s2 * np.diag(k(q, q)) - np.einsum('ij,ji->i', Kqx, np.linalg.solve(Kxx, Kqx.T))
    return mean, np.sqrt(var), np.sqrt(var + noise)


# --------------------------------------------------------------------------- exactness

@pytest.mark.parametrize('kernel', ['rbf', 'matern52', 'attentive'])
def test_matches_the_exact_gp_when_every_sample_is_an_inducing_point(kernel):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 100, size=(50, 2))
    y = 3.0 * smooth_field(x) + 0.1 * rng.normal(size=50) + 20.0
    mapper = GPMapper(GPMapperConfig(kernel=kernel, inducing_spacing=1e-3, max_inducing=64,
                                     noise_std=0.1, signal_std=2.0, lengthscale=20.0,
                                     jitter=1e-10, **STATIC))
    mapper.update(x[:30], 0.0, y[:30])
    for i in range(30, 50):
        mapper.update(x[i:i + 1], 0.0, y[i])
    assert len(mapper.inducing_points) == 50
    q = rng.uniform(-10, 110, size=(40, 2))
    mean, std = mapper.predict(q)
    _, noisy = mapper.predict(q, include_noise=True)
    mean_ex, std_ex, noisy_ex = exact_gp(mapper, x, y, q)
    np.testing.assert_allclose(mean, mean_ex, rtol=0, atol=1e-6)
    np.testing.assert_allclose(std, std_ex, rtol=0, atol=1e-6)
    np.testing.assert_allclose(noisy, noisy_ex, rtol=0, atol=1e-6)


@pytest.mark.parametrize('tau', [0.0, 40.0])
def test_batch_and_one_by_one_updates_give_the_same_posterior(tau):
    """Including inducing placements, exchanges at a full budget and time propagation."""
    rng = np.random.default_rng(2)
    n = 400
    x = np.cumsum(rng.normal(scale=4.0, size=(n, 2)), axis=0)
    t = np.arange(n) // 5 * 1.0            # groups of five simultaneous samples
    y = smooth_field(x) + 0.05 * rng.normal(size=n)
    config = GPMapperConfig(kernel='attentive', inducing_spacing=6.0, max_inducing=40,
                            temporal_timescale=tau, **STATIC)
    batched, single = GPMapper(config), GPMapper(config)
    for chunk in np.array_split(np.arange(n), 7):
        batched.update(x[chunk], t[chunk], y[chunk])
    for i in range(n):
        single.update(x[i:i + 1], t[i], y[i])
    assert batched.spacing > 6.0      # the budget filled: exchanges and coarsening happened
    np.testing.assert_allclose(batched.inducing_points, single.inducing_points)
    q = rng.uniform(x.min(), x.max(), size=(100, 2))
    for a, b in zip(batched.predict(q), single.predict(q)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------------- streaming at scale

def test_streaming_10k_updates_keeps_time_and_state_size_flat():
    x = lawnmower(10_000, width=400.0, lane=15.0, step=3.0)
    y = smooth_field(x) + 0.05 * np.random.default_rng(3).normal(size=len(x))
    mapper = GPMapper(GPMapperConfig(kernel='rbf', max_inducing=64, inducing_spacing=10.0,
                                     adapt_every=1000, adapt_steps=3))
    times, sizes = np.empty(len(x)), {}
    for i in range(len(x)):
        begin = time.perf_counter()
        mapper.update(x[i:i + 1], float(i), y[i])
        times[i] = time.perf_counter() - begin
        if i in (1999, 9999):
            sizes[i] = sum(v.numel() for v in _tensors(mapper.state_dict()))
    assert 32 <= len(mapper.inducing_points) <= 64
    early, late = times[1000:2000], times[-1000:]
    # Growth linear in N would make the late updates ~6x slower; 3x leaves room for a busy CPU.
    assert np.median(late) < 3.0 * np.median(early)
    assert late.mean() < 3.0 * early.mean()     # means include the rare adaptations
    # Belief, K, K^-1 (M^2 each), per-point vectors, the fixed adaptation set, parameters.
    bound = 3 * 64 ** 2 + 20 * 64 + 4 * (128 + 128) + 100
    assert sizes[1999] <= bound and sizes[9999] <= bound


def _tensors(state):
    if isinstance(state, torch.Tensor):
        yield state
    elif isinstance(state, dict):
        for v in state.values():
            yield from _tensors(v)


def _assert_belief_is_valid(mapper):
    P, K = mapper._P, mapper._K
    scale = float(K.diagonal().max())
    assert torch.isfinite(P).all()
    assert torch.linalg.eigvalsh(0.5 * (P + P.T)).min() >= -1e-12 * scale
    # The posterior never exceeds the prior: K - P is PSD too.
    assert torch.linalg.eigvalsh(0.5 * ((K - P) + (K - P).T)).min() >= -1e-9 * scale


def _stress(mapper, n, seed):
    """Long track that keeps returning to a few spots (repeated, nearly noiseless samples)."""
    rng = np.random.default_rng(seed)
    x = lawnmower(n, width=120.0, lane=6.0, step=1.5)
    x[::7] = rng.choice([[10.0, 10.0], [60.0, 60.0], [60.0, 60.0 + 1e-6]], size=len(x[::7]))
    y = smooth_field(x) + 1e-4 * rng.normal(size=n)
    for i in range(0, n, 3):
        mapper.update(x[i:i + 3], float(i // 3), y[i:i + 3])
        if i % 6000 == 0:
            _assert_belief_is_valid(mapper)
    _assert_belief_is_valid(mapper)
    mean, std = mapper.predict(x[-500:])      # recent samples: not yet forgotten
    assert np.isfinite(mean).all() and (std >= 0).all()
    assert np.sqrt(np.mean((mean - y[-500:]) ** 2)) < 0.1


@pytest.mark.parametrize('tau', [0.0, 500.0])
def test_belief_stays_psd_over_30k_nearly_noiseless_updates(tau):
    mapper = GPMapper(GPMapperConfig(kernel='rbf', max_inducing=48, inducing_spacing=8.0,
                                     noise_std=1e-4, noise_floor=1e-4, lengthscale=20.0,
                                     temporal_timescale=tau, **STATIC))
    _stress(mapper, 30_000, seed=4)


@pytest.mark.slow
def test_belief_stays_psd_over_100k_updates_with_adaptation():
    mapper = GPMapper(GPMapperConfig(kernel='attentive', max_inducing=64, inducing_spacing=8.0,
                                     noise_std=1e-3, noise_floor=1e-4, adapt_every=4096,
                                     adapt_steps=5))
    _stress(mapper, 100_000, seed=5)


# ------------------------------------------------------------------ time and space

def plume(xy, t):
    """A warm plume drifting east at 0.2 m/s across a 200 m square."""
    cx = 40.0 + 0.2 * t
    return 15.0 + 3.0 * np.exp(-((xy[:, 0] - cx) ** 2 + (xy[:, 1] - 100.0) ** 2) / (2 * 30.0 ** 2))


def test_temporal_model_tracks_a_drifting_plume_better_than_a_static_one():
    """Two lawnmower passes over the moving plume; RMSE against the current truth."""
    x = lawnmower(640, width=200.0, lane=25.0, step=5.0)
    t = np.arange(len(x)) * 1.0
    g = np.stack(np.meshgrid(np.linspace(0, 200, 21), np.linspace(0, 200, 21)), -1).reshape(-1, 2)
    y = plume(x, t) + 0.05 * np.random.default_rng(6).normal(size=len(x))
    errors = {}
    for tau in (0.0, 150.0):
        mapper = GPMapper(GPMapperConfig(kernel='rbf', inducing_spacing=10.0, lengthscale=30.0,
                                         noise_std=0.05, temporal_timescale=tau,
                                         adapt_steps=10))
        for i in range(0, len(x), 5):
            mapper.update(x[i:i + 5], t[i:i + 5], y[i:i + 5])
        mean, _ = mapper.predict(g)
        errors[tau] = np.sqrt(np.mean((mean - plume(g, t[-1])) ** 2))
    assert errors[150.0] < 0.8 * errors[0.0]


def test_old_samples_weigh_less_than_current_ones():
    config = GPMapperConfig(kernel='rbf', inducing_spacing=5.0, temporal_timescale=10.0,
                            signal_std=1.0, **STATIC)
    base = GPMapper(config)
    base.update(np.array([[0.0, 0.0], [30.0, 0.0]]), 100.0, [0.0, 0.0])
    late, old = copy.deepcopy(base), copy.deepcopy(base)
    late.update(np.array([[0.0, 0.0]]), 100.0, 2.0)
    old.update(np.array([[0.0, 0.0]]), 60.0, 2.0)       # four timescales before the belief
    q = np.array([[0.0, 0.0]])
    assert old.predict(q)[0][0] - base.predict(q)[0][0] < 0.05 * (
        late.predict(q)[0][0] - base.predict(q)[0][0])
    assert old.time == 100.0


def step_field(xy):
    return np.where(xy[:, 0] > 0.0, 1.0, -1.0) + 0.1 * np.sin(xy[:, 1] / 15.0)


def test_attentive_kernel_beats_rbf_on_a_step_after_adaptation():
    rng = np.random.default_rng(7)
    x = rng.uniform(-50, 50, size=(400, 2))
    y = step_field(x) + 0.02 * rng.normal(size=len(x))
    q = rng.uniform(-50, 50, size=(1000, 2))
    nlpd = {}
    for kernel in ('rbf', 'attentive'):
        mapper = GPMapper(GPMapperConfig(kernel=kernel, inducing_spacing=2.5, lengthscale=10.0,
                                         noise_std=0.05, adapt_steps=40))
        for i in range(0, len(x), 10):
            mapper.update(x[i:i + 10], 0.0, y[i:i + 10])
        mean, std = mapper.predict(q, include_noise=True)
        err = step_field(q) - mean
        nlpd[kernel] = np.mean(0.5 * np.log(2 * np.pi * std ** 2) + err ** 2 / (2 * std ** 2))
    assert nlpd['attentive'] < nlpd['rbf'] - 0.1


def test_inducing_points_follow_the_survey_as_the_area_outgrows_the_budget():
    x = np.column_stack([np.arange(2000) * 1.0, 5.0 * np.sin(np.arange(2000) / 20.0)])
    mapper = GPMapper(GPMapperConfig(kernel='rbf', max_inducing=30, inducing_spacing=5.0,
                                     lengthscale=20.0, **STATIC))
    for i in range(0, len(x), 10):
        mapper.update(x[i:i + 10], 0.0, np.sin(x[i:i + 10, 0] / 100.0))
    z = mapper.inducing_points
    assert 15 <= len(z) <= 30 and mapper.spacing > 5.0
    # Spread over the whole 2 km track, not left where the budget filled (first 150 m).
    assert z[:, 0].min() < 200.0 and z[:, 0].max() > 1800.0
    gaps = np.diff(np.sort(z[:, 0]))
    assert gaps.max() < 3 * gaps.mean()


def test_the_budget_holds_when_the_set_is_sparser_than_the_spacing():
    """Points far apart (no exchange gain) and a tiny spacing: coarsening must go on
    until a slot frees."""
    mapper = GPMapper(GPMapperConfig(kernel='rbf', max_inducing=5, inducing_spacing=0.1,
                                     lengthscale=10.0, **STATIC))
    x = np.column_stack([np.arange(12) * 100.0, np.zeros(12)])
    for i in range(len(x)):
        mapper.update(x[i:i + 1], 0.0, 1.0)
        assert len(mapper.inducing_points) <= 5
    assert mapper.spacing > 100.0
    assert mapper.inducing_points[:, 0].max() == 1100.0   # the newest area is covered


def test_values_in_any_unit_give_the_same_map():
    """Output normalisation: metres vs millimetres-with-offset predict identically."""
    x = lawnmower(700, width=200.0, lane=20.0, step=3.0)
    y = smooth_field(x) + 0.05 * np.random.default_rng(8).normal(size=len(x))
    maps = []
    for scale, offset in ((1.0, 0.0), (1000.0, -4000.0)):
        mapper = GPMapper(GPMapperConfig(kernel='rbf', inducing_spacing=10.0,
                                         noise_std=0.1 * scale, adapt_steps=5))
        for i in range(0, len(x), 10):
            mapper.update(x[i:i + 10], 0.0, scale * y[i:i + 10] + offset)
        mean, std = mapper.predict(x[::7])
        maps.append(((mean - offset) / scale, std / scale))
    np.testing.assert_allclose(maps[0][0], maps[1][0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(maps[0][1], maps[1][1], rtol=1e-6, atol=1e-6)


def test_adaptation_learns_the_noise_level():
    rng = np.random.default_rng(9)
    x = rng.uniform(0, 200, size=(1500, 2))
    y = smooth_field(x) + 0.2 * rng.normal(size=len(x))
    mapper = GPMapper(GPMapperConfig(kernel='rbf', inducing_spacing=8.0, noise_std=1.0,
                                     adapt_every=256))
    for i in range(0, len(x), 10):
        mapper.update(x[i:i + 10], 0.0, y[i:i + 10])
    assert 0.15 < mapper.noise_std < 0.27
    mean, _ = mapper.predict(x[:300])
    assert np.sqrt(np.mean((mean - smooth_field(x[:300])) ** 2)) < 0.08


# ---------------------------------------------------------- information for the planner

def test_variance_reduction_predicts_the_update():
    rng = np.random.default_rng(11)
    x = lawnmower(300, width=100.0, lane=10.0, step=2.0)
    mapper = GPMapper(GPMapperConfig(kernel='attentive', inducing_spacing=4.0, **STATIC))
    mapper.update(x, 0.0, smooth_field(x))
    z = mapper.inducing_points
    candidates = z[rng.choice(len(z), 5, replace=False)] + 0.5   # no new inducing point
    targets = rng.uniform(0, 100, size=(50, 2))
    single = mapper.variance_reduction(candidates)
    on_targets = mapper.variance_reduction(candidates, targets)
    path = mapper.variance_reduction(candidates[None])            # all five jointly
    assert (single > 0).all() and (on_targets > 0).all()
    for i, c in enumerate(candidates):
        after = copy.deepcopy(mapper)
        after.update(c[None], 0.0, 0.3)
        assert len(after.inducing_points) == len(z)
        drop = mapper.predict(z)[1] ** 2 - after.predict(z)[1] ** 2
        np.testing.assert_allclose(single[i], drop.mean(), rtol=1e-4, atol=1e-9)
        drop = mapper.predict(targets)[1] ** 2 - after.predict(targets)[1] ** 2
        np.testing.assert_allclose(on_targets[i], drop.mean(), rtol=1e-4, atol=1e-9)
    after = copy.deepcopy(mapper)
    after.update(candidates, 0.0, np.zeros(5))
    drop = mapper.predict(z)[1] ** 2 - after.predict(z)[1] ** 2
    np.testing.assert_allclose(path[0], drop.mean(), rtol=1e-4, atol=1e-9)
    assert path[0] < single.sum()       # joint information is sub-additive


# --------------------------------------------------------------------------- snapshots

def _trained(n=600, kernel='attentive'):
    x = lawnmower(n + 100, width=150.0, lane=15.0, step=2.0)
    y = smooth_field(x)
    mapper = GPMapper(GPMapperConfig(kernel=kernel, inducing_spacing=8.0, max_inducing=64,
                                     adapt_every=256, adapt_window=64, adapt_reservoir=64,
                                     adapt_steps=5))
    for i in range(0, n, 10):
        mapper.update(x[i:i + 10], float(i), y[i:i + 10])
    return mapper, x[n:], y[n:]


def test_snapshot_round_trip_predicts_and_continues_identically(tmp_path):
    mapper, x_more, y_more = _trained()
    path = tmp_path / 'bathymetry.pt'
    mapper.save(path)
    restored = GPMapper.load(path)
    assert restored.num_samples == mapper.num_samples
    q = np.random.default_rng(12).uniform(0, 150, size=(200, 2))
    for a, b in zip(mapper.predict(q), restored.predict(q)):
        np.testing.assert_array_equal(a, b)
    for m in (mapper, restored):   # crosses an adaptation (at 768 samples)
        for i in range(0, len(x_more), 10):
            m.update(x_more[i:i + 10], 1000.0 + i, y_more[i:i + 10])
    for a, b in zip(mapper.predict(q), restored.predict(q)):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ background adaptation

def _stream(config, settle=False):
    x = lawnmower(700, width=150.0, lane=15.0, step=2.0)
    mapper = GPMapper(config)
    for i in range(0, len(x), 10):
        mapper.update(x[i:i + 10], float(i), smooth_field(x[i:i + 10]))
        if settle:
            mapper.settle()
    return mapper


def test_background_adaptation_settled_at_once_equals_the_synchronous_one():
    config = GPMapperConfig(kernel='attentive', inducing_spacing=8.0, max_inducing=64,
                            adapt_every=256, adapt_window=64, adapt_reservoir=64,
                            adapt_steps=5)
    sync = _stream(config)
    background = _stream(GPMapperConfig(**{**config.__dict__, 'adapt_in_background': True}),
                         settle=True)
    q = np.random.default_rng(3).uniform(0, 150, size=(300, 2))
    # Equal up to rounding: the worker's BLAS may run on another thread count.
    for a, b in zip(sync.predict(q), background.predict(q)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert background.noise_std == pytest.approx(sync.noise_std, rel=1e-9)
    assert sync.noise_std != pytest.approx(0.1, rel=1e-3)   # adapted


def test_updates_go_on_while_a_background_adaptation_runs(monkeypatch):
    release, started = threading.Event(), threading.Event()
    fit = BoundFit.run

    def held_fit(self, *args):
        started.set()
        assert release.wait(30.0)
        fit(self, *args)
    monkeypatch.setattr(BoundFit, 'run', held_fit)
    mapper = GPMapper(GPMapperConfig(kernel='rbf', inducing_spacing=8.0, noise_std=1.0,
                                     adapt_warmup=64, adapt_every=64,
                                     adapt_in_background=True))
    x = lawnmower(400, width=100.0, lane=10.0, step=2.0)
    y = smooth_field(x) + 0.05 * np.random.default_rng(0).standard_normal(len(x))
    for i in range(0, 300, 10):   # crosses four adaptation points, the fit is held
        mapper.update(x[i:i + 10], 0.0, y[i:i + 10])
    assert started.wait(30.0)
    assert mapper.num_samples == 300
    assert mapper.noise_std == pytest.approx(1.0, rel=1e-12)   # not applied yet
    # A snapshot or copy is the map as it stands; it runs the adaptation again.
    assert mapper.state_dict()['next_adapt'] == 64
    copied = copy.deepcopy(mapper)
    release.set()
    q = x[:50]
    deadline = time.monotonic() + 30.0
    while mapper.noise_std == pytest.approx(1.0) and time.monotonic() < deadline:
        mapper.predict(q)   # a finished fit lands at the next call, update or predict
        time.sleep(0.01)
    assert mapper.noise_std < 0.9   # the fit moved it (true noise: 0.05)
    assert copied.noise_std == pytest.approx(1.0, rel=1e-12)
    copied.update(x[300:310], 0.0, y[300:310])
    copied.settle()
    assert copied.noise_std < 0.9
    noise = mapper.noise_std
    mapper.update(x[300:310], 0.0, y[300:310])   # the points passed start the next fit
    mapper.settle()
    assert mapper.noise_std != noise


def test_close_stops_a_background_adaptation_at_its_next_step(monkeypatch):
    steps = []
    step = torch.optim.Adam.step

    def slow_step(self, *args, **kwargs):   # ~20 steps: 2 s unless stopped
        steps.append(1)
        time.sleep(0.1)
        return step(self, *args, **kwargs)
    monkeypatch.setattr(torch.optim.Adam, 'step', slow_step)
    mapper = GPMapper(GPMapperConfig(kernel='rbf', inducing_spacing=8.0, noise_std=1.0,
                                     adapt_warmup=64, adapt_in_background=True))
    x = lawnmower(80, width=100.0, lane=10.0, step=2.0)
    mapper.update(x[:70], 0.0, smooth_field(x[:70]))
    job = mapper._job
    assert job is not None
    deadline = time.monotonic() + 30.0
    while not steps and time.monotonic() < deadline:
        time.sleep(0.01)
    at_close = len(steps)
    mapper.close()
    job.future.result(timeout=30.0)
    # Stopped at the step under way, well before the fit's 20 (2 s at this pace).
    assert 1 <= at_close <= len(steps) < 10
    assert mapper.noise_std == pytest.approx(1.0, rel=1e-12)
    assert mapper.state_dict()['next_adapt'] == 64   # runs again at the next update
    monkeypatch.setattr(torch.optim.Adam, 'step', step)
    mapper.update(x[70:80], 0.0, smooth_field(x[70:80]))
    mapper.settle()
    assert mapper.noise_std < 0.9


def test_a_snapshot_restores_under_either_adaptation_mode(tmp_path):
    mapper, _, _ = _trained()
    mapper.save(tmp_path / 'map.pt')
    other = GPMapperConfig(**{**mapper.config.__dict__, 'adapt_in_background': True})
    restored = GPMapper.load(tmp_path / 'map.pt', other)
    assert restored.config.adapt_in_background
    q = np.random.default_rng(5).uniform(0, 150, size=(50, 2))
    np.testing.assert_array_equal(mapper.predict(q)[0], restored.predict(q)[0])


def test_corrupt_or_mismatched_snapshots_are_refused_naming_the_file(tmp_path):
    mapper, _, _ = _trained(n=100, kernel='rbf')
    good = tmp_path / 'good.pt'
    mapper.save(good)
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a snapshot at all')
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(good.read_bytes()[:500])
    for bad in (garbage, truncated):
        with pytest.raises(ValueError, match=str(bad)):
            GPMapper.load(bad)
    state = mapper.state_dict()
    state['version'] = SNAPSHOT_VERSION + 1
    future = tmp_path / 'future.pt'
    torch.save(state, future)
    with pytest.raises(ValueError, match=f'{future}.*version'):
        GPMapper.load(future)
    state = mapper.state_dict()
    state['P'] = state['P'][:-1]
    broken = tmp_path / 'broken.pt'
    torch.save(state, broken)
    with pytest.raises(ValueError, match=f'{broken}.*P has shape'):
        GPMapper.load(broken)
    other = GPMapperConfig(**{**mapper.config.__dict__, 'max_inducing': 32})
    with pytest.raises(ValueError, match=f'{good}.*max_inducing'):
        GPMapper.load(good, other)
    with pytest.raises(FileNotFoundError):
        GPMapper.load(tmp_path / 'missing.pt')


def test_refused_snapshot_leaves_the_mapper_unchanged():
    mapper, _, _ = _trained(n=100, kernel='rbf')
    q = np.array([[10.0, 10.0], [50.0, 80.0]])
    before = mapper.predict(q)
    state = mapper.state_dict()
    state['m'] = state['m'] * np.nan
    with pytest.raises(ValueError, match='m is not finite'):
        mapper.load_state_dict(state)
    for a, b in zip(before, mapper.predict(q)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- refused input

@pytest.mark.parametrize('xy, t, y', [
    ([[0.0, np.nan]], 0.0, 1.0),
    ([[0.0, 1.0]], np.inf, 1.0),
    ([[0.0, 1.0], [2.0, 3.0]], 0.0, [1.0, np.nan]),
])
def test_non_finite_input_is_refused_and_changes_nothing(xy, t, y):
    mapper, _, _ = _trained(n=50, kernel='rbf')
    q = np.array([[10.0, 10.0]])
    before, count = mapper.predict(q), mapper.num_samples
    with pytest.raises(InvalidInput) as error:
        mapper.update(np.array(xy), t, y)
    assert error.value.reason == 'nan'
    assert mapper.num_samples == count
    for a, b in zip(before, mapper.predict(q)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidInput):
        mapper.predict(np.array([[np.nan, 0.0]]))


def test_bad_shapes_are_refused():
    mapper = GPMapper(GPMapperConfig())
    with pytest.raises(ValueError, match='shape'):
        mapper.update(np.zeros((3, 3)), 0.0, np.zeros(3))
    with pytest.raises(ValueError, match='shape'):
        mapper.predict(np.zeros(2))
    with pytest.raises(ValueError, match='candidates'):
        mapper.variance_reduction(np.zeros((2, 3)))


def test_prior_map_before_any_sample():
    mapper = GPMapper(GPMapperConfig(signal_std=2.0))
    mean, std = mapper.predict(np.zeros((3, 2)))
    np.testing.assert_allclose(mean, 0.0)
    np.testing.assert_allclose(std, 2.0)
    assert mapper.num_samples == 0 and mapper.time is None
    np.testing.assert_array_equal(mapper.variance_reduction(np.zeros((4, 2))), np.zeros(4))


@pytest.mark.parametrize('field, value', [
    ('kernel', 'linear'), ('max_inducing', 0), ('inducing_spacing', 0.0),
    ('inducing_spacing', math.nan), ('noise_std', -1.0), ('signal_std', -1.0),
    ('temporal_timescale', math.inf), ('lengthscale', -2.0), ('num_lengthscales', 0),
    ('adapt_every', -1), ('adapt_steps', -1), ('adapt_lr', 0.0), ('adapt_window', 0),
    ('noise_floor', 1.0), ('jitter', 0.5), ('num_threads', -1),
])
def test_invalid_configuration_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        GPMapperConfig(**{field: value})


# --------------------------------------------------------------------------- prediction

def test_prediction_in_chunks_and_threads_equals_the_dense_formula():
    mapper, x_more, _ = _trained(kernel='attentive')
    rng = np.random.default_rng(3)
    q = rng.uniform(-20, 170, size=(2500, 2))        # more rows than one prediction chunk
    mean, std = mapper.predict(q)
    with torch.no_grad():                            # k - k^T K^-1 (K - P) K^-1 k, dense
        Kq = mapper.kernel.between(mapper.kernel.embed(torch.from_numpy(q)), mapper._EZ)
        Kinv = torch.linalg.inv(mapper._K)
        var = mapper._amp() - ((Kq @ Kinv @ (mapper._K - mapper._P) @ Kinv) * Kq).sum(1)
        m = Kq @ (Kinv @ mapper._m)
    np.testing.assert_allclose(mean, mapper.output_mean + mapper.output_scale * m.numpy(),
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose(std, mapper.output_scale * var.clamp_min(0).sqrt().numpy(),
                               rtol=0, atol=1e-6)
    two = copy.deepcopy(mapper)
    two.config = GPMapperConfig(**{**mapper.config.__dict__, 'num_threads': 2})
    for a, b in zip(two.predict(q), (mean, std)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    pieces = [mapper.predict(q[s:s + 700]) for s in range(0, 2500, 700)]
    np.testing.assert_allclose(np.concatenate([p[1] for p in pieces]), std, rtol=1e-12)


def test_a_rounding_indefinite_belief_still_predicts_the_prior():
    """P a little above the prior in one direction (rounding over many updates can do
    that): the explained-variance factor clips it instead of failing."""
    mapper, _, _ = _trained(kernel='rbf')
    K = mapper._K.clone()
    v = torch.randn(len(K), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mapper._ind.assign(m=torch.zeros(len(K), dtype=torch.float64),
                       P=K + 1e-3 * mapper._amp() * torch.outer(v, v) / v.dot(v))
    mapper._cache = None
    mean, std = mapper.predict(np.random.default_rng(0).uniform(0, 150, size=(50, 2)))
    np.testing.assert_allclose(mean, mapper.output_mean, atol=1e-9)
    np.testing.assert_allclose(std, mapper.output_scale * math.sqrt(mapper._amp()), rtol=1e-6)


@pytest.mark.parametrize('kernel, tau', [('attentive', 0.0), ('rbf', 50.0)])
def test_predict_mean_is_the_mean_of_predict(kernel, tau):
    x = lawnmower(400, width=150.0, lane=15.0, step=2.0)
    mapper = GPMapper(GPMapperConfig(kernel=kernel, inducing_spacing=8.0, max_inducing=64,
                                     temporal_timescale=tau, adapt_every=256))
    for i in range(0, 400, 10):
        mapper.update(x[i:i + 10], float(i), smooth_field(x[i:i + 10]))
    q = np.random.default_rng(4).uniform(-20, 170, size=(300, 2))
    for t in (None, mapper.time + 30.0):
        np.testing.assert_allclose(mapper.predict_mean(q, t), mapper.predict(q, t)[0],
                                   rtol=0, atol=1e-9)
