"""The definition of boilerplate: which lines of an article are not story prose.

Wire and web boilerplate (datelines, bylines, photo captions and credits,
"Reporting by ..." lines, share/subscribe chrome) is masked before tokenising,
so it can neither create a match nor hide one. ``content_spans`` is the
definition, line by line; the batch path (``text.batch``) runs the same
``line_span`` on the lines its vectorised pre-tests cannot rule out.
"""

from __future__ import annotations

import regex

# Agency names as wire and web boilerplate carries them: a dateline's credit ("BEIRUT (Reuters) -")
# and photo credits ("REUTERS/Jane Doe", "Getty Images/..."). One table, so the regexes below and
# the batch path's pre-tests (text.batch) cannot disagree. The trailing sign-off ("... REUTER")
# is Reuters' alone and is spelled out where it is matched.
AGENCIES: tuple[tuple[str, bool, bool], ...] = (
    # lower-case name, in datelines, in photo credits
    ("reuters", True, True),
    ("reuter", True, False),
    ("ap", True, True),
    ("afp", True, True),
    ("pa", True, False),
    ("ani", True, False),
    ("pti", True, False),
    ("upi", True, False),
    ("dpa", True, False),
    ("xinhua", True, False),
    ("app", True, False),
    ("apa", True, False),
    ("efe", True, False),
    ("ansa", True, False),
    ("bloomberg", True, False),
    ("getty images", False, True),
    ("anadolu", False, True),
)
DATELINE_AGENCIES = tuple(name for name, dateline, _ in AGENCIES if dateline)
CREDIT_AGENCIES = tuple(name for name, _, credit in AGENCIES if credit)
_AGENCIES = "(?:" + "|".join(regex.escape(a) for a in DATELINE_AGENCIES) + ")"

# Whole lines that are chrome or credits, never story text. Each must be
# specific enough that it cannot swallow a sentence of news copy.
_CHROME_LINE_START = [
    # photo captions
    r"(?:photo|image|picture|file photo|video|graphic)s?\s*[:|]",
    # bylines and credits
    r"by\s+(?-i:\p{Lu})[\p{L}.'-]+(?:\s+(?-i:\p{Lu})[\p{L}.'-]+){0,3}"
    r"(?:\s*(?:,|and|&)\s*(?-i:\p{Lu})[\p{L}.'-]+(?:\s+(?-i:\p{Lu})[\p{L}.'-]+){0,3})*\s*$",
    r"(?:additional\s+)?(?:reporting|writing|editing|compiled|produced)\s+by\b",
    # share / subscribe / comment chrome
    r"(?:subscribe|sign up|share (?:this|on)|follow us|leave a (?:reply|comment)|see also\b"
    r"|discover more|click here|read more|related\s*:|advertisement|sponsored|all rights reserved"
    r"|copyright|©|\(c\)\s*\d{4}|your email address|required fields are marked|download (?:our|the) app"
    r"|sign in|log in|newsletter|skip to|jump to|back to top|watch:|listen to this)",
    # lines that are only a label ("Summary", "Advertisement", "logo")
    r"(?:summary|logo|advertisement|highlights|key points|menu|home|share|tweet|comments?)\s*[:.]?\s*$",
]
_CHROME_LINE_ANYWHERE = [
    r"\b(?:" + "|".join(regex.escape(a) for a in CREDIT_AGENCIES) + r")\s*/\s*\p{Lu}\p{L}+",  # photo credit
    r";\s*(?:editing|writing)\s+by\s",  # "...; Editing by"
]
# A line is chrome if it starts like chrome, or carries a credit anywhere: two
# passes per line (one anchored) instead of one search per pattern.
CHROME_START_RE = regex.compile(r"\s*(?:" + "|".join(_CHROME_LINE_START) + ")", regex.IGNORECASE)
CHROME_ANYWHERE_RE = regex.compile("|".join(_CHROME_LINE_ANYWHERE), regex.IGNORECASE)

# A dateline opening a paragraph: "BEIRUT (Reuters) -", "BEIRUT/AMMAN, Dec 6 (Reuters) –",
# "LONDON, March 3 -", "BEIRUT –". It is removed, the sentence after it kept.
DATELINE_RE = regex.compile(
    r"^\s*(?:\p{Lu}[\p{Lu}\p{M} .'/-]{1,40}?)(?:\s*,\s*[\p{L}.]+\s+\d{1,2})?"
    rf"\s*(?:\((?i:{_AGENCIES})\)\s*)?(?:[-–—:]|\((?i:{_AGENCIES})\)\s*:)\s+"
)
_DATELINE_MARKS = "-–—:"
# A trailing agency sign-off: "... last year. REUTER", "Reuters".
SIGNOFF_RE = regex.compile(r"(?i)(?:^|\s)reuters?\s*(?:\.{3}|…)?\s*$")

# How every alternative of CHROME_START_RE begins (its literal text, lower case,
# cut at 8 characters). A line whose first 8 characters after its leading
# spaces are ASCII and begin with none of these cannot match it: IGNORECASE
# only pairs an ASCII letter with its other case or with a non-ASCII letter.
CHROME_OPENINGS = (
    "photo", "image", "picture", "file pho", "video", "graphic",
    "by",
    "addition", "reportin", "writing", "editing", "compiled", "produced",
    "subscrib", "sign up", "share th", "share on", "follow u", "leave a ", "see also", "discover",
    "click he", "read mor", "related", "advertis", "sponsore", "all righ", "copyrigh", "©", "(c)",
    "your ema", "required", "download", "sign in", "log in", "newslett", "skip to", "jump to",
    "back to ", "watch:", "listen t",
    "summary", "logo", "advertis", "highligh", "key poin", "menu", "home", "share", "tweet", "comment",
)  # fmt: skip
OPEN_PAIRS = frozenset(o[:2] for o in CHROME_OPENINGS if o.isascii() and len(o) > 1)  # the same, as strings
OPEN_SINGLES = frozenset(o for o in CHROME_OPENINGS if o.isascii() and len(o) == 1)


def content_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges of `text` that are story prose, in order.

    The straightforward definition, line by line; batches of texts take
    ``text.batch.content_ranges``, which runs the same ``line_span`` on the lines
    that could need it, and single articles ``prose_spans``.
    """
    return prose_spans(text, pretest=False)


def prose_spans(text: str, pretest: bool) -> list[tuple[int, int]]:
    """``content_spans``; with `pretest`, the batch path's cheap necessary conditions go first: for
    the credit search over the whole text (~45 µs for an article, in most of them a "/" or ";"),
    ``may_credit``; for the chrome regex on each line, its first two characters; for the
    sign-off regex on each line, the word itself."""
    spans: list[tuple[int, int]] = []
    credits = (
        ("/" in text or ";" in text)
        and (not pretest or may_credit(text))
        and CHROME_ANYWHERE_RE.search(text) is not None
    )
    signoffs = "reuter" in text.lower()
    chrome, signed = True, signoffs
    pos = 0
    for line in text.splitlines(keepends=True):
        if pretest:
            # IGNORECASE pairs an ASCII letter only with its other case or a non-ASCII letter, so a
            # line opening with two ASCII characters, not spaces, that start no opening is not chrome.
            head = line[:2].lower()
            chrome = not head.isascii() or head[:1].isspace() or head in OPEN_PAIRS or head[:1] in OPEN_SINGLES
            signed = signoffs and "reuter" in line.lower()
        span = line_span(text, pos, pos + len(line), credits, signed, chrome)
        pos += len(line)
        if span is not None:
            spans.append(span)
    return spans


def line_span(
    text: str, start: int, end: int, credits: bool, signoffs: bool, chrome: bool = True
) -> tuple[int, int] | None:
    """The prose of the line ``text[start:end]``, or None if it is blank or chrome.

    Each regex runs only where it could match (a dateline starts with a capital
    and has a dash or colon; ``chrome=False`` says the line cannot open like
    chrome), because this runs on every story indexed.
    """
    line = text[start:end]
    stripped = line.strip()
    if not stripped:
        return None
    if (chrome and CHROME_START_RE.match(line)) or (credits and CHROME_ANYWHERE_RE.search(line)):
        return None
    if stripped[0].isupper() and ("-" in line or ":" in line or "–" in line or "—" in line):  # _DATELINE_MARKS
        m = DATELINE_RE.match(line)
        if m and m.end() < len(line.rstrip()):
            start += m.end()
    if signoffs:
        s = SIGNOFF_RE.search(text, start, end)
        if s:
            end = s.start()
    return (start, end) if end > start else None


CREDIT_VERBS = ("editing", "writing")
_REACH = 80


def may_credit(text: str) -> bool:
    """False only if ``CHROME_ANYWHERE_RE`` cannot match: it needs an agency name, spaces, "/"
    or a ";", spaces, "editing"/"writing". Non-ASCII or long space runs near a mark count as maybe."""
    i = text.find("/")
    while i >= 0:
        window = text[max(0, i - _REACH) : i]
        before = window.rstrip()
        tail = before[-12:]
        if (not before and i > _REACH) or not tail.isascii() or tail.lower().endswith(CREDIT_AGENCIES):
            return True
        i = text.find("/", i + 1)
    i = text.find(";")
    while i >= 0:
        after = text[i + 1 : i + 1 + _REACH].lstrip()
        head = after[:7]
        if (not after and len(text) > i + 1 + _REACH) or not head.isascii() or head.lower() in CREDIT_VERBS:
            return True
        i = text.find(";", i + 1)
    return False
