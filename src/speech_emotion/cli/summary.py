"""The end-of-run summary ``analyze``, ``stream`` and ``listen`` print: :func:`~speech_emotion.report.summarize`
in words and a table, so every command states the same verdict ("mostly X" or "mixed: X / Y")."""

from __future__ import annotations

from typing import Any

from ..report import summarize
from ..timeline import Timeline
from ..words import plural
from . import avd, shown

UNCERTAIN_MARK = "?: uncertain (confidence low or the top two close, by the model's calibration thresholds)"
"""The legend of the ``?`` after an uncertain label, printed once: ``predict``'s table, ``stream``'s and ``listen``'s
live lines."""


def marked(label: str, uncertain: bool) -> str:
    """``label`` with the uncertain mark, as ``predict``'s table shows it: ``angry ?`` (``angry`` when the answer
    is not uncertain)."""
    return f"{label} ?" if uncertain else label


def print_summary(timeline: Timeline, console: Any = None, moments: bool = True) -> dict[str, Any]:
    """Print the summary of ``timeline`` (a rich ``console``, default stdout) and return it."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(soft_wrap=True)  # long paths stay on one line (copyable, greppable)
    summary = summarize(timeline)
    channel = f" (channel {timeline.channel})" if timeline.channel is not None else ""  # 0 = first, as in the JSON
    console.print(
        f"[bold]{escape(shown(timeline.source))}[/]{channel}: {plural(summary['segments'], 'segment')}, "
        f"{summary['speech_s']:.1f} s of speech in {summary['duration_s']:.1f} s "
        f"({summary['speech_share']:.0%}); [bold]{summary['verdict']}[/]"
        + (" (uncertain)" if summary["uncertain"] else "")
    )
    if summary["uncertain"]:
        console.print(
            "(uncertain): the recording's answer is under the model's calibration thresholds "
            "(confidence low or the top two close)"
        )
    if not summary["segments"]:
        return summary
    if summary["uncertain_share"] > 0:
        console.print(f"uncertain segments: {summary['uncertain_share']:.0%} of the speech time")
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("emotion")
    table.add_column("speech time", justify="right")
    table.add_column("share", justify="right")
    table.add_column("probability", justify="right")
    for label, seconds in sorted(summary["emotion_seconds"].items(), key=lambda kv: -kv[1]):
        if seconds > 0:
            share = summary["emotion_share"][label]
            table.add_row(label, clock(seconds), f"{share:.0%}", f"{summary['probabilities'][label]:.0%}")
    console.print(table)
    if "arousal" in summary:
        values = (summary["arousal"], summary["valence"], summary["dominance"])
        console.print(f"arousal/valence/dominance (0-1, 0.5 neutral): {avd(values)}")
    if moments and summary["intense_moments"]:
        console.print("most intense moments:")
        for m in summary["intense_moments"]:
            console.print(f"  {clock(m['start'])}-{clock(m['end'])}  {m['label']:<9} {m['probability']:.0%}")
    return summary


def clock(seconds: float) -> str:
    """``m:ss.s`` or ``h:mm:ss.s``."""
    minutes, s = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{s:04.1f}" if hours else f"{minutes}:{s:04.1f}"
