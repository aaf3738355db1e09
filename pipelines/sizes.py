"""The output sizes a video can have, as values: one table for the message job, the render
route, the UI and time estimates."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import InvalidInput


@dataclass(frozen=True)
class OutputSize:
    """A video frame size: ``name`` is how callers spell it (``"720x1280"``)."""

    width: int
    height: int
    aspect: str  # "1:1" | "9:16" | "16:9": what framing composes for

    @property
    def name(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def cost(self) -> float:
        """Render cost relative to the default square (for time estimates)."""
        return self.pixels / DEFAULT.pixels

    @classmethod
    def parse(cls, value: str | tuple[int, int] | list[int] | OutputSize | None) -> OutputSize:
        """``"512x512"``, ``"720×1280"``, ``(720, 1280)`` or None (the default) -> the size;
        anything else raises VIDEO_INVALID_SIZE naming the allowed ones."""
        if value is None or value == "":
            return DEFAULT
        if isinstance(value, OutputSize):
            return value
        if isinstance(value, tuple | list) and len(value) == 2:
            value = f"{int(value[0])}x{int(value[1])}"
        key = str(value).strip().lower().replace(" ", "").replace("×", "x").replace("*", "x")
        size = BY_NAME.get(key)
        if size is None:
            names = ", ".join(BY_NAME)
            raise InvalidInput(f"Unsupported video size {value!r}; use one of {names}.",
                               code="VIDEO_INVALID_SIZE",
                               message_ja=f"対応していない動画サイズです（{names} のいずれか）。",
                               details={"field": "size", "allowed": list(BY_NAME)})
        return size


SQUARE = OutputSize(512, 512, "1:1")
PORTRAIT = OutputSize(720, 1280, "9:16")
LANDSCAPE = OutputSize(1280, 720, "16:9")
DEFAULT = SQUARE
SIZES: tuple[OutputSize, ...] = (SQUARE, PORTRAIT, LANDSCAPE)
BY_NAME: dict[str, OutputSize] = {s.name: s for s in SIZES}
