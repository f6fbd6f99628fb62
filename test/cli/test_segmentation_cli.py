"""`asv bench segmentation` end to end on a tiny dataset (in-process: no ROS involved)."""
import json

import cv2
import numpy as np
import pytest

from asv_autonomy.cli.main import main
from asv_autonomy.perception.segmenter import Segmenter

pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture
def dataset(tmp_path):
    """Four 96x128 frames: sky, a shore band and water below row 50 + 2 k."""
    rng = np.random.default_rng(0)
    for k in range(4):
        row = 50 + 2 * k
        img = np.empty((96, 128, 3), np.uint8)
        img[:row - 12] = (235, 205, 175)           # BGR sky
        img[row - 12:row] = (40, 95, 50)           # trees
        img[row:] = (130, 90, 60)                  # water
        img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((96, 128), np.uint8)
        mask[row:] = 255
        for folder, array in (('images', img), ('masks', mask)):
            (tmp_path / 'toy' / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / 'toy' / folder / f'f{k}.png'), array)
    return tmp_path / 'toy'


def _run(capsys, *argv):
    code = main(['bench', 'segmentation', *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_classical_and_asv_side_by_side(dataset, tmp_path, capsys):
    model = tmp_path / 'untrained.pt'
    Segmenter().save(model)
    code, out, err = _run(capsys, '--images', dataset / 'images', '--masks', dataset / 'masks',
                          '--methods', 'classical,asv', '--model', model,
                          '--json', tmp_path / 'r.json', '--plot', tmp_path / 'r.png',
                          '--examples', 2, '--overlays', tmp_path / 'over')
    assert code == 0, err
    results = json.loads((tmp_path / 'r.json').read_text())['results']
    assert [(r['dataset'], r['method']) for r in results] == [('toy', 'classical'),
                                                              ('toy', 'asv')]
    for r in results:
        assert {'dataset', 'method', 'iou', 'boundary_err_px', 'fps'} <= set(r)
        assert 0.0 <= r['iou'] <= 1.0 and r['boundary_err_px'] >= 0 and r['fps'] > 0
    assert results[0]['iou'] > 0.95          # the classical method finds this waterline
    assert (tmp_path / 'r.png').stat().st_size > 10_000
    assert len(list((tmp_path / 'over').glob('*.jpg'))) == 8
    assert 'classical' in out and 'asv' in out


def test_frames_without_masks_give_fps_only(dataset, tmp_path, capsys):
    code, _, err = _run(capsys, '--images', dataset / 'images', '--methods', 'classical',
                        '--json', tmp_path / 'r.json', '--plot', tmp_path / 'r.png')
    assert code == 0, err
    (r,) = json.loads((tmp_path / 'r.json').read_text())['results']
    assert r['iou'] is None and r['boundary_err_px'] is None and r['fps'] > 0


def test_masked_only_scores_the_labelled_frames_of_a_sequence(dataset, tmp_path, capsys):
    partial = tmp_path / 'partial'
    partial.mkdir()
    for stem in ('f1', 'f3'):
        (partial / f'{stem}.png').write_bytes((dataset / 'masks' / f'{stem}.png').read_bytes())
    code, _, err = _run(capsys, '--images', dataset / 'images', '--masks', partial,
                        '--masked-only', '--methods', 'classical', '--json', tmp_path / 'r.json')
    assert code == 0, err
    (r,) = json.loads((tmp_path / 'r.json').read_text())['results']
    assert r['frames'] == 2 and r['iou'] > 0.95
    code, _, err = _run(capsys, '--images', dataset / 'images', '--masks', partial,
                        '--methods', 'classical', '--json', tmp_path / 'r.json')
    assert code == 2 and 'without a mask' in err           # not silently partial
    code, _, err = _run(capsys, '--images', dataset / 'images', '--masked-only',
                        '--json', tmp_path / 'r.json')
    assert code == 2 and '--masked-only needs --masks' in err


def test_errors_are_one_line(dataset, tmp_path, capsys):
    code, _, err = _run(capsys, '--images', dataset / 'images', '--methods', 'magic',
                        '--json', tmp_path / 'r.json')
    assert code == 2 and 'unknown method(s) magic' in err
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'garbage')
    code, _, err = _run(capsys, '--images', dataset / 'images', '--methods', 'asv',
                        '--model', bad, '--json', tmp_path / 'r.json')
    assert code == 2 and 'bad.pt' in err and err.count('\n') == 1
    code, _, err = _run(capsys, '--images', dataset / 'images', '--masks', tmp_path,
                        '--json', tmp_path / 'r.json')
    assert code == 2 and 'without a mask' in err
    code, _, err = _run(capsys, '--images', dataset / 'images', '--methods', 'unet-supervised',
                        '--unet', bad, '--json', tmp_path / 'r.json')
    assert code == 2 and 'bad.pt' in err
