"""Data sources for ``--data``: synthetic (default), digits, cifar10/100 batches, image folders.

Every source yields uint8-range float images ``(N, 3, S, S)`` in [0, 1] with integer
labels and class names; normalization statistics travel with the checkpoint. Nothing is
ever downloaded.

Three splits: ``train`` (fitted), ``val`` (what training selects on: ``best.ckpt``, recipes) and
``test`` (held out: evaluated once at the end of a run, never used to choose anything). The test
split of a source is the same for every ``--seed``: synthetic from a seed no run can use, digits
from a fixed stratified split, CIFAR's official test batch. An image folder without ``test/`` has
no test split (``DataBundle.test`` is None) and says so.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CIFAR_MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class DataError(ValueError):
    """A data source that cannot be read; the message names the path and what is wrong."""


@dataclass
class ImageSet:
    """Images in [0, 1], ``(N, 3, S, S)``, and their labels."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return self.labels.numel()


@dataclass
class DataBundle:
    name: str
    train: ImageSet
    val: ImageSet
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    test: ImageSet | None = None  # held out; None only for an image folder without test/
    no_test_reason: str = ""  # why ``test`` is None, for the logs and reports

    @property
    def input_size(self) -> int:
        return self.train.images.shape[-1]

    def splits(self) -> dict[str, ImageSet]:
        return {"train": self.train, "val": self.val, **({"test": self.test} if self.test is not None else {})}


def stratified_parts(labels: Tensor, every: int, parts: int, seed: int) -> list[Tensor]:
    """Indices split class by class: within each class (in a seeded random order) the k-th image goes to
    part ``k % every`` for ``k % every < parts``, the rest to the last part returned (index ``parts``).
    Each part holds about 1/every of every class, at least one image of a class that has ``parts + 1``."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    order = order[torch.argsort(labels[order], stable=True)]  # grouped by class, random within a class
    sorted_labels = labels[order]
    starts = torch.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = (torch.arange(len(order)) - starts) % every  # position within the class, modulo ``every``
    chosen = [order[rank == p] for p in range(parts)] + [order[rank >= parts]]
    return [part.sort().values for part in chosen]


def channel_stats(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())


def resize(images: Tensor, size: int) -> Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


# --- synthetic ----------------------------------------------------------------------------
SYNTHETIC_CLASSES = [f"grating_{deg}deg" for deg in range(0, 180, 18)]


def make_synthetic(n: int, size: int, seed: int) -> ImageSet:
    """Ten classes of oriented sine gratings (0, 18, ..., 162 degrees) with random frequency,
    phase, colour, contrast and a random occluding blob, plus pixel noise: a small CNN must
    learn orientation, not a colour shortcut."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    labels = labels[torch.randperm(n, generator=g)]
    theta = labels.float() * math.pi / 10 + (torch.rand(n, generator=g) - 0.5) * 0.15
    freq = 2 + torch.rand(n, generator=g) * 3  # cycles per image
    phase = torch.rand(n, generator=g) * 2 * math.pi
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    proj = xs[None] * torch.cos(theta)[:, None, None] + ys[None] * torch.sin(theta)[:, None, None]
    wave = torch.sin(2 * math.pi * freq[:, None, None] * proj + phase[:, None, None])
    contrast = 0.2 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
    colour = 0.3 + 0.7 * torch.rand(n, 3, 1, 1, generator=g)
    images = 0.5 + contrast * wave[:, None] * colour
    cy, cx = torch.rand(n, generator=g), torch.rand(n, generator=g)
    blob = ((ys[None] - cy[:, None, None]) ** 2 + (xs[None] - cx[:, None, None]) ** 2) < 0.03
    images = torch.where(blob[:, None], torch.rand(n, 3, 1, 1, generator=g), images)
    images = images + 0.08 * torch.randn(images.shape, generator=g)
    return ImageSet(images.clamp(0, 1), labels)


# Train uses ``seed`` and val ``seed + 1_000_003``, both below 2**63 + 1_000_003 (seeds stop at 2**63 - 1): the
# test generator's seed is one no run's train or val can have, so the test images are the same for every run.
SYNTHETIC_TEST_SEED = 2**64 - 1
SYNTHETIC_TEST_SIZE = 500


def load_synthetic(
    size: int, seed: int, train_size: int = 2000, val_size: int = 500, test_size: int = SYNTHETIC_TEST_SIZE
) -> DataBundle:
    train = make_synthetic(train_size, size, seed)
    val = make_synthetic(val_size, size, seed + 1_000_003)
    test = make_synthetic(test_size, size, SYNTHETIC_TEST_SEED)
    mean, std = channel_stats(train.images)
    return DataBundle("synthetic", train, val, SYNTHETIC_CLASSES, mean, std, test)


# --- digits -------------------------------------------------------------------------------
def load_digits_set(size: int, seed: int) -> DataBundle:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DataError("--data digits needs scikit-learn: pip install 'deepsquare[data]'") from exc
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0  # 8x8, values 0..16
    images = resize(images[:, None].expand(-1, 3, -1, -1).contiguous(), size)
    labels = torch.tensor(digits.target, dtype=torch.long)
    # A fifth of every class is the test split, the same for every seed; the seed splits the rest into
    # val (a quarter of it: a fifth of the whole) and train, also class by class.
    test, rest = stratified_parts(labels, 5, 1, seed=0)
    val, train = (rest[part] for part in stratified_parts(labels[rest], 4, 1, seed))
    train_set = ImageSet(images[train], labels[train])
    mean, std = channel_stats(train_set.images)
    val_set, test_set = ImageSet(images[val], labels[val]), ImageSet(images[test], labels[test])
    return DataBundle("digits", train_set, val_set, [str(d) for d in range(10)], mean, std, test_set)


# --- CIFAR python batches -----------------------------------------------------------------
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles: allow only what they hold (numpy arrays), never code."""

    ALLOWED = frozenset(
        {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
        | {("numpy", "ndarray"), ("numpy", "dtype")}
    )

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data batch")


def _read_cifar_batch(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"CIFAR batch {path} is missing")
    try:
        with path.open("rb") as f:
            return _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"CIFAR batch {path} is not a readable python batch: {exc}") from exc


def load_cifar(kind: str, root: Path, size: int) -> DataBundle:
    """The official test batch is the test split; val is a tenth of every class of the training batches,
    fixed (not seeded: the same for every run), the other nine tenths train."""
    if not root.is_dir():
        raise DataError(f"{kind} folder {root} does not exist")
    if kind == "cifar10":
        train_files, test_files = [root / f"data_batch_{i}" for i in range(1, 6)], [root / "test_batch"]
        meta, label_key, names_key = root / "batches.meta", b"labels", b"label_names"
    else:
        train_files, test_files = [root / "train"], [root / "test"]
        meta, label_key, names_key = root / "meta", b"fine_labels", b"fine_label_names"

    meta_batch = _read_cifar_batch(meta)
    if not isinstance(meta_batch, dict) or names_key not in meta_batch:
        raise DataError(f"{meta} has no {names_key.decode()!r}: not a {kind} meta file")
    try:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta_batch[names_key]]
    except TypeError as exc:
        raise DataError(f"{meta}: {names_key.decode()!r} is not a list of names") from exc

    def read(files: list[Path]) -> ImageSet:
        parts = []
        for file in files:
            batch = _read_cifar_batch(file)
            if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
                raise DataError(f"{file} lacks {b'data'!r} or {label_key!r}: not a {kind} batch")
            data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
                raise DataError(
                    f"{file}: images must be an N x 3072 uint8 array (32x32 RGB), got {data.shape} {data.dtype}"
                )
            if labels.shape != (len(data),):
                raise DataError(f"{file} has {len(data)} images but {labels.size} labels; the batch is damaged")
            if labels.size and (
                not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= len(names)
            ):
                raise DataError(f"{file} has labels outside 0..{len(names) - 1} (the {len(names)} names of {meta})")
            parts.append((torch.from_numpy(data.copy()), torch.from_numpy(labels.astype(np.int64))))
        images = torch.cat([d for d, _ in parts]).view(-1, 3, 32, 32).float() / 255.0
        return ImageSet(resize(images, size), torch.cat([lab for _, lab in parts]))

    mean, std = CIFAR_MEAN_STD[kind]
    full = read(train_files)
    val, train = stratified_parts(full.labels, 10, 1, seed=0)
    train_set, val_set = ImageSet(full.images[train], full.labels[train]), ImageSet(full.images[val], full.labels[val])
    return DataBundle(kind, train_set, val_set, names, mean, std, read(test_files))


# --- image folders ------------------------------------------------------------------------
def _read_image_folder(split_dir: Path, size: int, classes: list[str] | None) -> tuple[ImageSet, list[str]]:
    # The one image loader of the project lives in deepsquare.runtime (numpy + Pillow, no torch): training
    # must decode a photo exactly as predict and the apps do. It is the one runtime module train imports.
    from deepsquare.runtime.images import ImageError, load_image

    if not split_dir.is_dir():
        raise DataError(f"image folder {split_dir} does not exist (expected train/ and val/ with class subfolders)")
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not found:
        raise DataError(f"image folder {split_dir} has no class subfolders")
    if classes is not None and found != classes:
        raise DataError(f"{split_dir} has classes {found}, but train/ has {classes}")
    images, labels = [], []
    for label, name in enumerate(found):
        files = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"class folder {split_dir / name} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for file in files:
            try:
                images.append(torch.from_numpy(load_image(file, size)))
            except ImageError as exc:
                raise DataError(str(exc)) from exc
            labels.append(label)
    stacked = torch.stack(images).permute(0, 3, 1, 2).contiguous()
    return ImageSet(stacked, torch.tensor(labels)), found


def load_image_folder(root: Path, size: int) -> DataBundle:
    """``train/`` and ``val/``, and ``test/`` (the held-out split) when there is one."""
    train, classes = _read_image_folder(root / "train", size, None)
    if len(classes) < 2:
        raise DataError(f"{root / 'train'} has one class folder ({classes[0]}); a classifier needs at least two")
    val, _ = _read_image_folder(root / "val", size, classes)
    mean, std = channel_stats(train.images)
    if (root / "test").is_dir():
        test, _ = _read_image_folder(root / "test", size, classes)
        return DataBundle(f"imagefolder:{root}", train, val, classes, mean, std, test)
    reason = f"{root} has no test/ folder: no held-out split, only val (which selects best.ckpt) is reported"
    return DataBundle(f"imagefolder:{root}", train, val, classes, mean, std, None, reason)


DATA_KINDS = ("synthetic[:N]", "digits", "cifar10:PATH", "cifar100:PATH", "imagefolder:PATH")
KINDS_WITH_PATH = ("cifar10", "cifar100", "imagefolder")


def load_data(spec: str, size: int, seed: int = 0) -> DataBundle:
    """``spec`` is one of :data:`DATA_KINDS`; the result is checked (:func:`check_bundle`)."""
    return check_bundle(_load(spec, size, seed), spec)


def check_bundle(data: DataBundle, spec: str) -> DataBundle:
    """Data that lies is refused, not trained on: labels outside the class list, a split with no images,
    fewer than two classes, non-finite pixels."""
    if len(data.classes) < 2:
        raise DataError(f"--data {spec} has {len(data.classes)} class(es); a classifier needs at least two")
    for split, images in data.splits().items():
        if len(images) == 0:
            raise DataError(f"--data {spec} has no {split} images")
        if images.images.shape[0] != len(images):
            raise DataError(f"--data {spec}: {split} has {images.images.shape[0]} images and {len(images)} labels")
        if int(images.labels.min()) < 0 or int(images.labels.max()) >= len(data.classes):
            raise DataError(f"--data {spec}: {split} labels fall outside the {len(data.classes)} classes")
        if not torch.isfinite(images.images).all():
            raise DataError(f"--data {spec}: {split} images hold non-finite pixels")
    return data


# synthetic:N: images made in memory, refused before any allocation above either bound (float32 training images).
SYNTHETIC_MAX_IMAGES, SYNTHETIC_MAX_BYTES = 1_000_000, 2 << 30


def check_spec(spec: str, size: int) -> tuple[str, str]:
    """``spec`` as (kind, path), refused with one line before anything is read or allocated."""
    kind, _, path = spec.partition(":")
    if kind == "synthetic":  # plain synthetic: synthetic:2000
        most = min(SYNTHETIC_MAX_IMAGES, SYNTHETIC_MAX_BYTES // (3 * size * size * 4))
        if not (path or "2000").isdigit() or not 10 <= int(path or 2000) <= most:
            raise DataError(
                f"--data synthetic:N needs an image count N >= 10 and <= {most:,} at --input-size {size} (the "
                f"bounds: {SYNTHETIC_MAX_IMAGES:,} images, 2 GiB of training images), got {spec!r}"
            )
    elif not ((kind == "digits" and not path) or (kind in KINDS_WITH_PATH and path)):
        raise DataError(f"unknown --data {spec!r}; valid: {', '.join(DATA_KINDS)}")
    folder = Path(path).expanduser() / ("train" if kind == "imagefolder" else "")
    if kind in KINDS_WITH_PATH and not folder.is_dir():  # the loaders' own words
        raise DataError(f"{'image' if kind == 'imagefolder' else kind} folder {folder} does not exist")
    return kind, path


def _load(spec: str, size: int, seed: int) -> DataBundle:
    kind, path = check_spec(spec, size)
    if kind == "synthetic":  # synthetic:N: N training images, a quarter as many for val; the default test split
        n = int(path or 2000)
        return load_synthetic(size, seed, train_size=n, val_size=max(10, n // 4) if path else 500)
    if kind == "digits":
        return load_digits_set(size, seed)
    if kind in ("cifar10", "cifar100"):
        return load_cifar(kind, Path(path).expanduser(), size)
    return load_image_folder(Path(path).expanduser(), size)


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random crop after 1/8 reflect padding (the CIFAR recipe) and horizontal flip."""
    n, _, h, w = images.shape
    pad = max(1, h // 8)
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(n, 3, h, w + 2 * pad)
    cropped = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :].expand(n, 3, h, w)
    cropped = cropped.gather(3, cols)
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)
