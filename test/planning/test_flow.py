"""FlowField: sampling, derived fields, gyre, grid files (npz, NetCDF), realisations."""
import math

import numpy as np
import pytest
import torch
from scipy.io import netcdf_file

from asv_autonomy.planning.flow import FlowField, gyre
from asv_autonomy.sim.fields import _GridCurrent

EXTENT = (0.0, 400.0, 0.0, 300.0)


def test_uniform_sample_negated_scaled():
    flow = FlowField.uniform((0.3, -0.2), 0.1, EXTENT, 20.0)
    mean, spread = flow.sample(torch.tensor([[10.0, 10.0], [1e4, -1e4]]))
    assert torch.allclose(mean, torch.tensor([[0.3, -0.2]] * 2))
    assert torch.allclose(spread, torch.tensor([0.1, 0.1]))
    back, back_spread = flow.negated().sample(torch.tensor([50.0, 50.0]))
    assert torch.allclose(back, torch.tensor([-0.3, 0.2])) and float(back_spread) == pytest.approx(0.1)
    double, double_spread = flow.scaled(2.0).sample(torch.tensor([50.0, 50.0]))
    assert torch.allclose(double, torch.tensor([0.6, -0.4]))
    assert float(double_spread) == pytest.approx(0.2)


def test_gyre_peaks_on_its_ring_and_turns_counter_clockwise():
    flow = gyre((200.0, 150.0), 80.0, 1.2, EXTENT, 5.0)
    angles = torch.linspace(0, 2 * math.pi, 9)[:-1]
    ring = torch.stack([200 + 80 * angles.cos(), 150 + 80 * angles.sin()], -1)
    mean, _ = flow.sample(ring)
    assert torch.allclose(mean.norm(dim=-1), torch.full((8,), 1.2), atol=0.02)
    tangent = torch.stack([-angles.sin(), angles.cos()], -1)
    assert ((mean * tangent).sum(-1) > 1.15).all()  # CCW
    inner, _ = flow.sample(torch.tensor([[240.0, 150.0]]))
    outer, _ = flow.sample(torch.tensor([[360.0, 150.0]]))
    assert inner.norm() < 1.2 and outer.norm() < 1.2


def test_from_function_matches_function():
    flow = FlowField.from_function(lambda x, y: (x / 400.0, -y / 300.0), EXTENT, 10.0, 0.05)
    mean, spread = flow.sample(torch.tensor([200.0, 150.0]))
    assert torch.allclose(mean, torch.tensor([0.5, -0.5]), atol=1e-4)
    assert float(spread) == pytest.approx(0.05)


def test_npz_with_and_without_axes(tmp_path):
    u = np.array([[0.0, 1.0], [0.0, 1.0]])  # u grows to the east
    v = np.array([[0.0, 0.0], [2.0, 2.0]])  # v grows to the north (rows along y)
    np.savez(tmp_path / 'stretched.npz', u=u, v=v)
    flow = FlowField.from_file(tmp_path / 'stretched.npz', EXTENT, 10.0, spread=0.0)
    mean, _ = flow.sample(torch.tensor([[0.0, 0.0], [400.0, 300.0], [200.0, 150.0]]))
    assert torch.allclose(mean, torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.5, 1.0]]), atol=1e-5)
    np.savez(tmp_path / 'axes.npz', u=u, v=v, x=np.array([100.0, 200.0]),
             y=np.array([0.0, 100.0]))
    flow = FlowField.from_file(tmp_path / 'axes.npz', EXTENT, 10.0, scale=2.0)
    mean, _ = flow.sample(torch.tensor([[150.0, 50.0], [0.0, 0.0], [400.0, 300.0]]))
    assert torch.allclose(mean, torch.tensor([[1.0, 2.0], [0.0, 0.0], [2.0, 4.0]]), atol=1e-5)


def _write_netcdf(path, u, v, y_axis):
    with netcdf_file(path, 'w') as data:
        data.createDimension('time', 2)
        data.createDimension('depth', 1)
        data.createDimension('Y', u.shape[-2])
        data.createDimension('X', u.shape[-1])
        y = data.createVariable('Y', 'f', ('Y',))
        y[:] = y_axis
        for name, values in (('u', u), ('v', v)):
            var = data.createVariable(name, 'h', ('time', 'depth', 'Y', 'X'))
            var.scale_factor = np.float32(0.001)
            var.add_offset = np.float32(0.0)
            var._FillValue = np.int16(-32767)
            var[:] = values
        mask = data.createVariable('mask', 'f', ('Y', 'X'))
        mask[:] = np.ones(u.shape[-2:])


def test_netcdf_scale_fill_and_orientation(tmp_path):
    u = np.zeros((2, 1, 3, 4), np.int16)
    v = np.zeros((2, 1, 3, 4), np.int16)
    u[0, 0, 0, :] = 500        # southern row (last in a north-to-south file) east at 0.5 m/s
    u[0, 0, 2, 0] = -32767     # fill value -> 0
    u[1] = 1000                # second time slice
    _write_netcdf(tmp_path / 'c.nc', u, v, y_axis=[30.0, 20.0, 10.0])  # north first
    flow = FlowField.from_file(tmp_path / 'c.nc', EXTENT, 10.0)
    mean, _ = flow.sample(torch.tensor([[200.0, 300.0], [0.0, 0.0], [200.0, 0.0]]))
    assert mean[0, 0] == pytest.approx(0.5, abs=1e-4)   # north row holds the 500s
    assert mean[1, 0] == pytest.approx(0.0, abs=1e-4)   # filled value
    assert mean[2, 0] == pytest.approx(0.0, abs=1e-4)
    later, _ = FlowField.from_file(tmp_path / 'c.nc', EXTENT, 10.0, time_index=1).sample(
        torch.tensor([200.0, 150.0]))
    assert later[0] == pytest.approx(1.0, abs=1e-4)


def test_bad_files_are_refused_with_the_name(tmp_path):
    np.savez(tmp_path / 'bad.npz', u=np.zeros(3), v=np.zeros(3))
    with pytest.raises(ValueError, match='bad.npz'):
        FlowField.from_file(tmp_path / 'bad.npz', EXTENT, 10.0)
    np.savez(tmp_path / 'nov.npz', u=np.zeros((3, 3)))
    with pytest.raises(ValueError, match='nov.npz'):
        FlowField.from_file(tmp_path / 'nov.npz', EXTENT, 10.0)
    (tmp_path / 'junk.nc').write_bytes(b'not netcdf')
    with pytest.raises(ValueError, match='junk.nc'):
        FlowField.from_file(tmp_path / 'junk.nc', EXTENT, 10.0)
    with pytest.raises(ValueError, match='format'):
        FlowField.from_file(tmp_path / 'x.csv', EXTENT, 10.0)


def test_realisation_has_the_spread_and_is_seeded():
    flow = FlowField.uniform((0.5, 0.0), 0.2, (0.0, 2000.0, 0.0, 2000.0), 10.0)
    first = flow.realisation(seed=3, lengthscale=50.0)
    again = flow.realisation(seed=3, lengthscale=50.0)
    other = flow.realisation(seed=4, lengthscale=50.0)
    values = first.raster.values
    assert torch.equal(values, again.raster.values)
    assert not torch.equal(values, other.raster.values)
    assert float(values[2].abs().max()) == 0.0
    assert float(values[0].mean()) == pytest.approx(0.5, abs=0.03)
    assert float(values[0].std()) == pytest.approx(0.2, rel=0.05)
    # Smooth: neighbouring cells (10 m apart, lengthscale 50 m) are strongly correlated.
    du = values[0, :, 1:] - values[0, :, :-1]
    assert float(du.std()) < 0.3 * float(values[0].std())


def test_to_npz_is_read_by_the_simulator(tmp_path):
    flow = gyre((200.0, 150.0), 80.0, 1.0, EXTENT, 10.0)
    flow.to_npz(tmp_path / 'current.npz')
    field = _GridCurrent(str(tmp_path / 'current.npz'))  # CurrentConfig(source=...) reader
    expected, _ = flow.sample(torch.tensor([280.0, 150.0]))
    got = np.asarray(field.velocity(np.array(280.0), np.array(150.0), 0.0), float).ravel()
    assert np.allclose(got[:2], expected.numpy(), atol=1e-3)


def test_bad_arguments_refused():
    with pytest.raises(ValueError, match='resolution'):
        FlowField.uniform((0, 0), 0.0, EXTENT, 0.0)
    with pytest.raises(ValueError, match='extent'):
        FlowField.uniform((0, 0), 0.0, (1, 0, 0, 1), 1.0)
    with pytest.raises(ValueError, match='spread'):
        FlowField.uniform((0, 0), -1.0, EXTENT, 10.0)
    with pytest.raises(ValueError, match='lengthscale'):
        FlowField.uniform((0, 0), 0.1, EXTENT, 10.0).realisation(0, 0.0)
