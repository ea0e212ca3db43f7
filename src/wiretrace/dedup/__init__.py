"""Archive de-duplication: which articles of an archive are copies of each other.

The method, shared step for step by the local engine (``dedup.local``) and the
Spark engine (``dedup.spark``), so both give the same clusters on the same
input; each step is a module of this package:

1. ``input``: read records (JSONL, JSONL.gz, Parquet); empty or junk records are reported
   in ``skipped.jsonl`` and left out, never fatal.
2. ``prints``: print every document with the one text core (``TextPipeline.window_prints``):
   token hashes and the LSH band keys of its adjacent shingle windows. The
   whole-document "topic" keys are left out: they find rewrites for Match, but
   pair up any two articles on one subject, which dedup must not verify.
3. ``pairs``, candidate pairs: documents sharing a band key. A bucket of up to
   ``max_bucket`` documents gives all its pairs; a bigger one (stock text, or a
   story syndicated hundreds of times) gives only a star from its first
   document, so work stays linear in the bucket and copies still connect.
4. ``verify`` each pair with ``scoring.align`` on exact shingles (unit bigram
   weights: a stock phrase cannot make most of a story): the pair is a
   duplicate when the passages cover at least ``threshold`` of the shorter
   document's tokens (containment) and ``min_coverage`` of the longer one's
   (so a short brief quoted inside several roundups cannot chain them).
   ``align_oriented`` computes exactly that for thousands of pairs per numpy
   pass; ``tests/dedup_reference.py`` (one pair through ``scoring.align``) is
   its reference.
   The answer depends only on the two documents' tokens, so documents with
   identical tokens (verbatim reprints) share a content class and each
   distinct (short, long) pair of contents is aligned once
   (``align_pairs_distinct``); every candidate pair still gets its edge.
5. ``components``: connected components of the verified pairs are the clusters
   (``label_components``, whole-array hooking and pointer jumping, here and on
   the Spark driver up to ``DRIVER_EDGES`` edges, else large-star/small-star).
   The representative is the longest member (most tokens), ties to the
   earliest. ``output`` writes them.

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
