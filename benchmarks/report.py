"""results.json -> report.md and PNG plots (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.report_sweep import sweep_plots, sweep_section

GOALS = {
    "sig_vs_update": 100.0,
    "sig_vs_batch": 10.0,
    "ingest": 5000.0,
    "rps8": 2000.0,
    "p50_1": 2.0,
    "p99": 10.0,
    "bytes_per_story": 4096.0,
}


def _save(plt: Any, fig: Any, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _plots(res: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[str] = []
    sig = res.get("signatures")
    if sig:
        fig, ax = plt.subplots(figsize=(7, 4))
        perms = list(sig["by_num_perm"])
        labels = [
            ("ours_docs_s", "wiretrace pipeline"),
            ("ds_update_batch_docs_s", "datasketch update_batch"),
            ("ds_update_docs_s", "datasketch update loop"),
        ]
        width = 0.8 / len(labels)
        for i, (key, lab) in enumerate(labels):
            ax.bar(
                [j + i * width for j in range(len(perms))],
                [sig["by_num_perm"][p][key] for p in perms],
                width,
                label=lab,
            )
        ax.set_xticks([j + width for j in range(len(perms))], [f"num_perm={p}" for p in perms])
        ax.set_yscale("log")
        ax.set_ylabel("documents / s (one core)")
        ax.set_title("Signatures of ~600-word stories")
        ax.legend()
        made.append(_save(plt, fig, out, "signatures.png"))
    svc = res.get("service")
    if svc and svc["sizes"]:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        sizes = [r["stories"] for r in svc["sizes"]]
        for ci, c in enumerate(svc["sizes"][0]["match"]):
            clients = c["clients"]
            p50 = [r["match"][ci]["p50_ms"] for r in svc["sizes"]]
            p99 = [r["match"][ci]["p99_ms"] for r in svc["sizes"]]
            rps = [r["match"][ci]["rps"] for r in svc["sizes"]]
            axes[0].plot(sizes, p50, "o-", label=f"p50, {clients} clients")
            axes[0].plot(sizes, p99, "s--", label=f"p99, {clients} clients")
            axes[1].plot(sizes, rps, "o-", label=f"{clients} clients")
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("indexed stories")
            ax.legend(fontsize=7)
        axes[0].set_ylabel("Match latency (ms)")
        axes[0].set_yscale("log")
        axes[1].set_ylabel("Match requests / s")
        fig.suptitle(f"Match cost vs index size ({svc['mode']})")
        made.append(_save(plt, fig, out, "match_vs_size.png"))
    mem = res.get("memory")
    if mem:
        fig, ax = plt.subplots(figsize=(7, 4))
        names = [
            "wiretrace LSHIndex\n(window band keys)",
            "datasketch MinHashLSH\n(same windows)",
            "datasketch MinHashLSH\n(whole doc, 128p, t=0.5)",
        ]
        vals = [
            mem["ours"]["bytes_per_story"],
            mem["ds_windows"]["bytes_per_story"],
            mem["ds_whole128"]["bytes_per_story"],
        ]
        ax.bar(names, vals, color=["tab:green", "tab:red", "tab:orange"])
        ax.axhline(GOALS["bytes_per_story"], color="k", ls=":", label="goal: 4 KB/story in total")
        ax.set_yscale("log")
        ax.set_ylabel("resident bytes / story (RSS growth)")
        ax.legend()
        made.append(_save(plt, fig, out, "memory.png"))
    sw = res.get("sweep")
    if sw and sw["rows"]:
        made += sweep_plots(plt, sw, out)
    return made


def _ok(flag: bool) -> str:
    return "meets goal" if flag else "**short of goal**"


def render(res: dict[str, Any], out: Path) -> str:
    plots = _plots(res, out)
    m = res["meta"]
    lines = [
        f"# wiretrace benchmarks — profile `{m['profile']}`",
        "",
        f"Run {m['started']} on {m['machine']} ({m['cores']} cores, {m['python']}), corpus model trained on "
        f"`{m['corpus_source']}`, seed {m['seed']}"
        + (f", code at {m['commit']}" if m.get("commit") else "")
        + f"; {m['elapsed_s']:.0f} s in total. Reproduce with "
        f"`{m['command']}`. All ratios compare figures measured in this same run."
        + (
            f" Load average (1 min) {m['load_average_at_start'][0]:.1f} at the start and "
            f"{m['load_average_at_end'][0]:.1f} at the end, on {m['cores']} cores shared with other work: "
            "absolute figures are those of a busy machine, ratios hold."
            if "load_average_at_end" in m and m["load_average_at_start"][0] > 1.5
            else ""
        ),
        "",
    ]
    sig = res.get("signatures")
    if sig:
        lines += [
            "## 1. Signatures (docs/s, one core)",
            "",
            f"{sig['n_docs']} generated stories, {sig['mean_words']:.0f} words on average. Ours = the whole "
            "ingest path (`TextPipeline.stories`: tokenize, shingle, windows, MinHash, band keys), batches of "
            "256; datasketch = one whole-document `MinHash` per story from whitespace word "
            f"{4}-grams (its cheapest use), same num_perm.",
            "",
            "| num_perm | ours (batched) | ours (one story per call) | datasketch update loop | "
            "datasketch update_batch | x update | x update_batch |",
            "|---|---|---|---|---|---|---|",
        ]
        for p, r in sig["by_num_perm"].items():
            lines.append(
                f"| {p} | {r['ours_docs_s']:.0f} | {r['ours_single_docs_s']:.0f} | {r['ds_update_docs_s']:.0f}"
                f" | {r['ds_update_batch_docs_s']:.0f} | {r['ratio_vs_update']:.1f} "
                f"({_ok(r['ratio_vs_update'] >= GOALS['sig_vs_update'])}) | {r['ratio_vs_update_batch']:.1f} "
                f"({_ok(r['ratio_vs_update_batch'] >= GOALS['sig_vs_batch'])}) |"
            )
        lines += [
            "",
            "Where the time goes (µs per document, each stage timed alone on the same stories):",
            "",
            "| stage | µs / doc |",
            "|---|---|",
        ]
        for k, v in sig["breakdown_s_per_doc"].items():
            lines.append(f"| {k} | {v * 1e6:.1f} |")
        prof = "\n".join(sig["profile"].splitlines()[:45])
        lines += [
            "",
            "pyinstrument, `TextPipeline.stories` (top of the tree; full text in `profile_signatures.txt`):",
            "",
            "```",
            prof,
            "```",
            "",
        ]
        if sig.get("findings"):
            lines += ["**Findings.** " + sig["findings"], ""]
    svc = res.get("service")
    if svc:
        lines += [f"## 2-3. Ingest and Match ({svc['mode']})", ""]
        if svc["mode"] != "grpc":
            lines += [
                "*Measured through the in-process `Detector`, not gRPC: the server/client were not importable "
                "when this ran. No serialisation or network; client threads share the GIL with the detector.*",
                "",
            ]
        lines += [
            "| stories | ingest stories/s | clients | req/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in svc["sizes"]:
            for mrow in row["match"]:
                lines.append(
                    f"| {row['stories']:,} | {row['ingest_stories_s']:.0f} | {mrow['clients']} | "
                    f"{mrow['rps']:.0f} | {mrow['p50_ms']:.2f} | {mrow['p99_ms']:.2f} | {mrow['errors']} |"
                )
        last = svc["sizes"][-1]
        m8 = next((x for x in last["match"] if x["clients"] == 8), None)
        m1 = next((x for x in last["match"] if x["clients"] == 1), None)
        lines += [
            "",
            f"Goals at {last['stories']:,} stories: ingest ≥ 5,000/s — {_ok(last['ingest_stories_s'] >= 5000)};"
            + (f" ≥ 2,000 req/s with 8 clients — {_ok(m8['rps'] >= 2000)};" if m8 else "")
            + (f" p50 ≤ 2 ms with 1 client — {_ok(m1['p50_ms'] <= 2)};" if m1 else "")
            + (f" p99 ≤ 10 ms — {_ok(m1['p99_ms'] <= 10)} (1 client)." if m1 else ""),
            "",
        ]
        st = svc.get("stream")
        if st and st["stream"]:
            lines += [
                f"Match as users call it, at {st['stories']:,} stories: unary `Match` (one article a call) beside "
                f"`MatchStream` in batches of {st['batch']} (one stream a call, answers in order), measured "
                "alternately at each client count so both see the same machine. Throughput counts articles; "
                "a stream call's latency is that of its whole batch.",
                "",
                "| clients | unary articles/s | unary p50 / p99 ms | MatchStream articles/s | batch p50 / p99 ms | "
                "stream vs unary |",
                "|---|---|---|---|---|---|",
            ]
            for u, m in zip(st["unary"], st["stream"], strict=True):
                lines.append(
                    f"| {u['clients']} | {u['rps']:.0f} | {u['p50_ms']:.2f} / {u['p99_ms']:.2f} | {m['rps']:.0f} | "
                    f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f} | {m['rps'] / u['rps']:.2f}x |"
                )
            lines.append("")
        procs = svc.get("processes") or []
        if len(procs) > 1:
            lines += [
                f"Match at {last['stories']:,} stories with `serve --processes N` (the same data dir, restarted; "
                "each client its own connection, which the kernel gives to one of the processes). The clients "
                "run on the same cores as the servers.",
                "",
                f"| processes | clients | req/s | p50 ms | p99 ms | errors | req/s vs {procs[0]['processes']} |",
                "|---|---|---|---|---|---|---|",
            ]
            base = {m["clients"]: m["rps"] for m in procs[0]["match"]}  # the first count run (1 by default)
            for prow in procs:
                for m in prow["match"]:
                    lines.append(
                        f"| {prow['processes']} | {m['clients']} | {m['rps']:.0f} | {m['p50_ms']:.2f} | "
                        f"{m['p99_ms']:.2f} | {m['errors']} | {m['rps'] / base[m['clients']]:.2f}x |"
                    )
            lines.append("")
        lines += [
            "## 4. Memory",
            "",
            "Server memory once background merging is done: anonymous resident growth (the index, "
            "term table, caches) and, apart, file-backed pages of the SQLite file read through mmap "
            "(clean page cache the kernel reclaims under pressure).",
            "",
            "| stories | LSH index B/story (nbytes) | server resident growth B/story (anon) | "
            "+ SQLite pages mapped B/story (file) | SQLite on disk B/story | index entries/story |",
            "|---|---|---|---|---|---|",
        ]
        for row in svc["sizes"]:
            lines.append(
                f"| {row['stories']:,} | {row['index_bytes_per_story']:.0f} | {row['rss_bytes_per_story']:.0f}"
                f" | {row.get('file_bytes_per_story', float('nan')):.0f} | {row['disk_bytes_per_story']:.0f}"
                f" | {row['index_entries'] / row['stories']:.0f} |"
            )
        last = svc["sizes"][-1]
        per_story = f"{last['rss_bytes_per_story']:,.0f} B/story anonymous at {last['stories']:,} stories"
        lines += [
            "",
            (
                f"Goal at 1,000,000 stories: ≤ 4 KB resident per story in total — "
                f"{_ok(last['rss_bytes_per_story'] <= GOALS['bytes_per_story'])} ({per_story})."
                if last["stories"] >= 1_000_000
                else f"The goal (≤ 4 KB resident per story) is set at 1,000,000 stories; smaller indexes carry "
                f"the fixed costs (term table, caches, threads) over fewer stories ({per_story})."
            ),
            "",
        ]
    mem = res.get("memory")
    if mem:
        lines += [
            f"Same signatures held by each structure, {mem['stories']:,} stories "
            f"({mem['windows_per_story']:.1f} windows each), RSS growth of a fresh process:",
            "",
            "| holder | B/story | vs ours |",
            "|---|---|---|",
        ]
        ours = mem["ours"]["bytes_per_story"]
        for key, name in (
            ("ours", "wiretrace LSHIndex"),
            ("ds_windows", "datasketch MinHashLSH, same windows/bands"),
            ("ds_whole128", "datasketch MinHashLSH, whole doc, 128 perms, threshold 0.5"),
        ):
            v = mem[key]["bytes_per_story"]
            lines.append(f"| {name} | {v:,.0f} | {v / ours:.1f}x |")
        lines.append("")
    sw = res.get("sweep")
    if sw:
        lines += sweep_section(sw)
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    return text
