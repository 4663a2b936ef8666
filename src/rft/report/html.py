"""``rft report``: one self-contained ``report.html`` for one run, or several runs overlaid.

The page holds: the plots of :mod:`rft.report.plots` as inline base64 PNGs (runs overlaid, with a
legend), the monitor alerts, and per run the doctor's checklist (``doctor.json``, when present),
sampled completions at several points of training (best and worst of a group side by side, from
:mod:`rft.report.samples`) and the resolved ``config.yaml``. No scripts, no external resources: the
file opens offline and can be mailed. Written atomically (temporary file, fsync, rename).

Not covered: interactive plots (use ``tensorboard --logdir runs/``), runs still being written are
reported as they stand (a torn last line of ``metrics.jsonl`` is ignored).
"""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rft.files import atomic_write_text
from rft.report.plots import Panel, build_panels, missing_panels, render_png
from rft.report.samples import GroupPair, report_samples
from rft.training.run_dir import RunDir

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; border: 1px solid #eee; padding: 4px; }
img.plot { width: 600px; max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; margin: 0; white-space: pre-wrap; }
pre.obs { background: #eef4fb; border-left: 3px solid #7aa7d6; margin: 2px 0; } pre.turn { margin: 2px 0; }
.alert { color: #b00; } .muted { color: #777; } .ok { color: #070; } .bad { color: #b00; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(panel: Panel) -> str:
    data = base64.b64encode(render_png(panel)).decode("ascii")
    return (f'<figure><img class="plot" id="plot-{_e(panel.key)}" alt="{_e(panel.title)}" '
            f'src="data:image/png;base64,{data}"></figure>')


def _alerts(runs: list[tuple[str, list[dict[str, Any]]]]) -> str:
    rows = [(name, r) for name, records in runs for r in records if r.get("type") == "alert"]
    if not rows:
        return '<p class="muted">No monitor alerts.</p>'
    body = "".join(f'<tr class="alert"><td>{_e(n)}</td><td>{_e(r.get("step", ""))}</td>'
                   f'<td>{_e(r.get("monitor", ""))}</td><td>{_e(r.get("message", ""))}</td></tr>' for n, r in rows)
    return f"<table><tr><th>run</th><th>step</th><th>monitor</th><th>message</th></tr>{body}</table>"


def _cell(value: Any) -> str:
    return _e(json.dumps(value, default=str) if isinstance(value, (dict, list)) else value)


def _doctor(run_dir: Path) -> str:
    """The doctor's checklist: a table when ``doctor.json`` holds a list of checks, else the JSON itself."""
    path = run_dir / "doctor.json"
    if not path.is_file():
        return ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        return f'<h3>Doctor</h3><p class="bad">doctor.json is unreadable: {_e(e)}</p>'
    checks = data.get("checks") if isinstance(data, dict) else data
    if isinstance(checks, list) and checks and all(isinstance(c, dict) for c in checks):
        cols = list(dict.fromkeys(k for c in checks for k in c))
        head = "".join(f"<th>{_e(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_cell(c.get(k, ''))}</td>" for k in cols) + "</tr>" for c in checks)
        verdict = data.get("verdict") if isinstance(data, dict) else None
        overall = f"<p>overall: <b>{_e(verdict)}</b></p>" if verdict is not None else ""
        return f"<h3>Doctor checklist</h3>{overall}<table><tr>{head}</tr>{body}</table>"
    return f"<h3>Doctor</h3><pre>{_e(json.dumps(data, indent=2))}</pre>"


def _completion_cell(row: dict[str, Any]) -> str:
    """The completion, or a multi-turn episode's whole transcript (observations marked), then its grade."""
    transcript = row.get("transcript")
    if isinstance(transcript, list) and transcript:
        turns = "".join(f'<pre class="{"obs" if m.get("role") == "observation" else "turn"}">'
                        f'{"observation: " if m.get("role") == "observation" else ""}{_e(m.get("text", ""))}</pre>'
                        for m in transcript if isinstance(m, dict))
        text = f'{turns}<span class="muted">{_e(row.get("turns"))} turns, ended: {_e(row.get("end"))}</span>'
    else:
        text = f'<pre>{_e(row.get("completion", ""))}</pre>'
    return (f'{text}<div>score <b>{_e(row.get("score"))}</b>, '
            f'advantage {float(row.get("advantage") or 0.0):+.3f}<br><span class="muted">{_e(row.get("reason", ""))}'
            "</span></div>")


def _samples(pairs: list[GroupPair]) -> str:
    if not pairs:
        return '<p class="muted">No sampled completions logged.</p>'
    body = "".join(
        f"<tr><td>{p.step}</td><td><pre>{_e(p.prompt)}</pre><span class=\"muted\">group {p.group}, scores "
        f"{_e(', '.join(f'{s:g}' for s in p.scores))}</span></td><td>{_completion_cell(p.best)}</td>"
        f"<td>{_completion_cell(p.worst)}</td></tr>" for p in pairs)
    return ("<table><tr><th>step</th><th>prompt</th><th>best of the group</th><th>worst of the group</th></tr>"
            f"{body}</table>")


def _config(run: RunDir) -> str:
    text = run.config_path.read_text(encoding="utf-8") if run.config_path.is_file() else "(no config.yaml)"
    return f"<details><summary>Resolved config (config.yaml)</summary><pre>{_e(text)}</pre></details>"


def run_label(path: Path, all_paths: list[Path]) -> str:
    names = [p.name for p in all_paths]
    return path.name if names.count(path.name) == 1 else str(path)


def render_report(run_dirs: list[Path]) -> str:
    """The report page for these run directories (each must hold a ``metrics.jsonl``)."""
    runs = []
    for path in run_dirs:
        run = RunDir(path)
        if not run.metrics_path.is_file():
            raise FileNotFoundError(f"{path}: no metrics.jsonl; pass a run directory written by `rft train` or `rft sft`")
        runs.append((run_label(path, run_dirs), run.read_metrics()))
    panels = build_panels(runs)
    missing = missing_panels(panels)
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>rft report: {_e(', '.join(n for n, _ in runs))}</title><style>{_CSS}</style></head><body>",
        f"<h1>rft report: {_e(', '.join(n for n, _ in runs))}</h1>",
        f'<p class="muted">written {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; runs: '
        + ", ".join(f"{_e(n)} ({_e(p)}, {sum(r.get('type') == 'train' for r in recs)} train records)"
                    for (n, recs), p in zip(runs, run_dirs)) + "</p>",
        "<h2>Training curves</h2>",
        '<div class="grid">' + "".join(_img(p) for p in panels) + "</div>",
        f'<p class="muted">Not recorded: {_e(", ".join(missing))}.</p>' if missing else "",
        "<h2>Monitor alerts</h2>", _alerts(runs),
    ]
    for (name, _), path in zip(runs, run_dirs):
        run = RunDir(path)
        parts += [f"<h2>Run {_e(name)}</h2>", _doctor(path), "<h3>Sampled completions</h3>",
                  _samples(report_samples(path)), _config(run)]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def default_output(run_dirs: list[Path]) -> Path:
    if len(run_dirs) == 1:
        return run_dirs[0] / "report.html"
    return run_dirs[0].parent / ("compare-" + "-vs-".join(p.name for p in run_dirs) + ".html")


def write_report(run_dirs: list[str | Path], out: str | Path | None = None) -> Path:
    """Write the report atomically; returns its path (``RUN_DIR/report.html`` for one run)."""
    paths = [Path(p) for p in run_dirs]
    target = Path(out) if out is not None else default_output(paths)
    atomic_write_text(target, render_report(paths))
    return target


def write_report_or_warn(run_dir: str | Path) -> tuple[Path | None, str | None]:
    """For the end of training: (path, None), or (None, warning) -- a report failure never fails a run."""
    try:
        return write_report([run_dir]), None
    except Exception as e:  # noqa: BLE001 -- reported to the user as a warning, training already succeeded
        return None, f"warning: could not write the report for {run_dir}: {type(e).__name__}: {e}"
