"""Archive de-duplication: which articles of an archive are copies of each other.

The method, shared step for step by the local engine (``dedup.local``) and the
Spark engine (``dedup.spark``), so both give the same clusters on the same
input; each step is a module of this package:

1. ``input``: read records (JSONL, JSONL.gz, Parquet); empty or junk records are reported
   in ``skipped.jsonl`` and left out, never fatal.
2. ``prints``: print every document with the one text core: tokens hashed in a
   *comparison form* (``text.comparison_hashes``), then the LSH band keys of its
   adjacent shingle windows (``TextPipeline.window_keys_flat``). The comparison
   form is what makes scanned and edited copies match: each word is hashed by
   its OCR look-alike class (c/e, rn/m, 1/l/i, 0/o/a, h/b/8, 5/s: a misread
   letter no longer breaks the four shingles around it) and spelt-out wire
   shorthand (percent, million, versus, ...) by its short form (an edited
   earnings table changes every line). ``--no-lookalikes``/``--no-shorthand``
   turn them off. The whole-document "topic" keys are left out: they find
   rewrites for Match, but pair up any two articles on one subject, which dedup
   must not verify.
3. ``pairs``, candidate pairs: documents sharing a band key. A bucket of up to
   ``max_bucket`` documents gives all its pairs; a bigger one (stock text, or a
   story syndicated hundreds of times) gives only a star from its first
   document, so work stays linear in the bucket and copies still connect.
4. ``verify`` each pair with Match's alignment core (``scoring.align_pairs``:
   the compiled chaining of ``scoring.align_many``, unit bigram weights, many
   pairs per call): the shorter document is a copy when the passages cover at
   least ``threshold`` of its tokens and ``min_coverage`` of the longer one's
   (so a short brief quoted inside several roundups cannot chain them), or
   ``lead_coverage`` when it is the longer one's lead (a story cut from the
   bottom), or when the two have the same tokens. ``tests/dedup_reference.py``
   holds the one-pair-at-a-time definition. Documents with identical tokens
   (verbatim reprints) share a content class and each distinct (short, long)
   pair of contents is aligned once (``align_pairs_distinct``).
5. ``components``: connected components of the verified pairs are the clusters
   (``label_components``, whole-array hooking and pointer jumping: the one
   routine of both engines, Spark's edges are clustered on its driver).
   ``output`` writes them; a cluster's representative is its most complete,
   least altered member (``output.write_clusters``).

Documents are numbered by position: ``file_no << 40 | record_no``, so the
output order and duplicate-id resolution (first occurrence wins) are the same
in every engine.
"""

from __future__ import annotations

from wiretrace.dedup.input import Skipped
from wiretrace.dedup.local import run_local
from wiretrace.dedup.params import DedupParams
from wiretrace.dedup.verify import Edge

__all__ = ["DedupParams", "Edge", "Skipped", "run_local"]
