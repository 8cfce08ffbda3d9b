"""BlurHash encoding (https://blurha.sh): a few DCT components of an image in ~30 characters.

A faithful port of the reference encoder (woltapp/blurhash, TypeScript). The
basis functions are separable, so each component is a sum over rows of
per-row sums: O(width x height x components_x) work, which keeps a 32x32
thumbnail well under a millisecond-scale budget in plain Python.
"""

from __future__ import annotations

import math

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
# sRGB byte -> linear light, once.
_LINEAR = [(v / 255 / 12.92) if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in range(256)]


def encode83(value: int, length: int) -> str:
    return "".join(ALPHABET[(value // 83 ** (length - i)) % 83] for i in range(1, length + 1))


def linear_to_srgb(value: float) -> int:
    v = min(1.0, max(0.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)


def encode(rgb: bytes, width: int, height: int, components_x: int = 4, components_y: int = 3) -> str:
    """BlurHash of `rgb`: 3 bytes a pixel (8-bit sRGB), rows top to bottom."""
    if not (1 <= components_x <= 9 and 1 <= components_y <= 9):
        raise ValueError("blurhash needs 1 to 9 components on each axis")
    if width < 1 or height < 1 or len(rgb) != width * height * 3:
        raise ValueError(f"expected {width}x{height}x3 bytes, got {len(rgb)}")
    cos_x = [[math.cos(math.pi * cx * x / width) for x in range(width)] for cx in range(components_x)]
    cos_y = [[math.cos(math.pi * cy * y / height) for y in range(height)] for cy in range(components_y)]
    # row_sums[cx][y] = sum over x of cos_x[cx][x] * pixel(x, y), per channel.
    row_sums = [[(0.0, 0.0, 0.0)] * height for _ in range(components_x)]
    stride = width * 3
    for y in range(height):
        row = rgb[y * stride:(y + 1) * stride]
        reds = [_LINEAR[v] for v in row[0::3]]
        greens = [_LINEAR[v] for v in row[1::3]]
        blues = [_LINEAR[v] for v in row[2::3]]
        for cx in range(components_x):
            basis = cos_x[cx]
            row_sums[cx][y] = (
                sum(b * v for b, v in zip(basis, reds)),
                sum(b * v for b, v in zip(basis, greens)),
                sum(b * v for b, v in zip(basis, blues)),
            )
    factors: list[tuple[float, float, float]] = []
    for cy in range(components_y):
        for cx in range(components_x):
            scale = (1 if cx == 0 and cy == 0 else 2) / (width * height)
            sums = row_sums[cx]
            basis = cos_y[cy]
            factors.append(tuple(scale * sum(basis[y] * sums[y][c] for y in range(height)) for c in range(3)))

    dc, ac = factors[0], factors[1:]
    parts = [encode83((components_x - 1) + (components_y - 1) * 9, 1)]
    if ac:
        actual_max = max(abs(v) for factor in ac for v in factor)
        quantised_max = int(max(0, min(82, math.floor(actual_max * 166 - 0.5))))
        max_value = (quantised_max + 1) / 166
        parts.append(encode83(quantised_max, 1))
    else:
        max_value = 1.0
        parts.append(encode83(0, 1))
    parts.append(encode83((linear_to_srgb(dc[0]) << 16) + (linear_to_srgb(dc[1]) << 8) + linear_to_srgb(dc[2]), 4))
    for factor in ac:
        q = [int(max(0, min(18, math.floor(_sign_pow(v / max_value, 0.5) * 9 + 9.5)))) for v in factor]
        parts.append(encode83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2))
    return "".join(parts)
