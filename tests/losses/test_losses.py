import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mars_segformer.losses import (
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    LovaszSoftmaxLoss,
    OhemCrossEntropyLoss,
    build_loss,
    class_weights_from_masks,
)


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
    with pytest.raises(ValueError, match="unknown loss 'tversky'"):
        build_loss("focal,tversky")


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


def hard_logits(pred: torch.Tensor, c: int = 5) -> torch.Tensor:
    """Logits whose softmax is one-hot on ``pred`` to float precision."""
    return F.one_hot(pred, c).permute(0, 3, 1, 2).float() * 60.0


def iou_loss_numpy(pred, labels, ignore=0, c=5):
    """1 - mean IoU over the classes present in the counted labels (the batch taken as one image)."""
    p, y = pred.numpy(), labels.numpy()
    keep = y != ignore
    ious = [((p == k) & (y == k) & keep).sum() / (((p == k) | (y == k)) & keep).sum()
            for k in range(c) if k != ignore and (y[keep] == k).any()]
    return 1 - float(np.mean(ious))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lovasz_equals_jaccard_loss_on_hard_predictions(seed):
    # the Lovász extension agrees with the set function it extends at the vertices (one-hot probabilities)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (2, 6, 9), generator=g)
    pred = torch.randint(0, 5, (2, 6, 9), generator=g)
    got = LovaszSoftmaxLoss(0)(hard_logits(pred), labels).item()
    assert got == pytest.approx(iou_loss_numpy(pred, labels), abs=1e-5)
    assert LovaszSoftmaxLoss(0)(hard_logits(labels), labels).item() == pytest.approx(0.0, abs=1e-6)


def test_lovasz_is_differentiable_and_ignores_background():
    logits, labels = data(4)
    logits.requires_grad_(True)
    loss = LovaszSoftmaxLoss(0)(logits, labels)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # pixels labelled 0 get no gradient at all
    bg = (labels == 0).unsqueeze(1).expand_as(logits)
    assert logits.grad[bg].abs().max() == 0
    assert LovaszSoftmaxLoss(0)(logits, torch.zeros_like(labels)).item() == 0.0


def lovasz_reference(logits, labels, ignore=0):
    """Berman et al.'s ``lovasz_softmax_flat`` as published: scored pixels selected, one sort per class present."""
    c = logits.shape[1]
    probs = logits.float().softmax(1).permute(0, 2, 3, 1).reshape(-1, c)
    y = labels.reshape(-1)
    keep = y != ignore
    probs, y = probs[keep], y[keep]
    losses = []
    for k in range(c):
        fg = (y == k).float()
        if k == ignore or fg.sum() == 0:
            continue
        errors, perm = torch.sort((fg - probs[:, k]).abs(), descending=True)
        gt = fg[perm]
        jac = 1.0 - (gt.sum() - gt.cumsum(0)) / (gt.sum() + (1 - gt).cumsum(0))
        jac[1:] = jac[1:] - jac[:-1].clone()
        losses.append(torch.dot(errors, jac))
    return torch.stack(losses).mean() if losses else probs.sum() * 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lovasz_matches_the_published_per_class_form_in_value_and_gradient(seed):
    # the batched, host-wait-free form sorts ignored pixels in with error 0; the published form leaves them out
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (3, 8, 12), generator=g)
    labels[0, :, :3] = 0
    labels[labels == 4] = 3 if seed == 2 else 4  # seed 2: a class absent from the batch
    logits = torch.randn(3, 5, 8, 12, generator=g, dtype=torch.float64)
    a, b = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    ours, ref = LovaszSoftmaxLoss(0)(a, labels), lovasz_reference(b, labels)
    ours.backward()
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    assert torch.allclose(a.grad, b.grad, atol=1e-7)


def test_ohem_keeps_the_hardest_pixels():
    logits, labels = data(5, h=10, w=10)
    w = [0.0, 1.0, 2.0, 0.5, 4.0]
    x = logits.double().numpy()
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    per_pixel = [-w[t] * logp[b, t, i, j] for b in range(2) for i in range(10) for j in range(10)
                 if (t := int(labels[b, i, j])) != 0]
    hardest = np.sort(per_pixel)[::-1]
    for keep in (0.1, 0.5, 1.0):
        k = max(1, round(keep * len(per_pixel)))
        got = OhemCrossEntropyLoss(keep, w, 0)(logits, labels).item()
        assert got == pytest.approx(hardest[:k].mean(), rel=1e-5)
    with pytest.raises(ValueError, match="keep share"):
        OhemCrossEntropyLoss(0.0)


def test_new_losses_in_specs():
    logits, labels = data(6)
    combo = build_loss("focal:1,lovasz:0.5,ohem:2", gamma=2.0, ignore_index=0, ohem_keep=0.3)
    ref = (FocalLoss(2.0, None, 0)(logits, labels) + 0.5 * LovaszSoftmaxLoss(0)(logits, labels)
           + 2 * OhemCrossEntropyLoss(0.3, None, 0)(logits, labels))
    torch.testing.assert_close(combo(logits, labels), ref)
