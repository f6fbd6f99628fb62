"""`asv train segmentation`: writes a loadable checkpoint with progress; clear errors."""
import subprocess
import sys

import cv2
import numpy as np
import pytest

from asv_autonomy.cli.main import main
from asv_autonomy.perception.segmenter import Segmenter


def test_train_segmentation_writes_a_checkpoint(tmp_path, capsys, one_torch_thread):
    images = tmp_path / 'frames'
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        img = np.full((60, 80, 3), (200, 200, 210), np.uint8)
        img[30 + i:] = (40, 70, 120)
        cv2.imwrite(str(images / f'{i:03d}.png'), img + rng.integers(0, 5, img.shape, np.uint8))
    labels = tmp_path / 'labels'
    labels.mkdir()
    for i in (0, 2):
        mask = np.zeros((60, 80), np.uint8)
        mask[30 + i:] = 255
        cv2.imwrite(str(labels / f'{i:03d}.png'), mask)
    out = tmp_path / 'seg.pt'
    code = main(['train', 'segmentation', '--images', str(images), '--sim-frames', '4',
                 '--masks', str(labels), '--steps', '2', '--batch', '4', '--seed', '7',
                 '--waterline-band', '0', '--out', str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert 'render 4/4' in err and 'step 2/2' in err and 'img/s' in err and 'wrote' in err
    assert 'labelled frames: 2 of --images' in err
    loaded = Segmenter.load(out)
    meta = loaded.metadata
    assert meta['seed'] == 7 and meta['steps'] == 2 and meta['real_frames'] == 4
    assert meta['sim_frames'] == 4 and meta['sim_seeds'] == [1000, 1999]
    assert meta['labelled_frames'] == 2 and f'--masks {labels}' in meta['command']
    assert meta['command'].startswith('asv train segmentation ')
    assert '--seed 7' in meta['command'] and '--waterline-band 0.0' in meta['command']
    result = loaded.segment(np.zeros((60, 80, 3), np.uint8))
    assert result.mask.shape == (60, 80)


def test_errors_are_one_line_with_exit_2(tmp_path):
    run = [sys.executable, '-m', 'asv_autonomy.cli.main', 'train', 'segmentation']
    missing = subprocess.run(run + ['--images', str(tmp_path / 'none'), '--sim-frames', '0',
                                    '--out', str(tmp_path / 'm.pt')],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith('asv: error:') and 'none' in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'junk')
    corrupt = subprocess.run(run + ['--init', str(bad), '--out', str(tmp_path / 'm.pt')],
                             capture_output=True, text=True, timeout=60)
    assert corrupt.returncode == 2 and 'bad.pt' in corrupt.stderr


@pytest.mark.parametrize('args', [['--sim-frames', '0'], ['--sim-seeds', 'x'],
                                  ['--waterline-band', '-0.1'], ['--masks', '.']])
def test_bad_arguments(tmp_path, args, capsys):
    assert main(['train', 'segmentation', *args, '--out', str(tmp_path / 'm.pt')]) == 2
    assert 'asv: error:' in capsys.readouterr().err
