"""The settings sweep's part of the report: recommendation, tables, and its plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.bench_sweep import default_setting, setting_key, setting_label

NEEDS = ("latency-first", "recall-first", "memory-first", "balanced")


def _label(row: dict[str, Any]) -> str:
    return setting_label(setting_key(row))


def _short(row: dict[str, Any]) -> str:
    """A plot label: only what differs from the defaults (the common parts make labels collide)."""
    key, d = setting_key(row), default_setting()
    parts = []
    if key[:3] != d[:3]:
        parts.append(f"{key[1]}x{key[2]}" if key[0] == d[0] else f"{key[0]}/{key[1]}x{key[2]}")
    parts += [f"{c}{v}" for c, v, dv in zip("kwts", key[3:], d[3:], strict=True) if v != dv]
    return " ".join(parts) or "defaults"


def _row_of(sw: dict[str, Any], key: list[int]) -> dict[str, Any]:
    return next(r for r in sw["rows"] if list(setting_key(r)) == list(key))


def _stderr(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1 / max(1, n)) / max(1, n))


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def sweep_section(sw: dict[str, Any]) -> list[str]:
    rows = sw["rows"]
    rec = sw.get("recommendation") or {}
    hard, neg = sw["hard_kinds"], sw["negative_kinds"]
    n_kind = rows[0]["n_by_kind"]
    d = next((r for r in rows if r["is_default"]), rows[0])
    lines = [
        "## 5. Settings: which to choose",
        "",
        f"Query set: {sw['set']}; {sw['queries']:,} queries in all. Each setting gets a detector of its own "
        "(in-process, one thread) over the same stories and queries. *Attribution*: right source first and a "
        "verdict other than UNRELATED; for a negative, UNRELATED. *Hard kinds* (copy that keeps few long runs of "
        f"its source): {', '.join(hard)}. *Negatives*: {', '.join(neg)} (sibling: a story on the same subject "
        "written separately). *Hard-kind attribution*: the mean over the hard kinds, which the recommendation "
        "ranks by; *worst hard kind*: the lowest among them.",
        "",
    ]
    if rec:
        lines += [
            "### Recommendation",
            "",
            (
                "No setting met every target at this many queries per kind, so all are ranked"
                if rec["all_ranked"]
                else "Among the settings that meet every accuracy target"
            )
            + " ("
            + ", ".join(f"{k} ≥ {v:.2f}" for k, v in rec["targets"].items())
            + "; the core set's, with sibling held to unrelated's)"
            + (
                "; missing one: "
                + "; ".join(
                    f"{name} ({', '.join(f'{k} {v:.3f}' for k, v in miss.items())})"
                    for name, miss in rec["excluded"].items()
                )
                if rec["excluded"]
                else ""
            )
            + ".",
            "",
            "| need | setting | worst hard kind | hard kinds (mean) | all derived | false positives | p50 ms | "
            "p99 ms | index B/story | ingest stories/s | rule |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for need in NEEDS:
            r = _row_of(sw, rec["picks"][need])
            lines.append(
                f"| **{need}** | {_label(r)}{' (defaults)' if r['is_default'] else ''} | {r['worst_hard']:.3f} "
                f"({r['worst_hard_kind']}) | {r['hard_attribution']:.3f} | {r['attribution_rate']:.3f} | "
                f"{r['fp_rate']:.3f} | {r['latency']['p50_ms']:.2f} | {r['latency']['p99_ms']:.2f} | "
                f"{r['index_bytes_per_story']:,.0f} | {r['ingest_stories_s']:,.0f} | {rec['rules'][need]} |"
            )
        lines.append(
            f"| *defaults* | {_label(d)} | {d['worst_hard']:.3f} ({d['worst_hard_kind']}) | "
            f"{d['hard_attribution']:.3f} | {d['attribution_rate']:.3f} | {d['fp_rate']:.3f} | "
            f"{d['latency']['p50_ms']:.2f} | {d['latency']['p99_ms']:.2f} | {d['index_bytes_per_story']:,.0f} | "
            f"{d['ingest_stories_s']:,.0f} | |"
        )
        lines += ["", "Why, in numbers (against the defaults, measured in this run):", ""]
        lines += [f"- **{need}**: {rec['reasons'][need]}." for need in NEEDS]
        alt = rec.get("best_excluded")
        if alt:
            missed = ", ".join(f"{k} {v:.3f}" for k, v in alt["missed"].items())
            lines += [
                f"- *more recall, if a target may slip*: {setting_label(alt['key'])} misses {missed}: {alt['reason']}."
            ]
        balanced = (
            "the defaults are the balanced pick"
            if rec["defaults_are_balanced"]
            else f"the balanced pick is {setting_label(rec['picks']['balanced'])}, not the defaults"
        )
        lines += [
            "",
            "Frontiers (the settings no other beats on both recall and cost, gray ones included), and whether "
            "the defaults are on them:",
            "",
        ]
        for name, keys in rec["frontiers"].items():
            cost, recall = name.split("_", 1)
            what = "worst hard kind" if recall == "worst_hard" else "hard-kind attribution"
            names = ", ".join(setting_label(k) for k in keys)
            beaten = rec["defaults_beaten_by"].get(name) or []
            on = "on it" if rec["defaults_on"][name] else "**not on it**, beaten by " + "; ".join(beaten)
            lines.append(f"- {what} vs {cost}: {len(keys)} settings ({names}); defaults {on}.")
        if rec["defaults_kept_within_noise"]:
            balanced += (
                f" (another setting scored a little better on p50 and bytes, by less than the timing noise of "
                f"{rec['timing_noise']:.0%}, so the defaults stay)"
            )
        lines += ["", f"So {balanced}.", ""]
    sc = sw.get("scale_check")
    if sc:
        hard = sw["hard_kinds"]
        lines += [
            f"**Checked at scale.** The picks and the defaults again, on {sc['stories']:,} generated stories "
            f"({sc['per_kind']} queries of each kind; the index's window LSH matters more in a larger archive). "
            "A pick that loses more than 0.01 of hard-kind attribution against the defaults here is withdrawn"
            + (
                ": " + ", ".join(f"{need} ({name})" for need, name in sc["withdrawn"].items())
                if sc["withdrawn"]
                else "; none was"
            )
            + ".",
            "",
            "| setting | hard kinds | " + " | ".join(hard) + " | false positives | p50 ms | index B/story |",
            "|" + "---|" * (len(hard) + 5),
        ]
        for name, r in sc["rows"].items():
            lines.append(
                f"| {name} | {r['hard_attribution']:.3f} | "
                + " | ".join(_fmt(r["by_kind"].get(k)) for k in hard)
                + f" | {r['fp_rate']:.3f} | {r['p50_ms']:.2f} | {r['index_bytes_per_story']:,.0f} |"
            )
        lines.append("")
    worst_n = n_kind.get(d["worst_hard_kind"], 0)
    noise = sw["noise"]
    a, b = noise["p50_ms"]
    lines += [
        "How much to trust a difference: a kind's rate over "
        f"{worst_n} queries carries a binomial standard error of ±{_stderr(d['worst_hard'], worst_n):.3f} at the "
        "defaults' worst hard kind (every setting answers the same queries, so differences between settings "
        "are less noisy than that). Timings: every setting's detector was open at once and they took turns "
        f"(ingest 1,000 stories at a time, matches in {sw['rounds']} rotating rounds), so load on the shared "
        "machine fell on all alike. The defaults ran twice, as two detectors: p50 "
        f"{a:.2f} vs {b:.2f} ms ({max(a, b) / min(a, b) - 1:.0%} apart), p99 {noise['p99_ms'][0]:.2f} vs "
        f"{noise['p99_ms'][1]:.2f} ms, ingest {noise['ingest_stories_s'][0]:,.0f} vs "
        f"{noise['ingest_stories_s'][1]:,.0f} stories/s"
        + (", the same answers" if noise["same_answers"] else "")
        + ": smaller differences between settings are noise.",
        "",
        "### Every setting",
        "",
        "*all derived*: mean attribution over the derived kinds; *cand. recall*: derived queries whose source "
        "was among the stories Match verified; *cand. prec.*: of the stories verified, the share that was the "
        "query's source; *LSH rec./prec.*: window-LSH candidates (every story sharing a band) against exact "
        f"truth (≥ {sw['truth']['min_shared']} shared shingles making ≥ {sw['truth']['min_fraction']:.0%} of "
        "query or story, brute force, same k); *plagdet* (granularity): the returned passages against "
        "the passage truth of the queries that carry it (the generated ones: "
        + (
            f"{rows[0]['passages']['cases']:,.0f} true passages)"
            if rows[0].get("passages")
            else "none in this set, so n/a)"
        )
        + "; B/story: `GetStats.index_bytes` per story; ingest: `Detector.upsert` in batches of 1,000.",
        "",
        "| setting | ≈t | all derived | hard mean | worst hard | false pos. | cand. recall | cand. prec. | "
        "LSH rec. | LSH prec. | plagdet (gran.) | p50 ms | p99 ms | B/story | ingest/s |",
        "|" + "---|" * 15,
    ]
    for r in rows:
        pas = r.get("passages") or {}
        plag = f"{pas['plagdet']:.3f} ({pas['granularity']:.2f})" if pas else "n/a"
        lines.append(
            f"| {_label(r)}{' (defaults)' if r['is_default'] else ''} | {r['threshold_approx']:.2f} | "
            f"{r['attribution_rate']:.3f} | {r['hard_attribution']:.3f} | {r['worst_hard']:.3f} "
            f"({r['worst_hard_kind']}) | {r['fp_rate']:.3f} | {r['candidate_recall']:.3f} | "
            f"{r['candidate_precision']:.3f} | {r['lsh_recall']:.3f} | {r['lsh_precision']:.3f} | {plag} | "
            f"{r['latency']['p50_ms']:.2f} | {r['latency']['p99_ms']:.2f} | {r['index_bytes_per_story']:,.0f} | "
            f"{r['ingest_stories_s']:,.0f} |"
        )
    kinds = [k for k in hard] + [k for k in sw["kinds"] if k not in hard and k not in neg] + list(neg)
    lines += [
        "",
        "### Attribution per kind",
        "",
        "Derived kinds: right source first; negatives: answered UNRELATED (1 - false-positive rate). "
        "Queries per kind: " + ", ".join(f"{k} {n_kind.get(k, 0)}" for k in kinds) + ".",
        "",
        "| setting | " + " | ".join(kinds) + " |",
        "|" + "---|" * (len(kinds) + 1),
    ]
    for r in rows:
        lines.append(f"| {_label(r)} | " + " | ".join(_fmt(r["by_kind"].get(k)) for k in kinds) + " |")
    lines += [
        "",
        "Candidate recall per hard kind (the source among the stories verified; a miss here cannot be "
        "attributed, whatever verification does):",
        "",
        "| setting | " + " | ".join(hard) + " |",
        "|" + "---|" * (len(hard) + 1),
    ]
    for r in rows:
        lines.append(f"| {_label(r)} | " + " | ".join(_fmt(r["candidate_recall_by_kind"].get(k)) for k in hard) + " |")
    lines += ["", "**Findings.** " + findings(sw), ""]
    return lines


def findings(sw: dict[str, Any]) -> str:
    """Which kinds the settings move, and how far, in words from the numbers."""
    rows = sw["rows"]
    out = []
    for k in [*sw["hard_kinds"], *sw["negative_kinds"]]:
        vals = [(r["by_kind"].get(k, math.nan), r) for r in rows]
        lo = min(vals, key=lambda v: v[0])
        hi = max(vals, key=lambda v: v[0])
        if hi[0] - lo[0] < 1e-9:
            out.append(f"{k} {hi[0]:.3f} at every setting")
        else:
            out.append(f"{k} from {lo[0]:.3f} ({_label(lo[1])}) to {hi[0]:.3f} ({_label(hi[1])})")
    d = next((r for r in rows if r["is_default"]), rows[0])
    easy = [k for k in sw["kinds"] if k not in sw["hard_kinds"] and k not in sw["negative_kinds"]]
    flat = [k for k in easy if all(r["by_kind"].get(k, 0) >= 0.99 for r in rows)]
    text = "Across the grid: " + "; ".join(out) + "."
    if flat:
        text += f" {', '.join(flat)} are at least 0.99 at every setting (the sanity kinds)."
    text += (
        f" At the defaults the worst hard kind is {d['worst_hard_kind']} ({d['worst_hard']:.3f}) and the "
        f"false-positive rate {d['fp_rate']:.3f} ("
        + ", ".join(f"{k} {v:.3f}" for k, v in d["fp_by_kind"].items())
        + ")."
    )
    return text


# --- plots ------------------------------------------------------------------------------


def _place_labels(fig: Any, ax: Any, xs: list[float], ys: list[float], labels: list[str], bold: set[int]) -> None:
    """Annotate every point with its label where it overlaps no other label or point.

    Greedy: points from the top of the plot down try offsets on growing rings around themselves
    and take the first free spot inside the axes; a label placed away from its point gets a leader line.
    """
    import numpy as np
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    disp = ax.transData.transform(np.column_stack([xs, ys]))
    dots = [Bbox.from_bounds(x - 3, y - 3, 6, 6) for x, y in disp]
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    rings = [
        (r, a) for r in (5, 10, 16, 24, 34, 46, 60, 76, 94, 115) for a in np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ]

    def annotate(i: int, radius: float, angle: float) -> Any:
        dx, dy = radius * np.cos(angle), radius * np.sin(angle)
        return ax.annotate(
            labels[i],
            (xs[i], ys[i]),
            xytext=(dx, dy),
            textcoords="offset points",
            fontsize=6,
            fontweight="bold" if i in bold else "normal",
            ha="left" if dx >= 0 else "right",
            va="bottom" if dy >= 0 else "top",
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.55"} if radius > 12 else None,
        )

    for i in sorted(range(len(xs)), key=lambda j: (-ys[j], xs[j])):
        others = placed + [b for j, b in enumerate(dots) if j != i]
        for radius, angle in rings:
            t = annotate(i, radius, angle)
            box = t.get_window_extent(renderer).expanded(1.04, 1.15)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(b) for b in others):
                placed.append(box)
                break
            t.remove()
        else:  # no free spot within reach (a denser grid needs a bigger figure): next to the point
            placed.append(annotate(i, rings[0][0], rings[0][1]).get_window_extent(renderer))


def _frontier_panel(
    fig: Any, ax: Any, sw: dict[str, Any], xs: list[float], recall: str, front_keys: list[list[int]]
) -> None:
    rows = sw["rows"]
    rec = sw.get("recommendation") or {}
    ys = [r[recall] for r in rows]
    excluded = rec.get("excluded") or {}
    eligible = [rec.get("all_ranked", True) or _label(r) not in excluded for r in rows]
    colors = ["tab:blue" if ok else "tab:gray" for ok in eligible]
    ax.scatter(xs, ys, c=colors, s=[40 if r["is_default"] else 18 for r in rows], zorder=3)
    front = sorted(
        (next(i for i, r in enumerate(rows) if list(setting_key(r)) == list(k)) for k in front_keys),
        key=lambda i: xs[i],
    )
    pad_x = (max(xs) - min(xs)) * 0.3 or max(xs) * 0.1
    if front:
        # A step line: from each frontier point on, that recall is to be had at that cost.
        fx: list[float] = []
        fy: list[float] = []
        for i in front:
            if fx:
                fx.append(xs[i])
                fy.append(fy[-1])
            fx.append(xs[i])
            fy.append(ys[i])
        fx.append(max(xs) + pad_x)
        fy.append(fy[-1])
        ax.plot(fx, fy, "-", color="tab:red", lw=1.2, zorder=2, label=f"frontier ({len(front)} settings)")
    picks = rec.get("picks") or {}
    labels = []
    for r in rows:
        tags = [need for need, k in picks.items() if list(k) == list(setting_key(r))]
        labels.append(_short(r) + (f" [{', '.join(tags)}]" if tags else ""))
    pad_y = max(0.02, (max(ys) - min(ys)) * 0.2)
    ax.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
    ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
    ax.set_ylabel("attribution, worst hard kind" if recall == "worst_hard" else "attribution, mean of hard kinds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    _place_labels(fig, ax, xs, ys, labels, {i for i, r in enumerate(rows) if r["is_default"]} | set(front))


def _frontier_plot(plt: Any, sw: dict[str, Any], out: Path, cost: str, name: str) -> str:
    rows = sw["rows"]
    rec = sw.get("recommendation") or {}
    fronts = rec.get("frontiers") or {}
    if cost == "latency":
        xs = [r["latency"]["p50_ms"] for r in rows]
        xlabel = "Match p50 latency (ms, in-process, one thread)"
    else:
        xs = [r["index_bytes_per_story"] for r in rows]
        xlabel = "index bytes per story (GetStats.index_bytes)"
    fig, axes = plt.subplots(2, 1, figsize=(10, 11))
    for ax, recall in zip(axes, ("worst_hard", "hard_attribution"), strict=True):
        ax.set_xlabel(xlabel)
        _frontier_panel(fig, ax, sw, xs, recall, fronts.get(f"{cost}_{recall}", []))
    fig.suptitle(
        f"Recall vs {'latency' if cost == 'latency' else 'memory'}, one point per setting, labelled by how it "
        f"differs from the defaults ({setting_label(default_setting())}:\nperms/bands x rows, k shingle, w window, "
        "t whole-document perms, s term sample); bold: on the frontier or the defaults; gray: misses an "
        "accuracy target",
        fontsize=9,
    )
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _heatmap(plt: Any, sw: dict[str, Any], out: Path) -> str:
    import numpy as np

    rows = sw["rows"]
    hard, neg = sw["hard_kinds"], sw["negative_kinds"]
    kinds = [*hard, *neg, *(k for k in sw["kinds"] if k not in hard and k not in neg)]
    grid = np.array([[r["by_kind"].get(k, np.nan) for k in kinds] for r in rows])
    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * len(kinds), 1.4 + 0.34 * len(rows)))
    im = ax.imshow(grid, cmap="RdYlGn", vmin=max(0.5, float(np.nanmin(grid)) - 0.02), vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(kinds)), kinds, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [_label(r) + (" (defaults)" if r["is_default"] else "") for r in rows], fontsize=7)
    for i in range(len(rows)):
        for j in range(len(kinds)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=5.5)
    ax.axvline(len(hard) - 0.5, color="k", lw=0.8)
    ax.axvline(len(hard) + len(neg) - 0.5, color="k", lw=0.8)
    ax.set_title("Attribution per kind (hard kinds | negatives: share UNRELATED | the rest)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(out / "kinds_heatmap.png", dpi=110)
    plt.close(fig)
    return "kinds_heatmap.png"


def _scurves(plt: Any, sw: dict[str, Any], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, cur in sw["scurves"].items():
        line = ax.plot(cur["similarity"], cur["measured"], "o", ms=3, label=f"{name} measured")[0]
        ax.plot(cur["similarity"], cur["theory"], "-", color=line.get_color(), lw=1, label=f"{name} 1-(1-s^r)^b")
    ax.set_xlabel("Jaccard similarity of two 16-shingle windows")
    ax.set_ylabel("P(share at least one band)")
    ax.set_title("LSH S-curves: num_perm/bands x rows")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "scurves.png", dpi=110)
    plt.close(fig)
    return "scurves.png"


def sweep_plots(plt: Any, sw: dict[str, Any], out: Path) -> list[str]:
    return [
        _frontier_plot(plt, sw, out, "latency", "recall_latency.png"),
        _frontier_plot(plt, sw, out, "memory", "recall_memory.png"),
        _heatmap(plt, sw, out),
        _scurves(plt, sw, out),
    ]
