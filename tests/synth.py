"""Seeded synthetic news-like text and the copies archives are full of.

Tests may not ship the research corpora, so they build their own: a Zipf-ish
vocabulary of made-up words, sentences with names and figures, paragraphs,
and the three kinds of copy dedup must catch (verbatim with outlet chrome,
lightly edited, OCR-noisy). Deterministic for a given seed.
"""

from __future__ import annotations

import itertools
import random

_SYLLABLES = [
    "ba", "ka", "to", "ri", "mel", "son", "dra", "vin", "per", "lo", "ste", "gan", "mu", "tor", "ea", "il",
    "shi", "ven", "qua", "rol", "nex", "pa", "dum", "fi", "ghe", "zo", "lun", "bre", "cor", "tis",
]  # fmt: skip
_OCR = {"l": "1", "o": "0", "e": "c", "m": "rn", "i": "l", "a": "o", "s": "5"}


class NewsGen:
    """Generates articles and their derived copies from one seeded RNG."""

    def __init__(self, seed: int = 7, vocab: int = 6000) -> None:
        self.rng = random.Random(seed)
        words: set[str] = set()
        while len(words) < vocab:
            words.add("".join(self.rng.choice(_SYLLABLES) for _ in range(self.rng.randint(1, 4))))
        self.words = sorted(words)
        self.weights = [1.0 / (i + 1) ** 0.9 for i in range(len(self.words))]
        # What choices() would accumulate on every call: the same draws, without 6,000 additions per sentence.
        self.cum_weights = list(itertools.accumulate(self.weights))
        self.names = [w.capitalize() for w in self.rng.sample(self.words, 300)]

    def sentence(self) -> str:
        n = self.rng.randint(10, 24)
        words = self.rng.choices(self.words, cum_weights=self.cum_weights, k=n)
        for _ in range(self.rng.randint(0, 2)):
            words[self.rng.randrange(n)] = self.rng.choice(self.names)
        if self.rng.random() < 0.4:
            words.insert(self.rng.randrange(n), f"{self.rng.randint(2, 990)}.{self.rng.randint(0, 9)}")
        words[0] = words[0].capitalize()
        return " ".join(words) + "."

    def article(self, min_words: int = 150, max_words: int = 500) -> str:
        target = self.rng.randint(min_words, max_words)
        paragraphs: list[str] = []
        count = 0
        while count < target:
            para = " ".join(self.sentence() for _ in range(self.rng.randint(1, 3)))
            count += para.count(" ") + 1
            paragraphs.append(para)
        return "\n\n".join(paragraphs)

    def verbatim(self, text: str) -> str:
        """The whole story carried by an outlet, with its chrome around it."""
        byline = f"By {self.rng.choice(self.names)} {self.rng.choice(self.names)}"
        return f"Advertisement\n{byline}\n{text}\nSubscribe to our newsletter"

    def edited(self, text: str, rate: float = 0.03) -> str:
        """A few words changed, one sentence dropped, one added: a copy editor's pass."""
        sentences = text.replace("\n\n", " \n\n ").split(". ")
        if len(sentences) > 4:
            del sentences[self.rng.randrange(1, len(sentences) - 1)]
        sentences.insert(self.rng.randrange(len(sentences)), self.sentence().rstrip("."))
        words = ". ".join(sentences).split(" ")
        for i in range(len(words)):
            if self.rng.random() < rate:
                words[i] = self.rng.choice(self.words)
        return " ".join(words).replace(" \n\n ", "\n\n")

    def ocr(self, text: str, rate: float = 0.04) -> str:
        """Character confusions in a share of the words, as from a scanned page."""
        words = text.split(" ")
        for i, w in enumerate(words):
            if self.rng.random() < rate and w:
                chars = [c for c in w if c in _OCR]
                if chars:
                    c = self.rng.choice(chars)
                    words[i] = w.replace(c, _OCR[c], 1)
        return " ".join(words)


class Event:
    """One news event as reporters meet it: who, where, a figure, and what someone said."""

    def __init__(self, gen: NewsGen) -> None:
        rng = gen.rng
        self.gen = gen
        self.people = rng.sample(gen.names, 3)
        self.place = rng.choice(gen.names)
        self.figure = f"{rng.randint(11, 99)},{rng.randint(100, 999)}"
        self.quote = " ".join(rng.choices(gen.words, cum_weights=gen.cum_weights, k=16)).capitalize()
        self.lead = self._sentence(8)

    def _sentence(self, extra: int) -> list[str]:
        """A sentence naming the event's people, place and figure among ``extra`` other words."""
        g = self.gen
        words = g.rng.choices(g.words, cum_weights=g.cum_weights, k=extra)
        facts = [*self.people[:2], "in", self.place, self.figure]
        for w in facts:
            words.insert(g.rng.randrange(len(words) + 1), w)
        return words

    def wire_story(self) -> str:
        """The agency's story: the lead, the quote, and paragraphs of its own."""
        g = self.gen
        lead = " ".join(self.lead).capitalize() + "."
        quoted = f'"{self.quote}," {self.people[0]} said.'
        rest = [" ".join(g.sentence() for _ in range(3)) for _ in range(6)]
        return "\n\n".join([lead, quoted, *rest[:3], " ".join(self.people[1:]) + " " + rest[3], *rest[4:]])

    def brief(self, story: str) -> str:
        """A news-in-brief rewrite of the lead and a fact or two: clauses re-ordered, every few words
        another word, so no run of more than a handful of words is the story's."""
        g = self.gen
        keep = {*self.people, self.place, self.figure}

        def reword(words: list[str]) -> list[str]:
            cut = len(words) // 3
            words = words[cut:] + words[:cut]  # the attribution moved to the end
            return [w if w in keep or i % 4 else g.rng.choice(g.words) for i, w in enumerate(words)]

        facts = [s.split() for p in story.split("\n\n")[2:4] for s in p.split(". ")[:1]]
        return " ".join(" ".join(reword(s)).capitalize() + "." for s in [list(self.lead), *facts])

    def independent_report(self) -> str:
        """Another reporter's story of the same event: the same people, place, figure and quote, own words."""
        g = self.gen
        opening = " ".join(self._sentence(10)).capitalize() + "."
        quoted = f'"{self.quote}," {self.people[0]} told reporters.'
        own = [" ".join(g.sentence() for _ in range(3)) for _ in range(4)]
        return "\n\n".join([opening, own[0], quoted, *own[1:]])
