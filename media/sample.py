"""A procedural demo clip with a known answer: a panning camera over a layered scene, and a ball to remove.

The camera pans right, so the sky, the mountains and the ground plane slide left at different speeds (parallax;
the ground speeds up towards the bottom, as a plane in perspective does). A striped ball rolls across in front.
Because the scene is drawn, the background behind the ball is known exactly, so the demo can report the PSNR
of the filled hole against it. Everything is a function of the seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vinpaint.media.writers import write_png_sequence


@dataclass(frozen=True)
class SampleConfig:
    """Size, length and motion of the sample clip."""

    frames: int = 44
    """Number of frames."""
    width: int = 320
    height: int = 180
    seed: int = 0
    """Everything random (textures, ball path) comes from this."""
    fps: int = 25
    """Frames per second (25, what a folder of PNGs is read back as)."""
    pan: float = 2.0
    """Camera pan in pixels per frame at the bottom of the ground plane; far layers move less."""
    ball_radius: float = 15.0
    """Radius of the ball to remove, in pixels at 320x180 (scaled with the height)."""


@dataclass
class Sample:
    """The clip, its hole masks and the true background behind the ball."""

    frames: np.ndarray
    """[T,H,W,3] uint8 RGB with the ball."""
    masks: np.ndarray
    """[T,H,W] bool, True where the ball covers the background (slightly generous)."""
    background: np.ndarray
    """[T,H,W,3] uint8 RGB, the same shots without the ball: the ground truth for the hole."""
    fps: Fraction


def _fractal_noise(rng: np.random.Generator, height: int, width: int, base: int, octaves: int = 4) -> np.ndarray:
    """[height,width] float32 in about 0..1: value noise summed over octaves, coarsest cell `base` pixels."""
    total = np.zeros((height, width), np.float32)
    weight, norm = 1.0, 0.0
    for octave in range(octaves):
        cell = max(base >> octave, 2)
        grid = rng.random((height // cell + 2, width // cell + 2), dtype=np.float32)
        up = cv2.resize(grid, (grid.shape[1] * cell, grid.shape[0] * cell), interpolation=cv2.INTER_CUBIC)
        total += weight * up[:height, :width]
        norm += weight
        weight *= 0.5
    return np.clip(total / norm, 0.0, 1.0)


def _sky(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top, horizon = np.array([0.20, 0.38, 0.75], np.float32), np.array([0.70, 0.82, 0.95], np.float32)
    sky = top * (1 - rows) + horizon * rows
    clouds = _fractal_noise(rng, height, width, 48)
    clouds = np.clip((clouds - 0.5) * 3.0, 0.0, 1.0)[..., None]
    return sky * (1 - clouds) + 0.97 * clouds


def _mountains(rng: np.random.Generator, height: int, width: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Colour and alpha of a ridge line above the horizon."""
    profile = _fractal_noise(rng, 1, width, 64, octaves=5)[0]
    profile = (profile - profile.min()) / max(float(np.ptp(profile)), 1e-6)
    ridge = horizon - (0.15 + 0.55 * profile) * horizon * 0.8
    alpha = np.clip(np.arange(height, dtype=np.float32)[:, None] - ridge[None, :] + 0.5, 0.0, 1.0)
    rock = _fractal_noise(rng, height, width, 16)
    colour = np.stack([0.30 + 0.25 * rock, 0.32 + 0.20 * rock, 0.40 + 0.15 * rock], axis=-1)
    snow = (np.arange(height)[:, None] < ridge[None, :] + 8) & (rock > 0.45)
    colour[snow] = 0.92
    return colour, alpha


def _ground(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A field with furrows and patches of flowers: texture with straight lines the fill must continue."""
    grass = _fractal_noise(rng, height, width, 24)
    colour = np.stack([0.25 + 0.30 * grass, 0.45 + 0.30 * grass, 0.12 + 0.10 * grass], axis=-1)
    xs = np.arange(width, dtype=np.float32)[None, :]
    furrows = 0.5 + 0.5 * np.cos(2 * np.pi * xs / 23.0)
    colour *= (0.80 + 0.20 * furrows)[..., None]
    spots = rng.random((height, width)) > 0.995
    spots = cv2.dilate(spots.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    colour[spots] = rng.choice(np.array([[0.95, 0.85, 0.2], [0.9, 0.3, 0.4], [0.95, 0.95, 0.95]], np.float32),
                               size=int(spots.sum()))
    return colour.astype(np.float32)


def _posts(rng: np.random.Generator, world_width: int, count: int) -> list[tuple[float, float, float]]:
    """Fence posts standing on the ground plane: (world x, depth 0..1 from horizon to bottom, width)."""
    return [(float(rng.uniform(0, world_width)), float(rng.uniform(0.15, 0.9)), float(rng.uniform(4, 8)))
            for _ in range(count)]


class _Scene:
    """Textures in world coordinates and the camera that renders them."""

    def __init__(self, config: SampleConfig):
        rng = np.random.default_rng(config.seed)
        self.config = config
        h, w = config.height, config.width
        self.horizon = int(round(h * 0.55))
        travel = int(np.ceil(config.pan * config.frames)) + 8
        self.world_width = w + travel
        self.sky = _sky(rng, self.horizon + 2, self.world_width)
        self.mountain_colour, self.mountain_alpha = _mountains(rng, self.horizon + 2, self.world_width, self.horizon)
        self.ground = _ground(rng, h - self.horizon, self.world_width)
        self.posts = _posts(rng, self.world_width, 9)

    def _speed(self, depth: np.ndarray | float) -> np.ndarray | float:
        """Pixels per frame a point moves at `depth` (0 = horizon, 1 = bottom row): a plane in perspective."""
        return self.config.pan * (0.3 + 0.7 * np.asarray(depth))

    def background(self, t: int) -> np.ndarray:
        """[H,W,3] float32 background at frame t."""
        cfg = self.config
        h, w, hz = cfg.height, cfg.width, self.horizon
        xs = np.arange(w, dtype=np.float32)[None, :]
        out = np.empty((h, w, 3), np.float32)
        top = np.arange(hz, dtype=np.float32)[:, None]
        sky = self._sample(self.sky, xs + 0.15 * cfg.pan * t, top)
        rock = self._sample(self.mountain_colour, xs + 0.3 * cfg.pan * t, top)
        alpha = self._sample(self.mountain_alpha[..., None], xs + 0.3 * cfg.pan * t, top)
        out[:hz] = sky * (1 - alpha) + rock * alpha
        rows = np.arange(h - hz, dtype=np.float32)[:, None]
        depth = rows / max(h - hz - 1, 1)
        out[hz:] = self._sample(self.ground, xs + self._speed(depth) * t, rows)
        for world_x, depth, width in self.posts:
            self._draw_post(out, world_x - self._speed(depth) * t, depth, width)
        return out

    def _draw_post(self, out: np.ndarray, x: float, depth: float, width: float) -> None:
        h, hz = self.config.height, self.horizon
        foot = hz + depth * (h - hz - 1)
        scale = 0.4 + 0.6 * depth
        half, top = width * scale / 2, foot - 60 * scale
        xs = np.arange(out.shape[1], dtype=np.float32)
        cover_x = np.clip(half + 0.5 - np.abs(xs - x), 0.0, 1.0)
        ys = np.arange(h, dtype=np.float32)[:, None]
        cover_y = np.clip(np.minimum(ys - top, foot - ys) + 0.5, 0.0, 1.0)
        alpha = (cover_y * cover_x[None, :])[..., None]
        shade = 0.35 + 0.25 * (xs - x + half) / max(2 * half, 1)
        wood = np.stack([shade * 1.1, shade * 0.75, shade * 0.45], axis=-1)[None, :, :]
        out[:] = out * (1 - alpha) + wood * alpha

    @staticmethod
    def _sample(texture: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        map_x = np.broadcast_to(x, np.broadcast_shapes(x.shape, y.shape)).astype(np.float32)
        map_y = np.broadcast_to(y, map_x.shape).astype(np.float32)
        out = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return out if out.ndim == 3 else out[..., None]

    def ball(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Colour [H,W,3] and coverage [H,W] of the ball at frame t: left to right with a bounce, rolling."""
        cfg = self.config
        h, w = cfg.height, cfg.width
        radius = cfg.ball_radius * h / 180.0
        progress = t / max(cfg.frames - 1, 1)
        cx = radius + 6 + progress * (w - 2 * radius - 12)
        floor = h * 0.80 - radius
        cy = floor - abs(np.sin(np.pi * 2.5 * progress)) * h * 0.28
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = xs - cx, ys - cy
        cover = np.clip(radius + 0.5 - np.hypot(dx, dy), 0.0, 1.0)
        spin = -(cx - radius) / radius
        stripe = np.cos(3.0 * (dx * np.cos(spin) + dy * np.sin(spin)) / radius * np.pi) > 0
        light = np.clip(1.0 - 0.6 * np.hypot(dx + 0.4 * radius, dy + 0.4 * radius) / (1.8 * radius), 0.2, 1.0)
        colour = np.where(stripe[..., None], [0.9, 0.15, 0.1], [0.95, 0.9, 0.85]).astype(np.float32)
        return (colour * light[..., None]).astype(np.float32), cover.astype(np.float32)


def make_sample(config: SampleConfig = SampleConfig()) -> Sample:
    """Render the clip, the masks and the true background (deterministic from config.seed)."""
    scene = _Scene(config)
    frames, masks, backgrounds = [], [], []
    grow = np.ones((5, 5), np.uint8)
    for t in range(config.frames):
        bg = scene.background(t)
        colour, cover = scene.ball(t)
        frame = bg * (1 - cover[..., None]) + colour * cover[..., None]  # float32 like bg: equal where cover is 0
        frames.append(_to_uint8(frame))
        backgrounds.append(_to_uint8(bg))
        masks.append(cv2.dilate((cover > 0).astype(np.uint8), grow).astype(bool))  # no ball pixel left outside
    return Sample(np.stack(frames), np.stack(masks), np.stack(backgrounds), Fraction(config.fps))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_sample(folder: Path, sample: Sample) -> dict[str, Path]:
    """Write frames/, masks/ (white = remove) and background/ PNG sequences; returns the three folders."""
    folder = Path(folder)
    paths = {"frames": folder / "frames", "masks": folder / "masks", "background": folder / "background"}
    write_png_sequence(paths["frames"], sample.frames)
    write_png_sequence(paths["masks"], np.where(sample.masks, 255, 0).astype(np.uint8))
    write_png_sequence(paths["background"], sample.background)
    return paths
