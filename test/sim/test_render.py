"""`render_dataset` / `asv sim render`: frames and ground-truth masks that match."""
import cv2
import numpy as np

from asv_autonomy.cli.main import main
from asv_autonomy.sim.camera import CameraConfig, CameraRenderer
from asv_autonomy.sim.render import POSE_KINDS, render_dataset, render_frames
from asv_autonomy.sim.world import World, WorldConfig

SMALL = CameraConfig(width=128, height=96)


def test_render_dataset_writes_matching_images_and_masks(tmp_path):
    stems = render_dataset(3, 4, tmp_path, camera=SMALL)
    assert len(stems) == 4 and len(set(stems)) == 4
    assert sorted(p.stem for p in (tmp_path / 'images').iterdir()) == sorted(stems)
    assert sorted(p.stem for p in (tmp_path / 'masks').iterdir()) == sorted(stems)
    frames = list(render_frames(3, 4, camera=SMALL))
    renderer = CameraRenderer(SMALL, World(WorldConfig()), 3)
    for stem, rgb, navigable, pose, kind in frames:
        image = cv2.imread(str(tmp_path / 'images' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(tmp_path / 'masks' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        assert image.shape == (96, 128, 3) and mask.shape == (96, 128)
        np.testing.assert_array_equal(image[:, :, ::-1], rgb)         # PNG is BGR on disk
        assert set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask == 255, navigable)
        # The mask is the renderer's truth at that pose: a fresh renderer agrees.
        again_rgb, again_mask = renderer.render(*pose)
        np.testing.assert_array_equal(again_mask, navigable)
        np.testing.assert_array_equal(again_rgb, rgb)
        assert not navigable[0].any(), 'sky at the top row cannot be navigable'
        assert kind in POSE_KINDS


def test_poses_are_on_water_cover_every_kind_and_depend_on_the_seed():
    world = World(WorldConfig())
    frames = list(render_frames(5, 6, camera=SMALL))
    assert [f[4] for f in frames] == list(POSE_KINDS) * 2
    for _, _, navigable, (x, y, yaw, t), kind in frames:
        assert world.depth(x, y) >= 0.5
        assert navigable[-1].mean() > 0.5, f'{kind} pose looks at no water under the bow'
    other = [f[3] for f in render_frames(6, 6, camera=SMALL)]
    assert other != [f[3] for f in frames]
    assert [f[3] for f in render_frames(5, 6, camera=SMALL)] == [f[3] for f in frames]


def test_cli_render(tmp_path, capsys):
    assert main(['sim', 'render', '--seed', '2', '--frames', '2', '--out',
                 str(tmp_path / 'd')]) == 0
    assert len(list((tmp_path / 'd' / 'images').glob('*.png'))) == 2
    assert len(list((tmp_path / 'd' / 'masks').glob('*.png'))) == 2
    assert main(['sim', 'render', '--frames', '0', '--out', str(tmp_path / 'e')]) == 2
    assert '--frames must be >= 1' in capsys.readouterr().err
