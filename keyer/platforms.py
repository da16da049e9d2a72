"""The sticker platforms' rules, in one table: ``keyer platforms`` prints it, ``keyer run --for``
fits a clip to it and ``keyer check`` verifies a file against it (``keyer.stickercheck``).

Sources: Telegram's sticker pages (video stickers and emoji), WhatsApp's sticker repository and
its validator (``StickerPackValidator``), Signal's and Discord's help and API text, LINE's
animated sticker guideline. Byte limits are counted conservatively: a limit of N KB is
``min(N * 1000, N * 1024)`` = ``N * 1000`` bytes, whichever way the platform counts.
"""
from __future__ import annotations

from dataclasses import dataclass

from keyer.errors import UsageProblem
from keyer.params import suggest


@dataclass(frozen=True)
class Profile:
    """One platform's rules for an animated sticker."""

    name: str
    container: str            # "webm", "webp" or "apng": what the file must be
    ext: str                  # the extension keyer writes (and expects of ``-o``)
    width: int                # the canvas: exact, or the bound (``canvas`` says which)
    height: int
    canvas: str               # "exact" | "side" (one side exactly the bound, the other <= it)
                              # | "line" (<= width x height, one side >= min_side)
    max_seconds: float | None
    max_fps: float | None
    kb: int                   # the byte limit, in KB
    min_side: int = 0         # "line": the shorter bound a side must reach
    min_seconds: float = 0.0
    whole_seconds: bool = False      # the length must be a whole number of seconds (LINE)
    frames: tuple[int, int] | None = None   # frames in all (LINE: 5..20)
    min_frame_ms: float = 0.0        # every frame at least this long (WhatsApp: 8 ms)
    loop: str = "forever"            # "forever" | "plays" (LINE: loops x length <= max_plays_s)
    max_plays_seconds: float = 0.0   # LINE: plays x length <= this
    also: str = ""

    @property
    def limit_bytes(self) -> int:
        """The byte limit counted the stricter way (KB or KiB, the smaller)."""
        return min(self.kb * 1000, self.kb * 1024)

    @property
    def codec(self) -> str:
        return {"webm": "vp9", "webp": "webp", "apng": "apng"}[self.container]

    def fit(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(content w, content h, canvas w, canvas h) for a subject box of ``width`` x
        ``height``: scaled (up or down, aspect kept) to the largest that fits, and the canvas
        the platform wants around it (the content is centred on it)."""
        width, height = max(1, width), max(1, height)
        scale = min(self.width / width, self.height / height)
        cw = max(1, min(self.width, round(width * scale)))
        ch = max(1, min(self.height, round(height * scale)))
        if self.canvas == "exact":
            return cw, ch, self.width, self.height
        def even(v: float, bound: int) -> int:   # the nearest even size within the bound
            return min(bound - bound % 2, max(2, 2 * round(v / 2)))

        if self.canvas == "side":
            # one side exactly the bound; VP9 4:2:0 wants the other even
            if width >= height:
                cw, ch = self.width, even(height * scale, self.height)
            else:
                cw, ch = even(width * scale, self.width), self.height
            return cw, ch, cw, ch
        # "line": even sides (LINE's guideline), inside the bound, one side >= min_side
        cw, ch = even(width * scale, self.width), even(height * scale, self.height)
        return cw, ch, cw, ch

    def canvas_problem(self, width: int, height: int) -> str | None:
        """Why a ``width`` x ``height`` canvas breaks the rule (None when it does not)."""
        if self.canvas == "exact" and (width, height) != (self.width, self.height):
            return f"canvas {width}x{height}, must be exactly {self.width}x{self.height}"
        if self.canvas == "side" and (max(width, height) != self.width
                                      or min(width, height) > self.width):
            return (f"canvas {width}x{height}: one side must be exactly {self.width} and the "
                    f"other at most {self.width}")
        if self.canvas == "line" and (width > self.width or height > self.height
                                      or max(width, height) < self.min_side):
            return (f"canvas {width}x{height}: must be at most {self.width}x{self.height} with "
                    f"one side at least {self.min_side}")
        return None

    def canvas_text(self) -> str:
        if self.canvas == "exact":
            return f"exactly {self.width}x{self.height}"
        if self.canvas == "side":
            return f"one side {self.width}, other <= {self.width}"
        return f"<= {self.width}x{self.height}, one side >= {self.min_side}"

    def row(self) -> dict:
        """The profile as ``keyer platforms`` prints it."""
        length = f"<= {self.max_seconds:g} s" if self.max_seconds else "any"
        if self.whole_seconds:
            length = f"{self.min_seconds:g}-{self.max_seconds:g} s, whole seconds"
        rate = f"<= {self.max_fps:g} fps" if self.max_fps else "any"
        if self.min_frame_ms:
            rate += f", frames >= {self.min_frame_ms:g} ms"
        if self.frames:
            rate += f", {self.frames[0]}-{self.frames[1]} frames"
        loop = ("forever" if self.loop == "forever" else
                f"plays x length <= {self.max_plays_seconds:g} s" if self.loop == "plays"
                else "by the player")
        return {"profile": self.name, "file": f"{self.ext} ({self.container})",
                "canvas": self.canvas_text(), "length": length, "rate": rate,
                "bytes": f"<= {self.kb} KB ({self.limit_bytes} B)", "loop": loop,
                "also": self.also}


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("telegram", "webm", ".webm", 512, 512, "side", 3.0, 30, 256,
            loop="player", also="VP9 yuva420p, no audio"),
    Profile("telegram-emoji", "webm", ".webm", 100, 100, "exact", 3.0, 30, 256,
            loop="player", also="VP9 yuva420p, no audio"),
    Profile("whatsapp", "webp", ".webp", 512, 512, "exact", 10.0, None, 500, min_frame_ms=8,
            also="first frame shows the subject; tray icon 96x96 PNG <= 50 KB"),
    Profile("signal", "apng", ".png", 512, 512, "exact", 3.0, None, 300,
            also="RGBA, not a palette (iOS does not animate palette APNGs)"),
    Profile("discord", "apng", ".png", 320, 320, "exact", 5.0, None, 512, also="RGBA"),
    Profile("line", "apng", ".png", 320, 270, "line", 4.0, None, 300, min_side=270,
            min_seconds=1.0, whole_seconds=True, frames=(5, 20), loop="plays",
            max_plays_seconds=4.0, also="even sides; main 240x240 and tab 96x74 PNGs"),
    Profile("imessage", "apng", ".png", 408, 408, "exact", None, None, 500, also="RGBA"),
)}


def profile(name: str) -> Profile:
    """The profile called ``name``; a UsageProblem naming the closest one otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageProblem(f"--for: unknown platform '{name}'{suggest(name, list(PROFILES))}") \
            from None


def table() -> str:
    """The profiles as a plain-text table (``keyer platforms``)."""
    rows = [p.row() for p in PROFILES.values()]
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols).rstrip() for r in rows]
    return "\n".join(lines)
