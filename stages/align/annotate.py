"""Text drawn onto the aligned video with Pillow: a caption strip per frame (the video's name and frame
counter) and a legend strip of the phase colours. Each distinct text is drawn once; frames index into
the drawn strips."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vava.core.figures import phase_colours, phase_name

TEXT_COLOUR = (235, 235, 235)
MARGIN = 4  # pixels around text and between legend entries


def strip_height(height: int) -> int:
    """The even height of one line of text over frames `height` pixels high."""
    return 2 * max(7, height // 20)


def _font(line: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, line - 6))


def captions(texts: Sequence[str], width: int, line: int) -> np.ndarray:
    """(len(texts), line, width, 3) uint8: each text left-aligned, light on black; a repeated text is drawn once."""
    unique, index = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    font = _font(line)
    drawn = np.zeros((len(unique), line, width, 3), dtype=np.uint8)
    for i, text in enumerate(unique):
        image = Image.new("RGB", (width, line))
        ImageDraw.Draw(image).text((MARGIN, line // 2), str(text), fill=TEXT_COLOUR, font=font, anchor="lm")
        drawn[i] = np.asarray(image)
    return drawn[index.reshape(-1)]


def legend(labels: np.ndarray, phases: Sequence[str], background_label: int | None, width: int,
           line: int) -> np.ndarray:
    """(rows x line, width, 3) uint8: a swatch of each phase's colour in `labels` and its name, wrapped into as
    many rows as the width needs."""
    present = np.unique(labels)
    colours = np.round(phase_colours(present, background_label) * 255).astype(np.uint8)
    font, swatch = _font(line), line - 2 * MARGIN
    entries = [(tuple(int(c) for c in colour), phase_name(int(label), phases, background_label))
               for label, colour in zip(present, colours)]
    spans = [swatch + MARGIN + int(font.getlength(name)) + 3 * MARGIN for _, name in entries]
    rows, x = [[]], MARGIN
    for entry, span in zip(entries, spans):
        if rows[-1] and x + span > width:
            rows.append([])
            x = MARGIN
        rows[-1].append((x, entry))
        x += span
    image = Image.new("RGB", (width, line * len(rows)))
    draw = ImageDraw.Draw(image)
    for row, placed in enumerate(rows):
        top = row * line
        for left, (colour, name) in placed:
            draw.rectangle((left, top + MARGIN, left + swatch, top + MARGIN + swatch), fill=colour)
            draw.text((left + swatch + MARGIN, top + line // 2), name, fill=TEXT_COLOUR, font=font, anchor="lm")
    return np.asarray(image)
