import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mars_segformer.losses import DiceLoss, FocalLoss, JaccardLoss, build_loss, class_weights_from_masks


def data(seed=0, b=2, c=5, h=6, w=7):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, h, w, generator=g), torch.randint(0, c, (b, h, w), generator=g)


def focal_numpy(logits, labels, gamma, weight, ignore):
    x = logits.double().numpy()
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    num = den = 0.0
    for b in range(x.shape[0]):
        for i in range(x.shape[2]):
            for j in range(x.shape[3]):
                t = int(labels[b, i, j])
                if ignore is not None and t == ignore:
                    continue
                wt = 1.0 if weight is None else weight[t]
                num += -wt * (1 - p[b, t, i, j]) ** gamma * np.log(p[b, t, i, j])
                den += wt
    return num / den


@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("ignore", [0, None])
def test_focal_matches_independent_computation(gamma, ignore):
    logits, labels = data()
    weight = [0.0 if ignore == 0 else 0.5, 1.0, 2.0, 3.0, 10.0]
    got = FocalLoss(gamma, torch.tensor(weight), ignore)(logits, labels).item()
    assert got == pytest.approx(focal_numpy(logits, labels, gamma, weight, ignore), rel=1e-5)


def test_focal_gamma0_is_weighted_cross_entropy():
    logits, labels = data(1)
    w = torch.tensor([0.3, 1.0, 2.0, 3.0, 4.0])
    ref = F.cross_entropy(logits, labels, weight=w, ignore_index=0)
    torch.testing.assert_close(FocalLoss(0.0, w, 0)(logits, labels), ref)


def test_focal_downweights_easy_pixels():
    labels = torch.ones(1, 2, 2, dtype=torch.long)
    easy = torch.zeros(1, 5, 2, 2)
    easy[:, 1] = 5.0
    assert FocalLoss(2.0, None, 0)(easy, labels) < 0.01 * FocalLoss(0.0, None, 0)(easy, labels)


def test_dice_and_jaccard_match_numpy():
    logits, labels = data(2)
    p = logits.softmax(1).numpy()
    y = np.eye(5)[labels.numpy()].transpose(0, 3, 1, 2)
    valid = (labels.numpy() != 0)[:, None]
    p, y = p * valid, y * valid
    inter = (p * y).sum((0, 2, 3))
    ps, ys = p.sum((0, 2, 3)), y.sum((0, 2, 3))
    dice = 1 - ((2 * inter + 1) / (ps + ys + 1))[1:].mean()
    jac = 1 - ((inter + 1) / (ps + ys - inter + 1))[1:].mean()
    assert DiceLoss(0)(logits, labels).item() == pytest.approx(dice, rel=1e-5)
    assert JaccardLoss(0)(logits, labels).item() == pytest.approx(jac, rel=1e-5)


def test_weighted_sum_and_upsampling():
    logits, labels = data(3, h=8, w=8)
    combo = build_loss("focal:1,dice:0.5", gamma=2.0, ignore_index=0)
    ref = FocalLoss(2.0, None, 0)(logits, labels) + 0.5 * DiceLoss(0)(logits, labels)
    torch.testing.assert_close(combo(logits, labels), ref)
    small = logits[..., ::2, ::2]
    up = F.interpolate(small, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(combo(small, labels), combo(up, labels))
    with pytest.raises(ValueError, match="unknown loss 'lovasz'"):
        build_loss("focal,lovasz")


def test_all_ignored_batch_gives_zero_not_nan():
    logits, _ = data()
    labels = torch.zeros(2, 6, 7, dtype=torch.long)
    assert FocalLoss(2.0, None, 0)(logits, labels).item() == 0.0


def test_class_weights_from_frequencies():
    masks = np.zeros((1, 100, 100), np.uint8)
    masks[0, :40] = 1
    masks[0, 40:80] = 2
    masks[0, 80:99] = 3
    masks[0, 99] = 4  # 1 % of labelled pixels
    w = class_weights_from_masks(masks, ignore_index=0)
    assert w[0] == 0.0 and np.mean(w[1:]) == pytest.approx(1.0)
    assert w[4] / w[1] == pytest.approx((40 / 1) ** 0.5, rel=1e-6)
