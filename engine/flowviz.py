"""Optical flow as colour, the Middlebury way: hue is the direction, saturation the speed, zero motion is white.

Rightward motion is red, downward yellow-green, leftward cyan, upward violet (hue = angle of (dx, dy) in image
coordinates). Speeds above the scale are drawn darker so clipping is visible. Pure functions of numpy arrays.
"""
from __future__ import annotations

import cv2
import numpy as np


def flow_magnitude_scale(flows: np.ndarray) -> float:
    """[...,2] -> the largest finite speed, so several frames can share one colour scale."""
    speed = np.hypot(flows[..., 0], flows[..., 1])
    speed = speed[np.isfinite(speed)]
    return float(speed.max()) if speed.size else 0.0


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """[H,W,2] (dx, dy) in pixels -> [H,W,3] uint8 RGB. `max_magnitude` fixes the scale (default: this flow's max)."""
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be [H,W,2], got {flow.shape}")
    dx = np.nan_to_num(flow[..., 0].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    dy = np.nan_to_num(flow[..., 1].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    speed, angle = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    scale = flow_magnitude_scale(flow) if max_magnitude is None else float(max_magnitude)
    relative = speed / scale if scale > 1e-9 else np.zeros_like(speed)
    hsv = np.empty((*speed.shape, 3), np.float32)
    hsv[..., 0] = angle                                    # OpenCV float HSV: hue in degrees
    hsv[..., 1] = np.minimum(relative, 1.0)
    hsv[..., 2] = np.where(relative > 1.0, 0.75, 1.0)      # clipped speeds drawn darker
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def flows_to_rgb(flows: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """[N,H,W,2] -> [N,H,W,3] uint8 with one shared scale, so colours compare across frames."""
    scale = flow_magnitude_scale(flows) if max_magnitude is None else max_magnitude
    return np.stack([flow_to_rgb(f, scale) for f in flows])


def color_wheel(size: int = 128) -> np.ndarray:
    """A legend: [size,size,3] uint8 showing the colour of each direction and speed (edge = full scale)."""
    radius = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    flow = np.stack([(xs - radius) / radius, (ys - radius) / radius], axis=-1)
    wheel = flow_to_rgb(flow, 1.0)
    wheel[np.hypot(flow[..., 0], flow[..., 1]) > 1.0] = 255
    return wheel
